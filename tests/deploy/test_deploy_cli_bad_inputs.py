"""Bad inputs to `kinema run`, `kinema export` and `kinema ros-sim`: each gets exit 2 (or 4 for
a run that ends in a latched fault stop) and ONE stderr line naming the bad value, and loses
nothing. A good run still exits 0, and its table rounds what it prints."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from deploy.export import ExportError, export_bundle
from deploy.runtime import SimRobot, run_bundle

ExitCode = Callable[[list[str]], int]


def _one_line(capsys: pytest.CaptureFixture[str], prefix: str, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(prefix) and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# -- kinema run / ros-sim --seed ------------------------------------------------------------------
@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "{bundle}", "--seed", "-1", "--steps", "1"], "-1 is negative"),
        (["run", "{bundle}", "--seed", "1.5", "--steps", "1"], "'1.5' is not an integer"),
        (["ros-sim", "pendulum", "--seed", "-3"], "-3 is negative"),
    ],
)
def test_deploy_cli_seed_must_be_a_non_negative_integer(
    pendulum_bundle: Path, exit_code: ExitCode, capsys: pytest.CaptureFixture[str],
    args: list[str], needle: str,
) -> None:
    argv = [a.format(bundle=pendulum_bundle) for a in args]
    assert exit_code(argv) == 2
    _one_line(capsys, f"kinema {argv[0]}: error: argument --seed: ", needle, "integer >= 0")


@pytest.mark.bad_input
@pytest.mark.parametrize("seed", [-1, True, 1.0, "3"])
def test_deploy_sim_robot_refuses_a_bad_seed(seed: object) -> None:
    with pytest.raises(ValueError, match=r"seed .* expected an integer >= 0"):
        SimRobot("pendulum", seed=seed)  # type: ignore[arg-type]


# -- kinema run: the contract's bounds must fit the robot -----------------------------------------
@pytest.mark.bad_input
@pytest.mark.parametrize("env_flag", [True, False])
def test_deploy_cli_run_refuses_bounds_wider_than_the_env(
    graph_bundle: Callable[..., Path], exit_code: ExitCode, capsys: pytest.CaptureFixture[str],
    env_flag: bool,
) -> None:
    """pendulum takes torques in [-2, 2]; a contract promising [-3, 3] cannot be kept."""
    wide = graph_bundle(action_low=(-3.0,), action_high=(3.0,))
    argv = ["run", str(wide), "--steps", "3", *(["--env", "pendulum"] if env_flag else [])]
    assert exit_code(argv) == 2
    _one_line(capsys, "kinema run: error: ", "[-3.0]..[3.0]", "wider than env 'pendulum'",
              "[-2.0]..[2.0]", "cannot take")


@pytest.mark.bad_input
def test_deploy_run_refuses_more_discrete_actions_than_the_env_has(
    discrete_bundle: Callable[..., Path], exit_code: ExitCode,
    capsys: pytest.CaptureFixture[str],
) -> None:
    three = discrete_bundle(n_actions=3)
    assert exit_code(["run", str(three), "--env", "cartpole", "--steps", "3"]) == 2
    _one_line(capsys, "kinema run: error: ", "[0.0]..[2.0]", "wider than env 'cartpole'")
    # Narrower than the robot's range is fine: those commands are the robot's too.
    narrow = run_bundle(discrete_bundle(n_actions=1, name="one"), "cartpole", rate_hz=0, steps=3)
    assert narrow.stop_reason == "completed"


def test_deploy_run_accepts_bounds_inside_the_env(graph_bundle: Callable[..., Path]) -> None:
    narrow = graph_bundle(action_low=(-1.0,), action_high=(1.5,))
    assert run_bundle(narrow, "pendulum", rate_hz=0, steps=3).stop_reason == "completed"


# -- kinema run: a latched fault stop is not a success --------------------------------------------
@pytest.mark.bad_input
def test_deploy_cli_run_fault_stop_exits_4_with_the_reason(
    graph_bundle: Callable[..., Path], exit_code: ExitCode, capsys: pytest.CaptureFixture[str],
) -> None:
    nan = graph_bundle(value=math.nan)
    assert exit_code(["run", str(nan), "--steps", "20", "--rate", "0", "--json"]) == 4
    captured = capsys.readouterr()
    report = json.loads(captured.out.strip().splitlines()[-1])  # the report is still printed
    assert report["stop_reason"] == "nonfinite_action" and report["steps"] == 1
    err = captured.err.strip()
    assert err.splitlines() == [err] and err.startswith(
        "kinema run: stopped: nonfinite_action (the policy returned a non-finite action)")


def test_deploy_cli_run_exit_codes_are_documented(capsys: pytest.CaptureFixture[str]) -> None:
    from kinema.cli import main

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "exit status: 0 the run completed" in text and "4 the run ended in a latched" in text


def test_deploy_cli_run_ctrl_c_exits_130(
    pendulum_bundle: Path, exit_code: ExitCode, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_send = SimRobot.send
    pressed: list[bool] = []

    def send(self: SimRobot, action: object) -> None:
        if self.steps == 5 and not pressed:
            pressed.append(True)
            raise KeyboardInterrupt  # as SIGINT would, mid-step; the safe action still goes
        real_send(self, action)  # type: ignore[arg-type]

    monkeypatch.setattr(SimRobot, "send", send)
    assert exit_code(["run", str(pendulum_bundle), "--steps", "50", "--rate", "0"]) == 130
    assert capsys.readouterr().err.strip() == (
        "kinema run: interrupted; the safe action was sent")


def test_deploy_cli_run_table_rounds_returns_json_keeps_them(
    pendulum_bundle: Path, exit_code: ExitCode, capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["run", str(pendulum_bundle), "--episodes", "2", "--rate", "0"]
    assert exit_code([*argv, "--json"]) == 0
    returns = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["returns"]
    assert len(returns) == 2 and any(len(repr(r)) > 10 for r in returns), returns  # full floats
    assert exit_code(argv) == 0
    row = next(ln for ln in capsys.readouterr().out.splitlines() if "returns" in ln)
    assert f"[{returns[0]:.6g}, {returns[1]:.6g}]" in row, row
    assert repr(returns[0]) not in row


# -- kinema export --------------------------------------------------------------------------------
@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--quantize-bound", "0.1"], "--quantize-bound 0.1 applies only with --quantize int8"),
        (["--quantize", "int8", "--quantize-bound", "inf"], "inf is not finite"),
        (["--quantize", "int8", "--quantize-bound", "-0.5"], "-0.5 is negative"),
    ],
)
def test_deploy_cli_export_quantize_bound_needs_quantize(
    trained_cartpole_bundle: Path, tmp_path: Path, exit_code: ExitCode,
    capsys: pytest.CaptureFixture[str], flags: list[str], needle: str,
) -> None:
    out = tmp_path / "b"
    assert exit_code(["export", str(trained_cartpole_bundle.parent), "--out", str(out),
                      *flags]) == 2
    _one_line(capsys, "kinema export: error: ", needle)
    assert not out.exists()


@pytest.mark.bad_input
def test_deploy_export_quantize_bound_alone_is_refused_by_the_library(tmp_path: Path) -> None:
    from torch import nn

    with pytest.raises(ExportError, match="quantize_bound 0.1 applies only to a quantized"):
        export_bundle(nn.Identity(), env="pendulum", out_dir=tmp_path / "b", quantize_bound=0.1)
    assert not (tmp_path / "b").exists()


@pytest.mark.bad_input
@pytest.mark.parametrize("extra", ["notes.txt", "policy-v1.onnx", "sub/"])
def test_deploy_cli_export_keeps_foreign_files_beside_an_old_bundle(
    trained_cartpole_bundle: Path, tmp_path: Path, exit_code: ExitCode,
    capsys: pytest.CaptureFixture[str], extra: str,
) -> None:
    """An older bundle plus a file export did not write: refused, naming it, all kept."""
    import shutil

    out = Path(shutil.copytree(trained_cartpole_bundle, tmp_path / "out"))
    if extra.endswith("/"):
        (out / extra).mkdir()
        (out / extra / "keep.txt").write_text("mine")
    else:
        (out / extra).write_text("keep me")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert exit_code(["export", str(trained_cartpole_bundle.parent), "--out", str(out)]) == 2
    _one_line(capsys, "kinema export: error: ", f"holds {extra.rstrip('/')}",
              "which export did not write")
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp folder left


@pytest.mark.bad_input
def test_deploy_export_refuses_a_folder_with_only_a_policy_file(tmp_path: Path) -> None:
    from torch import nn

    (tmp_path / "policy.onnx").write_bytes(b"someone's own graph")
    with pytest.raises(ExportError, match="holds policy.onnx but no contract.json"):
        export_bundle(nn.Identity(), env="pendulum", out_dir=tmp_path)
    assert (tmp_path / "policy.onnx").read_bytes() == b"someone's own graph"


@pytest.mark.bad_input
def test_deploy_export_refuses_a_file_as_the_output(tmp_path: Path) -> None:
    from torch import nn

    (tmp_path / "bundle").write_text("a file")
    with pytest.raises(ExportError, match="exists and is a file"):
        export_bundle(nn.Identity(), env="pendulum", out_dir=tmp_path / "bundle")
    with pytest.raises(ExportError, match="cannot be created: .* is a file"):
        export_bundle(nn.Identity(), env="pendulum", out_dir=tmp_path / "bundle" / "inner")
    assert (tmp_path / "bundle").read_text() == "a file"


def test_deploy_export_replaces_exactly_a_bundle(
    pendulum_bundle: Path, tmp_path: Path, pendulum_policy: object
) -> None:
    import shutil

    out = Path(shutil.copytree(pendulum_bundle, tmp_path / "out"))
    export_bundle(pendulum_policy, env="pendulum", out_dir=out)  # type: ignore[arg-type]
    assert sorted(_snapshot(out)) == ["contract.json", "policy.onnx"]


@pytest.mark.bad_input
def test_deploy_export_refuses_an_absolute_source_run(tmp_path: Path) -> None:
    from torch import nn

    with pytest.raises(ExportError, match="is an absolute path; pass the run's name"):
        export_bundle(nn.Identity(), env="pendulum", out_dir=tmp_path / "b",
                      source_run=str(tmp_path / "runs" / "x"))
