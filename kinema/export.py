"""`kinema export RUN`: the run's policy as an ONNX bundle with its contract."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kinema.args import nonneg_float
from kinema.output import emit


def add_parser(sub: Any) -> argparse.ArgumentParser:
    x = sub.add_parser("export", help="export a run's policy to an ONNX bundle")
    x.add_argument("run", type=Path, metavar="RUN", help="run directory")
    x.add_argument("--out", type=Path, metavar="BUNDLE", help="bundle folder (default RUN/bundle)")
    x.add_argument("--json", action="store_true", help="print the contract summary as JSON")
    x.add_argument("--quantize", choices=("int8",),
                   help="ship an int8 (dynamic) graph; its error and speed go into the contract")
    x.add_argument("--quantize-bound", type=nonneg_float, metavar="B",
                   help="refuse int8 above this error (default 0.02 of the action range; "
                   "discrete: 0.01 of actions changed)")
    x.add_argument("--joint-state-map", type=Path, metavar="FILE",
                   help="JSON list mapping sensor_msgs/JointState to the observation, for "
                   "kinema ros --input joint-state")
    x.set_defaults(handler=main)
    return x


def main(a: argparse.Namespace) -> None:
    from agents.runs.evaluation import rollout_observations
    from agents.runs.train import load_agent
    from deploy.export import export_bundle

    agent, run = load_agent(a.run)
    out = a.out or run.path / "bundle"
    obs = rollout_observations(lambda o: agent.act(o, deterministic=True).cpu().numpy(), run.env)
    joint_map = None
    if a.joint_state_map is not None:
        import sim
        from kinema.ros import load_joint_state_map

        joint_map = load_joint_state_map(a.joint_state_map, sim.spec(run.env).info.obs_shape[0])
    contract = export_bundle(agent.inference_module(), env=run.env, out_dir=out,
                             source_run=run.path.name, rollout_obs=obs,
                             joint_state_map=joint_map, quantize=a.quantize,
                             quantize_bound=a.quantize_bound)
    emit({"bundle": str(out), "env": contract.env, "obs_dim": contract.obs_dim,
          "act_dim": contract.act_dim, "rate_hz": contract.rate_hz, "opset": contract.opset,
          "parity_max_abs_error": contract.parity_max_abs_error,
          "policy_sha256": contract.policy_sha256}, as_json=a.json, title="export")
