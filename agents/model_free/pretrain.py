"""Pre-training on demonstrations, then fine-tuning with RL (SAC, TD3/DDPG `--pretrain DIR`).

Three pieces, each from the literature on learning from demonstrations with off-policy RL:

1. Pre-training (`pretrain_steps` gradient steps on demonstration batches before the first env
   step): behavioral cloning of the actor (Pomerleau 1989; CS285, Levine, lecture 2), the squared
   error of the policy's deterministic action to the expert's, || pi(s) - a ||^2 (TD3: mu(s);
   SAC: tanh of the Gaussian's mean), together with TD learning of the critics on the
   demonstrations' rewards, as AWAC's offline phase does (Nair, Gupta, Dalal, Levine 2020,
   "AWAC: Accelerating Online Reinforcement Learning with Offline Datasets", arXiv:2006.09359).
   SAC clones the mean rather than maximizing the squashed Gaussian's log-likelihood: scripted
   experts saturate at |a| = 1, where atanh and so the likelihood are unbounded, and the
   likelihood would shrink sigma until the fine-tuning had no exploration left. The critics are
   pre-trained too because a random critic's gradient, followed at the first fine-tuning
   steps, undoes the cloned policy before the critic has learned anything.
2. The demonstrations stay in a replay buffer of their own, never overwritten, and
   round(`demo_ratio` * batch_size) of them join every batch of the online replay, as DDPGfD
   keeps them (Vecerik, Hester, Scholz et al. 2017, arXiv:1707.08817).
3. The actor's loss gets TD3+BC's regularizer on the demonstration samples (Fujimoto & Gu
   2021, "A Minimalist Approach to Offline Reinforcement Learning", arXiv:2106.06860):

       J_pi = lambda J_RL + w_t E_demo || pi(s) - a ||^2,    lambda = alpha / mean |Q(s, pi(s))|

   J_RL is the agent's own actor loss (TD3: -Q_1(s, mu(s)); SAC: alpha_H log pi - min_i Q_i),
   alpha = `bc_alpha` (2.5 in the paper), and w_t = `bc_weight`, decayed linearly to 0 over
   `bc_decay_steps` gradient steps when that is > 0.

With `pretrain` empty none of this exists and SAC and TD3 are exactly what they were.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from agents.loops.offline import open_dataset
from data.dataset import Dataset
from data.replay import ReplayBuffer
from sim.registry import EnvInfo

FLAG = "--pretrain"


class Pretrainable(Protocol):
    """What `pretrain` needs of an agent: one pre-training step on a demonstration batch."""

    def pretrain_update(self, batch: dict[str, Tensor]) -> dict[str, Tensor]: ...


def check(cfg: Any, env: str) -> None:
    """A `pretrain` dataset must be one of `env`'s continuous-action episodes that can be read
    in full (run before the run folder exists, so a mistake leaves nothing behind)."""
    if cfg.pretrain:
        open_dataset(cfg.pretrain, env, FLAG).check()


def demo_batch_size(cfg: Any) -> int:
    """Demonstrations added to each batch: round(demo_ratio * batch_size), at least 1."""
    return max(1, round(cfg.demo_ratio * cfg.batch_size))


def bc_loss(pi_a: Tensor, a: Tensor) -> Tensor:
    """E || pi(s) - a ||^2 for pi_a, a [B, A]: squared error summed over A, mean over B."""
    return (pi_a - a).square().sum(-1).mean()


def td3_bc_actor_loss(rl_loss: Tensor, q_pi: Tensor, pi_demo: Tensor, a_demo: Tensor,
                      bc_weight: Tensor | float, alpha: float) -> Tensor:
    """J_pi = lambda rl_loss + w || pi(s) - a ||^2 with lambda = alpha / mean |Q(s, pi(s))|
    (TD3+BC, Fujimoto & Gu 2021, eq. 3 and section 5): q_pi [..., B] the critic's values of the
    policy's actions (lambda is a constant: detached), pi_demo and a_demo [Bd, A] the policy's
    and the expert's actions on the demonstration states."""
    lam = alpha / q_pi.detach().abs().mean()
    return lam * rl_loss + bc_weight * bc_loss(pi_demo, a_demo)


def bc_weight_at(cfg: Any, updates: int) -> float:
    """w_t: bc_weight, decayed linearly to 0 over bc_decay_steps updates (0: no decay)."""
    if cfg.bc_decay_steps <= 0:
        return float(cfg.bc_weight)
    return float(cfg.bc_weight) * max(0.0, 1.0 - updates / cfg.bc_decay_steps)


def concat(batch: dict[str, Tensor], demo: dict[str, Tensor]) -> dict[str, Tensor]:
    """An online batch [B] followed by a demonstration batch [Bd]; a prioritized batch's
    importance weights get 1 for the demonstrations (they are drawn uniformly)."""
    out = {k: torch.cat([v, demo[k]]) for k, v in batch.items() if k in demo}
    if "weights" in batch:
        out["weights"] = torch.cat([batch["weights"], torch.ones_like(demo["rewards"])])
    return out


def episodes_buffer(ds: Dataset, info: EnvInfo, device: torch.device, gamma: float
                    ) -> ReplayBuffer:
    """Every transition of the dataset in a replay buffer of exactly that size (one column)."""
    eps = list(ds.episodes())
    n = sum(e.steps for e in eps)
    buf = ReplayBuffer(n, 1, info.obs_shape, (info.act_dim,), discrete=False, device=device,
                       gamma=gamma)
    rows = {
        "obs": np.concatenate([e.observations[:-1] for e in eps]),
        "actions": np.clip(np.concatenate([e.actions for e in eps]), -1.0, 1.0),
        "rewards": np.concatenate([e.rewards for e in eps]),
        "next_obs": np.concatenate([e.observations[1:] for e in eps]),
        "terminated": np.concatenate([e.terminations for e in eps]),
        "truncated": np.concatenate([e.truncations for e in eps]),
    }
    for name, value in rows.items():  # one bulk copy per field, not one `add` per step
        dst = getattr(buf, name)
        dst.copy_(torch.as_tensor(value).reshape(dst.shape).to(dst.dtype))
    buf.pos, buf.size = 0, n
    return buf


class Demonstrations:
    """The demonstrations of `cfg.pretrain`, kept for the whole run, and whether the agent has
    been pre-trained on them yet (both checkpointed with the agent)."""

    def __init__(self, cfg: Any, info: EnvInfo, device: torch.device) -> None:
        ds = open_dataset(cfg.pretrain, info.name, FLAG) if info.name else Dataset.open(
            cfg.pretrain)
        if ds.action_space.get("type") == "Discrete":
            raise ValueError(f"{FLAG} {cfg.pretrain} holds discrete actions; SAC and TD3 take "
                             "continuous ones")
        self.cfg = cfg
        self.buffer = episodes_buffer(ds, info, device, cfg.gamma)
        self.pretrained = False

    def sample(self) -> dict[str, Tensor]:
        """round(demo_ratio * batch_size) demonstrations, uniformly."""
        return self.buffer.sample(demo_batch_size(self.cfg))

    def pretrain(self, agent: Pretrainable) -> dict[str, Tensor]:
        """`pretrain_steps` pre-training steps on batches of batch_size demonstrations (once)."""
        terms: dict[str, Tensor] = {}
        for _ in range(self.cfg.pretrain_steps):
            terms = agent.pretrain_update(self.buffer.sample(self.cfg.batch_size))
        self.pretrained = True
        return terms

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": self.buffer.state_dict(), "pretrained": self.pretrained}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.buffer.load_state_dict(state["buffer"])
        self.pretrained = bool(state["pretrained"])
