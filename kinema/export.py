"""`kinema export RUN`: the run's policy as an ONNX bundle with its contract."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from kinema.args import nonneg_float
from kinema.output import emit


def bound(text: str) -> float:
    """argparse type: a quantization error bound, a finite number >= 0."""
    v = nonneg_float(text)
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{v} is not finite; expected a number >= 0")
    return v


def add_parser(sub: Any) -> argparse.ArgumentParser:
    x = sub.add_parser("export", help="export a run's policy to an ONNX bundle")
    x.add_argument("run", type=Path, metavar="RUN", help="run directory")
    x.add_argument("--out", type=Path, metavar="BUNDLE",
                   help="bundle folder (default RUN/bundle): new, empty, or holding exactly an "
                   "older bundle, which is replaced; a folder with other files is refused")
    x.add_argument("--json", action="store_true", help="print the contract summary as JSON")
    x.add_argument("--quantize", choices=("int8",),
                   help="ship an int8 (dynamic) graph; its error and speed go into the contract")
    x.add_argument("--quantize-bound", type=bound, metavar="B",
                   help="with --quantize: refuse int8 above this error (default 0.02 of the "
                   "action range; discrete: 0.01 of actions changed)")
    x.add_argument("--prior", action="store_true",
                   help="tdmpc: the policy prior alone (a fast feed-forward bundle) instead of "
                   "the latent planner")
    x.add_argument("--joint-state-map", type=Path, metavar="FILE",
                   help="JSON list mapping sensor_msgs/JointState to the observation, for "
                   "kinema ros --input joint-state")
    x.set_defaults(handler=main)
    return x


def main(a: argparse.Namespace) -> None:
    if a.quantize_bound is not None and a.quantize is None:
        raise ValueError(f"--quantize-bound {a.quantize_bound:g} applies only with --quantize "
                         "int8; add --quantize int8 or drop --quantize-bound")
    from agents.runs.evaluation import rollout_observations
    from agents.runs.train import load_agent
    from deploy.export import check_out_dir, export_bundle

    agent, run = load_agent(a.run)
    out = a.out or run.path / "bundle"
    joint_map = None
    if a.joint_state_map is not None:
        import sim
        from kinema.ros import load_joint_state_map

        joint_map = load_joint_state_map(
            a.joint_state_map, math.prod(sim.spec(run.env).info.obs_shape))
    check_out_dir(out)  # before the rollouts: a refused folder costs nothing
    if a.prior:  # likewise a run that has no prior
        prior = getattr(agent, "prior_module", None)
        if prior is None:
            raise ValueError(f"--prior exports the policy prior of a latent planner (tdmpc); "
                             f"{run.path.name} is a {run.algo} run, whose bundle is its policy: "
                             "drop --prior")
        module = prior()
    else:
        module = agent.inference_module()
    obs = rollout_observations(lambda o: agent.act(o, deterministic=True).cpu().numpy(), run.env)
    try:
        contract = export_bundle(module, env=run.env, out_dir=out,
                                 source_run=run.path.name, rollout_obs=obs,
                                 joint_state_map=joint_map, quantize=a.quantize,
                                 quantize_bound=a.quantize_bound)
    except OSError as e:  # the disk, not the policy: one line, and the older bundle is kept
        raise ValueError(f"cannot write the bundle {str(out)!r}: {e}") from e
    emit({"bundle": str(out), "env": contract.env, "obs_dim": contract.obs_dim,
          "act_dim": contract.act_dim, "rate_hz": contract.rate_hz, "opset": contract.opset,
          "parity_max_abs_error": contract.parity_max_abs_error,
          "policy_sha256": contract.policy_sha256}, as_json=a.json, title="export")
