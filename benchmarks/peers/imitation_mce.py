"""imitation's MCE-IRL on one of Kinema's tabular MDPs, given as plain arrays; run by
benchmarks.irl_peer.run_mce inside imitation's own venv (it imports nothing from Kinema).

    python -I imitation_mce.py ARGS_JSON OUT_JSON

ARGS_JSON: {"model": .npz path, "steps": max iterations, "lr": Adam step size, "seed"}. The .npz
(benchmarks.irl_tabular.fixed_horizon): P [S, A, S] with every terminal state leading to one
absorbing "done" state, features [S, F] (zero at "done"), p0 [S], horizon, and demo_om [S], the
demonstrations' state visits per episode over horizon + 1 steps ("done" holds the rest).

OUT_JSON: {"reward" [S] (r_theta(s) of the learned linear reward), "policy" [S] (argmax_a of
the fitted model's pi_0), "iterations" (MCE-IRL's updates before its own stopping rule),
"train_s", "train_cpu_s", "versions"}.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import imitation
import numpy as np
import torch as th
from imitation.algorithms.mce_irl import MCEIRL, mce_partition_fh
from imitation.rewards.reward_nets import BasicRewardNet
from seals.base_envs import TabularModelPOMDP


class CountedMCEIRL(MCEIRL):
    """MCEIRL that counts its updates (train() stops early on its own tolerances)."""

    updates = 0

    def _train_step(self, obs_mat: th.Tensor) -> Any:
        self.updates += 1
        return super()._train_step(obs_mat)


def run(args: dict[str, Any]) -> dict[str, Any]:
    with np.load(args["model"], allow_pickle=False) as z:
        P, features, p0 = z["P"], z["features"], z["p0"]
        horizon, demo_om = int(z["horizon"]), z["demo_om"]
    th.manual_seed(args["seed"])
    env = TabularModelPOMDP(transition_matrix=P, observation_matrix=features,
                            reward_matrix=np.zeros(len(P)), horizon=horizon,
                            initial_state_dist=p0)
    # linear in the features (hid_sizes=[]: one Linear layer), state-only, as Kinema's reward
    net = BasicRewardNet(env.observation_space, env.action_space, use_action=False,
                         hid_sizes=[])
    mce = CountedMCEIRL(demo_om, env, net, rng=np.random.default_rng(args["seed"]),
                        optimizer_kwargs={"lr": args["lr"]}, log_interval=None)
    w, c = time.perf_counter(), time.process_time()
    mce.train(max_iter=args["steps"])
    train_s, train_cpu_s = time.perf_counter() - w, time.process_time() - c
    with th.no_grad():
        reward = net(th.as_tensor(features, dtype=net.dtype), None, None, None)
    reward_np = reward.reshape(-1).double().numpy()
    _, _, pi = mce_partition_fh(env, reward=reward_np)
    return {"reward": reward_np.tolist(), "policy": pi[0].argmax(-1).tolist(),
            "iterations": mce.updates, "train_s": train_s, "train_cpu_s": train_cpu_s,
            "versions": {"imitation": imitation.__version__, "torch": th.__version__,
                         "numpy": np.__version__}}


def main() -> None:
    args = json.loads(sys.argv[1])
    with open(sys.argv[2], "w") as f:
        json.dump(run(args), f)


if __name__ == "__main__":
    main()
