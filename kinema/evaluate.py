"""`kinema eval RUN`: deterministic episodes of a run's latest checkpoint (and a video)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kinema.args import positive_int
from kinema.output import emit


def add_parser(sub: Any) -> argparse.ArgumentParser:
    v = sub.add_parser("eval", help="evaluate a run's latest checkpoint")
    v.add_argument("run", type=Path, metavar="RUN", help="run directory")
    v.add_argument("--episodes", type=positive_int, default=10,
                   help="deterministic episodes, seeds 10000.. (default 10)")
    v.add_argument("--json", action="store_true", help="print the result as one JSON object")
    v.add_argument("--video", type=Path, metavar="FILE.mp4",
                   help="also record one deterministic episode (seed 10000) to an mp4")
    v.set_defaults(handler=main)
    return v


def main(a: argparse.Namespace) -> None:
    from agents.runs.config import env_options
    from agents.runs.evaluation import evaluate
    from agents.runs.train import load_agent

    agent, run = load_agent(a.run)
    dynamics = run.config["train"].get("dynamics", "")  # the physics it was trained on
    returns = evaluate(lambda o: agent.act(o, deterministic=True).cpu().numpy(), run.env,
                       a.episodes, **env_options(dynamics))
    out: dict[str, Any] = {"run": str(run.path), "env": run.env,
                           **({"dynamics": dynamics} if dynamics else {}),
                           "return_mean": float(returns.mean()),
                           "return_std": float(returns.std()), "episodes": len(returns)}
    evals = [r for r in run.records() if r.get("kind") == "eval" and "expert_return" in r]
    if evals:  # imitation runs log their reference returns with every evaluation
        from agents.imitation.scores import expert_normalized_score

        ref = evals[-1]
        out["normalized_score"] = expert_normalized_score(out["return_mean"],
                                                          ref["random_return"],
                                                          ref["expert_return"])
    if a.video is not None:
        import numpy as np

        from agents.runs.evaluation import EVAL_SEED
        from sim.video import record_video

        def policy(o: Any) -> Any:
            return np.asarray(agent.act(o[None], deterministic=True).cpu().numpy())[0]

        out["video"] = record_video(run.env, a.video, policy, seed=EVAL_SEED)["path"]
    emit(out, as_json=a.json, title="evaluation")
