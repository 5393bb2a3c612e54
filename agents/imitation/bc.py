"""Behavioral cloning: supervised learning of the expert's action from the observation.

Pomerleau (1989), "ALVINN"; Bain & Sammut (1995); CS285 (Levine, lecture 2), "Supervised learning
of behaviors": fit pi_theta(a_t | o_t) to demonstrations D = {(o_t, a_t)}. Heads:

    mse   L = || mu_theta(o) - a ||^2                            (deterministic regression)
    nll   L = -log N(a; mu_theta(o), diag sigma_theta(o)^2)      (Gaussian likelihood)
    discrete actions: L = -log softmax(logits_theta(o))[a]       (cross-entropy, always)

An optional ensemble of E members (independent inits, one batched network) is averaged at
inference, which lowers the variance of the cloned policy where data is thin (as in the
ensembles of Lakshminarayanan et al. 2017). Observations are normalized with statistics of the
training split (kept in the policy and exported with it); a held-out validation split stops
training when its loss stops improving and the best weights are kept.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agents.loops.offline import check_inputs, train_bc
from agents.protocol import Algorithm
from agents.runs.config import require, require_number, require_positive, require_sizes
from models.ensemble import ensemble_mlp
from models.export_heads import ArgmaxActionHead, EnsembleMean, ScaledActionHead
from models.normalizer import RunningNorm
from sim.registry import EnvInfo

HEADS = ("mse", "nll")


@dataclass(frozen=True)
class BCConfig:
    """BC hyperparameters; `kinema train bc --steps N` caps the gradient updates."""

    dataset: str = ""
    """Dataset folder written by `kinema collect` (required for bc)."""
    max_episodes: int | None = None
    """Learn from the first N episodes only (None: all)."""
    head: str = "mse"
    """mse (regression) or nll (Gaussian likelihood); discrete actions use cross-entropy."""
    ensemble: int = 1
    """Ensemble members, trained together as one batched network, averaged at inference."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer sizes."""
    activation: str = "relu"
    """Hidden activation: tanh, relu, elu or silu."""
    lr: float = 1e-3
    """Adam learning rate."""
    weight_decay: float = 0.0
    """Adam L2 weight decay."""
    batch_size: int = 256
    """Minibatch size."""
    val_frac: float = 0.1
    """Fraction of the transitions held out for validation (0: no early stopping)."""
    val_every: int = 250
    """Updates between validation checks."""
    patience: int = 8
    """Validation checks without improvement before training stops."""
    norm_obs: bool = True
    """Normalize observations with the training split's mean and std (exported)."""
    min_log_std: float = -5.0
    """Lower clamp of the nll head's log std."""
    max_log_std: float = 1.0
    """Upper clamp of the nll head's log std."""

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"head {self.head!r} is not one of {', '.join(HEADS)}")
        require_positive(self, "ensemble", "batch_size", "val_every", "patience")
        require_number(self, "val_frac", low=0.0, high=1.0, high_open=True)
        require_number(self, "lr", low=0.0, low_open=True)
        require_number(self, "weight_decay", low=0.0)
        require_number(self, "min_log_std", "max_log_std")
        require(self.min_log_std <= self.max_log_std, "min_log_std", self.min_log_std,
                f"at most max_log_std ({self.max_log_std})")
        require_sizes(self, "hidden")
        if self.max_episodes is not None:
            require_positive(self, "max_episodes")


def mse_loss(mean: Tensor, target: Tensor) -> Tensor:
    """mean [E, B, A], target [B, A]: squared error summed over A, averaged over E and B."""
    return (mean - target).square().sum(-1).mean()


def gaussian_nll_loss(mean: Tensor, log_std: Tensor, target: Tensor) -> Tensor:
    """-log N(target; mean, exp(log_std)^2), summed over A, averaged over E and B."""
    z = (target - mean) / log_std.exp()
    return (0.5 * z.square() + log_std + 0.5 * math.log(2 * math.pi)).sum(-1).mean()


def cross_entropy_loss(logits: Tensor, target: Tensor) -> Tensor:
    """logits [E, B, n], target [B] (int64): mean over E and B of -log softmax(logits)[target]."""
    E = logits.shape[0]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.repeat(E))


@dataclass
class EarlyStopping:
    """Validation early stopping: the best loss so far and the checks since it improved."""

    best_val: float | None = None
    bad_checks: int = 0
    stopped: bool = False
    updates: int = 0
    """Gradient updates so far (validation runs every cfg.val_every of them)."""
    val_loss: float | None = None
    """The latest validation loss."""

    @classmethod
    def from_dict(cls, d: dict) -> EarlyStopping:
        """From a checkpoint; older ones stored `stopped` as 0/1 and lacked some keys."""
        return cls(best_val=d.get("best_val"), bad_checks=int(d.get("bad_checks") or 0),
                   stopped=bool(d.get("stopped")), updates=int(d.get("updates") or 0),
                   val_loss=d.get("val_loss"))


class BC:
    """A cloned policy: learn from batches of (observation, expert action), act, export."""

    def __init__(self, cfg: BCConfig, info: EnvInfo, device: torch.device) -> None:
        self.cfg, self.info, self.device = cfg, info, device
        self.act_dim = info.act_dim
        self.reinitialize()

    def reinitialize(self) -> None:
        """Fresh weights, optimizer and normalizer: a new learner (DAgger without warm start)."""
        cfg, info = self.cfg, self.info
        out = self.act_dim * (2 if cfg.head == "nll" and not info.discrete else 1)
        self.net = ensemble_mlp(cfg.ensemble, info.obs_dim, cfg.hidden, out,
                                activation=cfg.activation).to(self.device)
        self.obs_norm = RunningNorm((info.obs_dim,)).to(self.device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr,
                                    weight_decay=cfg.weight_decay)
        self.best = copy.deepcopy(self.net.state_dict())
        self.current: dict | None = None
        """Training weights set aside while the best ones are in `net` (see restore_best)."""
        self.stopping = EarlyStopping()

    @property
    def stopped(self) -> bool:
        return self.stopping.stopped

    @property
    def val_loss(self) -> float | None:
        return self.stopping.val_loss

    @property
    def updates(self) -> int:
        return self.stopping.updates

    def set_statistics(self, obs: Tensor) -> None:
        """Observation statistics from the training split (what the exported policy uses)."""
        self.obs_norm = RunningNorm(tuple(self.obs_norm.mean.shape)).to(self.device)
        if self.cfg.norm_obs:
            self.obs_norm.update(obs.to(self.device))
        else:
            self.obs_norm.var.fill_(1.0 - self.obs_norm.eps)
            self.obs_norm.clip = float("inf")

    def loss(self, obs: Tensor, actions: Tensor) -> Tensor:
        out = self.net(self.obs_norm(obs))  # [E, B, out]
        if self.info.discrete:
            return cross_entropy_loss(out, actions.long().reshape(-1))
        mean = out[..., : self.act_dim]
        if self.cfg.head == "mse":
            return mse_loss(mean, actions)
        log_std = out[..., self.act_dim:].clamp(self.cfg.min_log_std, self.cfg.max_log_std)
        return gaussian_nll_loss(mean, log_std, actions)

    def update(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One Adam step on a minibatch {"obs", "actions"}; returns the loss (no host sync)."""
        loss = self.loss(batch["obs"], batch["actions"])
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.stopping.updates += 1
        return {"bc_loss": loss.detach()}

    @torch.no_grad()
    def validation_loss(self, obs: Tensor, actions: Tensor, chunk: int = 8192) -> float:
        total = sum(float(self.loss(obs[i:i + chunk], actions[i:i + chunk])) * len(obs[i:i + chunk])
                    for i in range(0, len(obs), chunk))
        return total / max(1, len(obs))

    def validate(self, obs: Tensor, actions: Tensor) -> None:
        """One validation check on held-out data (one host sync); may stop training."""
        val = self.validation_loss(obs, actions)
        self.stopping.val_loss = val
        if self.check_validation(val):
            self.stopping.stopped = True

    def check_validation(self, val_loss: float) -> bool:
        """Early stopping bookkeeping; True when patience has run out."""
        st = self.stopping
        if st.best_val is None or val_loss < st.best_val:
            st.best_val, st.bad_checks = val_loss, 0
            self.best = copy.deepcopy(self.net.state_dict())
            return False
        st.bad_checks += 1
        return st.bad_checks >= self.cfg.patience

    def restore_best(self) -> None:
        """Put the best-validation weights in `net` (for acting, evaluation and export) and set
        the training weights aside, so more training resumes exactly where it stopped."""
        if self.current is None:
            self.current = copy.deepcopy(self.net.state_dict())
        self.net.load_state_dict(self.best)

    def resume_training(self) -> None:
        """Undo restore_best before more updates."""
        if self.current is not None:
            self.net.load_state_dict(self.current)
            self.current = None

    def reset_early_stopping(self) -> None:
        """A new fit (DAgger's next round) starts its own early-stopping record."""
        self.stopping.best_val, self.stopping.bad_checks, self.stopping.stopped = None, 0, False

    @torch.no_grad()
    def act(self, obs: Tensor | np.ndarray, *, deterministic: bool = False) -> Tensor:
        """Actions in env units ([-1, 1] or indices) for raw observations [B, obs_dim].

        Stochastic acting samples one ensemble member and, for the nll head, its Gaussian.
        """
        obs_n = self.obs_norm(torch.as_tensor(obs, dtype=torch.float32, device=self.device))
        out = self.net(obs_n)  # [E, B, out]
        head = out[..., : self.act_dim]
        if deterministic:
            mean = head.mean(0)
            return mean.argmax(-1) if self.info.discrete else mean.clamp(-1.0, 1.0)
        member = head[torch.randint(len(head), ())]
        if self.info.discrete:
            return torch.distributions.Categorical(logits=member).sample()
        if self.cfg.head == "nll":
            log_std = out[..., self.act_dim:][0].clamp(self.cfg.min_log_std, self.cfg.max_log_std)
            member = member + log_std.exp() * torch.randn_like(member)
        return member.clamp(-1.0, 1.0)

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "best": self.best, "current": self.current,
                "obs_norm": self.obs_norm.state_dict(), "obs_norm_clip": self.obs_norm.clip,
                "counters": dataclasses.asdict(self.stopping),
                "optim": self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.best = state["best"]
        self.current = state.get("current")
        self.obs_norm.load_state_dict(state["obs_norm"])
        self.obs_norm.clip = float(state["obs_norm_clip"])
        self.stopping = EarlyStopping.from_dict(state["counters"])
        self.opt.load_state_dict(state["optim"])

    def inference_module(self) -> nn.Module:
        """obs (robot units) -> action (robot units): normalizer, ensemble mean, clip, scale."""
        actor = EnsembleMean(self.net, self.act_dim)
        if self.info.discrete:
            return ArgmaxActionHead(self.obs_norm, actor).cpu().eval()
        low, high = torch.tensor(self.info.action_low), torch.tensor(self.info.action_high)
        return ScaledActionHead(self.obs_norm, actor, low, high).cpu().eval()


def preset(env: str) -> BCConfig:
    """Per-env defaults (see BENCHMARKS.md, imitation section)."""
    return BCConfig()


ALGORITHMS = (
    Algorithm(
        name="bc", config_cls=BCConfig, preset=preset, make_agent=BC, loop=train_bc,
        actions=("discrete", "continuous"), default_steps=lambda env: 20_000,
        description="Behavioral cloning (Pomerleau 1989) from a dataset; steps are updates.",
        vector_envs=False, check=check_inputs,
    ),
)
