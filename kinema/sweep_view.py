"""What `kinema sweep` shows: the trials while the sweep runs (a live table on a terminal, a
line per change elsewhere) and the summary table at the end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kinema.output import err_console


def params_label(params: dict[str, Any]) -> str:
    from analysis.runs import show

    return " ".join(f"{k}={show(v)}" for k, v in params.items()) or "-"


def _num(v: Any, fmt: str = ".1f") -> str:
    return "-" if v is None else format(v, fmt)


def summary_table(path: Path, rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    t = Table(title=f"sweep {path}")
    for col in ("trial", "seed", "params", "status", "steps", "return", "best", "train_s", "run"):
        t.add_column(col, overflow="fold")
    for r in rows:  # the run folder's name: it lies in trials/<trial>/ of the sweep
        run = Path(r["run"]).name if r.get("run") else "-"
        t.add_row(r["trial"], str(r["seed"]), params_label(r["params"]), r["status"],
                  _num(r.get("step"), "d"), _num(r.get("return_mean")),
                  _num(r.get("best_return")), _num(r.get("train_s")), str(run))
    return t


class Display:
    """The trials while the sweep runs: a live rich table on a terminal, a line per trial that
    starts or ends elsewhere (a log file, CI), nothing when not `enabled`."""

    def __init__(self, trials: list[Any], read_result: Any, sweep: Path, *,
                 enabled: bool) -> None:
        self.enabled, self.tty = enabled, err_console.is_terminal
        self.live: Any = None
        self.rows: dict[str, dict[str, Any]] = {}
        self.sweep = sweep
        for t in trials:
            done = read_result(sweep, t.id)
            self.rows[t.id] = {"seed": t.seed, "params": params_label(t.params),
                               "status": "kept" if done else "pending",
                               "step": (done or {}).get("step"),
                               "total": (done or {}).get("total"),
                               "eval_return": (done or {}).get("return_mean")}

    def __enter__(self) -> Display:
        if self.enabled and self.tty:
            from rich.live import Live

            self.live = Live(self.table(), console=err_console, refresh_per_second=4)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.update(self.table())
            self.live.__exit__(None, None, None)

    def update(self, event: dict[str, Any]) -> None:
        if event.get("trial") and event["trial"] not in self.rows:  # a search drew it
            from agents.runs.sweep_store import load

            for t in load(self.sweep)[1]:
                self.rows.setdefault(t.id, {"seed": t.seed, "params": params_label(t.params),
                                            "status": "pending"})
        row = self.rows.get(event.get("trial", ""))
        if row is None or not self.enabled:
            return
        before = row["status"]
        row.update({k: v for k, v in event.items() if k != "trial" and v is not None})
        if self.live is not None:
            self.live.update(self.table())
        elif row["status"] != before:
            err_console.print(f"trial {event['trial']} (seed {row['seed']}, {row['params']}): "
                              f"{row['status']}, step {_num(row.get('step'), 'd')}, eval "
                              f"return {_num(row.get('eval_return'))}", markup=False,
                              highlight=False)

    def table(self) -> Any:
        from rich.table import Table

        t = Table(title="kinema sweep")
        for col in ("trial", "seed", "params", "status", "step", "eval return", "steps/s"):
            t.add_column(col)
        for tid, r in self.rows.items():
            total = r.get("total")
            step = _num(r.get("step"), "d") + (f"/{total}" if total else "")
            t.add_row(tid, str(r["seed"]), r["params"], r["status"], step,
                      _num(r.get("eval_return")), _num(r.get("steps_per_s"), ".0f"))
        return t
