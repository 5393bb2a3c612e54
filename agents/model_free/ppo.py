"""Proximal Policy Optimization with clipped surrogate objective.

Schulman, Wolski, Dhariwal, Radford, Klimov (2017), "Proximal Policy Optimization Algorithms",
arXiv:1707.06347; GAE from Schulman et al. (2016), arXiv:1506.02438. Implementation details
(orthogonal init, advantage normalization, value clipping, gradient clipping, learning-rate
annealing, observation normalization) follow Huang et al. (2022), "The 37 Implementation Details
of Proximal Policy Optimization", and CS285 (Levine, lecture 9: advanced policy gradients).

    L^CLIP(theta) = E_t[ min(r_t(theta) A_t, clip(r_t(theta), 1 - eps, 1 + eps) A_t) ]
    r_t(theta)    = pi_theta(a_t|s_t) / pi_theta_old(a_t|s_t)
    L             = -L^CLIP + c_1 L^VF - c_2 H[pi_theta]

With `rnd` > 0, random network distillation (Burda et al. 2019, arXiv:1810.12894; see
agents.model_free.rnd) adds an intrinsic reward r_I(s_{t+1}), a second critic V_I trained on
its non-episodic return (discount rnd_int_gamma) with the same c_1, and the advantage

    A_t = rnd_ext_coef * A_E,t + rnd * rnd_int_coef * A_I,t

so `--rnd 1` is the paper's weighting (2 : 1) and `--rnd COEF` scales the intrinsic part.
f_hat takes one step per minibatch on a random rnd_update_proportion of it. RND is
training-only: the exported policy is the actor alone.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from agents.loops.on_policy import train_on_policy
from agents.model_free import robot_presets
from agents.model_free.on_policy import ActorCriticActing
from agents.model_free.rnd import RND, combined_advantage
from agents.model_free.robot_presets import Preset, Presets
from agents.protocol import Algorithm
from agents.runs.config import require_number, require_positive, require_sizes
from data.returns import gae
from data.rollout import RolloutBuffer
from models.actors import ActorCritic
from models.export_heads import ArgmaxActionHead, ScaledActionHead
from models.mlp import mlp
from models.normalizer import RewardScaler, RunningNorm
from sim.registry import EnvInfo


@dataclass(frozen=True)
class PPOConfig:
    """PPO hyperparameters (names as in the paper and CleanRL)."""

    num_envs: int = 8
    """Parallel environments (gymnasium.vector)."""
    num_steps: int = 128
    """Rollout length per environment; a rollout is num_envs * num_steps transitions."""
    lr: float = 2.5e-4
    """Adam learning rate."""
    anneal_lr: bool = True
    """Anneal the learning rate linearly to 0 over the step budget."""
    gamma: float = 0.99
    """Discount factor."""
    lam: float = 0.95
    """GAE lambda."""
    num_minibatches: int = 4
    """Minibatches per epoch."""
    update_epochs: int = 4
    """Passes over each rollout."""
    norm_adv: bool = True
    """Normalize advantages per minibatch."""
    clip_coef: float = 0.2
    """Surrogate clipping epsilon."""
    clip_vloss: bool = True
    """Clip the value update around the old value estimate."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient c_2."""
    vf_coef: float = 0.5
    """Value loss coefficient c_1."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    target_kl: float | None = None
    """Stop an update's epochs early when the approximate KL exceeds this (None: never)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of actor and critic."""
    activation: str = "tanh"
    """Hidden activation: tanh, relu, elu or silu."""
    norm_obs: bool = True
    """Normalize observations with running statistics (exported with the policy)."""
    norm_reward: bool = False
    """Scale rewards by the running std of the discounted return."""
    init_log_std: float = 0.0
    """Initial log standard deviation of the Gaussian policy (continuous actions)."""
    ortho_init: bool = True
    """Orthogonal init of actor and critic (Huang et al. 2022); False: PyTorch's default init,
    as RL-Zoo's tuned MuJoCo settings use."""
    rnd: float = 0.0
    """Random network distillation: the scale of the intrinsic advantage, A = rnd_ext_coef *
    A_E + rnd * rnd_int_coef * A_I (1: the paper's weights); 0 turns RND off."""
    rnd_int_gamma: float = 0.99
    """Discount of the (non-episodic) intrinsic return (paper: 0.99)."""
    rnd_ext_coef: float = 2.0
    """Weight of the extrinsic advantage when RND is on (paper: 2)."""
    rnd_int_coef: float = 1.0
    """Weight of the intrinsic advantage, times `rnd` (paper: 1)."""
    rnd_update_proportion: float = 0.25
    """Fraction of each minibatch the RND predictor trains on (paper: 0.25)."""
    rnd_hidden: tuple[int, ...] = (64, 64)
    """Hidden sizes of the RND target network (the predictor has one more layer)."""
    rnd_features: int = 64
    """Output size k of the RND target and predictor."""

    def __post_init__(self) -> None:
        require_positive(self, "num_envs", "num_steps", "num_minibatches", "update_epochs")
        require_number(self, "lr", "max_grad_norm", low=0.0, low_open=True)
        require_number(self, "gamma", "lam", low=0.0, high=1.0)
        require_number(self, "clip_coef", low=0.0, low_open=True)
        require_number(self, "ent_coef", "vf_coef", low=0.0)
        require_number(self, "target_kl", low=0.0, low_open=True, optional=True)
        require_number(self, "init_log_std")
        require_sizes(self, "hidden")
        require_number(self, "rnd", "rnd_ext_coef", "rnd_int_coef", low=0.0)
        require_number(self, "rnd_int_gamma", low=0.0, high=1.0)
        require_number(self, "rnd_update_proportion", low=0.0, high=1.0, low_open=True)
        require_sizes(self, "rnd_hidden", allow_empty=False)
        require_positive(self, "rnd_features")
        batch = self.num_envs * self.num_steps
        if batch % self.num_minibatches:
            raise ValueError(
                f"num_envs * num_steps = {batch} must be divisible by num_minibatches "
                f"= {self.num_minibatches}"
            )


def clipped_surrogate_loss(logp: Tensor, logp_old: Tensor, adv: Tensor, clip_coef: float) -> Tensor:
    """-L^CLIP: the negated clipped surrogate objective, averaged over the batch."""
    ratio = (logp - logp_old).exp()
    unclipped = ratio * adv
    clipped = ratio.clamp(1.0 - clip_coef, 1.0 + clip_coef) * adv
    return -torch.min(unclipped, clipped).mean()


def value_loss(
    value: Tensor, value_old: Tensor, returns: Tensor, clip_coef: float | None
) -> Tensor:
    """0.5 * (V - R)^2, optionally the pessimistic max with the clipped update (PPO2 style)."""
    loss = (value - returns).square()
    if clip_coef is not None:
        v_clipped = value_old + (value - value_old).clamp(-clip_coef, clip_coef)
        loss = torch.max(loss, (v_clipped - returns).square())
    return 0.5 * loss.mean()


def approx_kl(logp: Tensor, logp_old: Tensor) -> Tensor:
    """KL(pi_old || pi) estimator (r - 1) - log r, low variance and unbiased (Schulman 2020)."""
    log_ratio = logp - logp_old
    return (log_ratio.exp() - 1.0 - log_ratio).mean()


class PPO(ActorCriticActing):
    """PPO agent: act, learn from a rollout, save/load, export."""

    def __init__(self, cfg: PPOConfig, info: EnvInfo, device: torch.device) -> None:
        self.cfg, self.info, self.device = cfg, info, device
        obs_dim, act_dim = info.obs_dim, info.act_dim
        self.net = ActorCritic(
            obs_dim, act_dim, discrete=info.discrete, hidden=cfg.hidden,
            activation=cfg.activation, init_log_std=cfg.init_log_std, orthogonal=cfg.ortho_init,
        ).to(device)
        # fused: one kernel per step for all parameters (the per-tensor loop PyTorch picks on
        # CPU otherwise costs more than the math for these small nets)
        self._params = list(self.net.parameters())
        self.rnd: RND | None = None
        if cfg.rnd > 0:  # built only when on, so a run without RND draws the same numbers
            self.int_critic = mlp(obs_dim, cfg.hidden, 1, activation=cfg.activation).to(device)
            self._params += list(self.int_critic.parameters())
            self.rnd = RND(obs_dim, cfg.num_envs, int_gamma=cfg.rnd_int_gamma,
                           update_proportion=cfg.rnd_update_proportion, lr=cfg.lr,
                           hidden=cfg.rnd_hidden, features=cfg.rnd_features,
                           max_grad_norm=cfg.max_grad_norm, device=device)
            self.rnd_opt = self.rnd.opt  # an attribute, so checkpoint checks see both optimizers
            # s_{t+1} as the env returned it, filled by the on-policy loop; NaN until filled
            self.raw_next_obs = torch.full((cfg.num_steps, cfg.num_envs, obs_dim), math.nan,
                                           device=device)
        self.opt = torch.optim.Adam(self._params, lr=cfg.lr, eps=1e-5, fused=True)
        self.reward_scaler = RewardScaler(cfg.num_envs, cfg.gamma).to(device)
        self.buffer = RolloutBuffer(cfg.num_steps, cfg.num_envs, obs_dim,
                                    () if info.discrete else (act_dim,),
                                    discrete=info.discrete, device=device)

    # -- learning -------------------------------------------------------------------------------
    def set_lr_fraction(self, frac: float) -> None:
        """Linear annealing: lr = frac * cfg.lr (with anneal_lr; else lr stays cfg.lr)."""
        if not self.cfg.anneal_lr:
            return
        groups = self.opt.param_groups + (self.rnd.opt.param_groups if self.rnd else [])
        for g in groups:
            g["lr"] = frac * self.cfg.lr

    def update(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One gradient step on a minibatch; returns the loss terms (tensors, no host sync)."""
        cfg = self.cfg
        d = self.net.dist(batch["obs"])
        logp = d.log_prob(batch["actions"])
        adv = batch["advantages"]
        if cfg.norm_adv:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg_loss = clipped_surrogate_loss(logp, batch["logp"], adv, cfg.clip_coef)
        v_loss = value_loss(self.net.value(batch["obs"]), batch["values"], batch["returns"],
                            cfg.clip_coef if cfg.clip_vloss else None)
        entropy = d.entropy().mean()
        loss = pg_loss - cfg.ent_coef * entropy + cfg.vf_coef * v_loss
        rnd_terms: dict[str, Tensor] = {}
        if self.rnd is not None:  # V_I on the intrinsic return, with the same clipping
            int_v_loss = value_loss(self.int_critic(batch["obs"]).squeeze(-1),
                                    batch["int_values"], batch["int_returns"],
                                    cfg.clip_coef if cfg.clip_vloss else None)
            loss = loss + cfg.vf_coef * int_v_loss
            rnd_terms = {"int_value_loss": int_v_loss.detach(),
                         "rnd_loss": self.rnd.step(batch["rnd_inputs"])}
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self._params, cfg.max_grad_norm, foreach=True)
        self.opt.step()
        with torch.no_grad():
            kl = approx_kl(logp, batch["logp"])
            clipfrac = ((logp - batch["logp"]).exp().sub(1.0).abs() > cfg.clip_coef).float().mean()
        return {"policy_loss": pg_loss.detach(), "value_loss": v_loss.detach(),
                "entropy": entropy.detach(), "approx_kl": kl, "clipfrac": clipfrac, **rnd_terms}

    def learn(self) -> dict[str, Tensor]:
        """update_epochs passes of minibatch updates over the filled rollout buffer."""
        b, cfg = self.buffer, self.cfg
        adv, returns = gae(b.rewards, b.values, b.next_values, b.terminated, b.ended,
                           gamma=cfg.gamma, lam=cfg.lam)
        extra: dict[str, Tensor] = {}
        if self.rnd is not None:
            adv, extra = self.intrinsic(adv)
        terms: list[dict[str, Tensor]] = []
        for _ in range(cfg.update_epochs):
            batches = (b.minibatches(adv, returns, cfg.num_minibatches) if self.rnd is None
                       else self._minibatches(adv, returns, extra))
            for batch in batches:
                terms.append(self.update(batch))
            # target_kl needs the value on the host: one sync per epoch, only when asked for.
            if cfg.target_kl is not None and float(terms[-1]["approx_kl"]) > cfg.target_kl:
                break
        out = {k: torch.stack([t[k] for t in terms]).mean() for k in terms[0]}
        var_y = returns.var()
        out["explained_variance"] = 1.0 - (returns - b.values).var() / var_y.clamp_min(1e-8)
        return out | {k: v for k, v in extra.items() if k.startswith("int_reward")}

    @torch.no_grad()
    def intrinsic(self, adv_ext: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """RND on the filled rollout: the combined advantage [T, N] and the per-sample targets
        of V_I and f_hat, plus the rollout's mean normalized and raw intrinsic rewards."""
        assert self.rnd is not None
        cfg, b, raw_next = self.cfg, self.buffer, self.raw_next_obs
        if not bool(torch.isfinite(raw_next).all()):  # one host sync per rollout
            raise RuntimeError("PPO with rnd > 0 needs every next observation of the rollout in "
                               "agent.raw_next_obs, which agents.loops.on_policy fills; this "
                               "loop did not")
        r_int, raw = self.rnd.rewards(raw_next)
        # s_{t+1} as the critics see it: the next row of the buffer, and for the last step the
        # observation the loop normalized last (the statistics have not moved since)
        next_n = torch.cat([b.obs[1:], self.normalize(raw_next[-1])[None]])
        v_int = self.int_critic(b.obs).squeeze(-1)
        no_end = torch.zeros_like(b.ended)  # non-episodic: episode ends cut nothing
        adv_int, ret_int = gae(r_int, v_int, self.int_critic(next_n).squeeze(-1), no_end,
                               no_end, gamma=cfg.rnd_int_gamma, lam=cfg.lam)
        adv = combined_advantage(adv_ext, adv_int, cfg.rnd_ext_coef, cfg.rnd * cfg.rnd_int_coef)
        extra = {"int_values": v_int, "int_returns": ret_int,
                 "rnd_inputs": self.rnd.inputs(raw_next), "int_reward": r_int.mean(),
                 "int_reward_raw": raw.mean()}
        raw_next.fill_(math.nan)
        return adv, extra

    def _minibatches(self, adv: Tensor, returns: Tensor,
                     extra: dict[str, Tensor]) -> Iterator[dict[str, Tensor]]:
        """RolloutBuffer.minibatches with the RND fields beside (the same permutation draw)."""
        b = self.buffer
        n = b.num_steps * b.num_envs
        flat = {"obs": b.obs.reshape(n, -1), "actions": b.actions.reshape(n, *b.actions.shape[2:]),
                "logp": b.logp.reshape(n), "values": b.values.reshape(n),
                "advantages": adv.reshape(n), "returns": returns.reshape(n)}
        flat |= {k: extra[k].reshape(n, *extra[k].shape[2:])
                 for k in ("int_values", "int_returns", "rnd_inputs")}
        perm = torch.randperm(n, device=b.obs.device)
        size = n // self.cfg.num_minibatches
        for i in range(self.cfg.num_minibatches):
            idx = perm[i * size : (i + 1) * size]
            yield {k: v[idx] for k, v in flat.items()}

    # -- state and export -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {"net": self.net.state_dict(), "reward_scaler": self.reward_scaler.state_dict(),
                 "optim": self.opt.state_dict()}
        if self.rnd is not None:  # with RND two optimizers, as an agent with several files them
            state |= {"int_critic": self.int_critic.state_dict(), "rnd": self.rnd.state_dict(),
                      "optim": {"policy": state["optim"], "rnd": self.rnd_opt.state_dict()}}
        return state

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.reward_scaler.load_state_dict(state["reward_scaler"])
        if self.rnd is None:
            self.opt.load_state_dict(state["optim"])
            return
        self.opt.load_state_dict(state["optim"]["policy"])
        self.rnd_opt.load_state_dict(state["optim"]["rnd"])
        self.int_critic.load_state_dict(state["int_critic"])
        self.rnd.load_state_dict(state["rnd"])

    def inference_module(self) -> nn.Module:
        """obs (robot units) -> deterministic action (robot units), on CPU, for export."""
        norm = self.net.obs_norm if self.cfg.norm_obs else _identity_norm(self.net.obs_norm)
        if self.info.discrete:
            return ArgmaxActionHead(norm, self.net.actor).cpu().eval()
        low = torch.tensor(self.info.action_low)
        high = torch.tensor(self.info.action_high)
        return ScaledActionHead(norm, self.net.actor, low, high).cpu().eval()


def _identity_norm(norm: RunningNorm) -> RunningNorm:
    """A normalizer with mean 0, var 1 - eps (exact identity up to the clip), for norm_obs=False."""
    ident = copy.deepcopy(norm)
    ident.mean.zero_()
    ident.var.fill_(1.0 - ident.eps)
    ident.clip = float("inf")
    return ident


_TUNED = Presets({
    # RL-Zoo's CartPole-v1 settings with half the epochs, a doubled step size and two
    # minibatches: the same number of gradient steps per rollout solves in a median of
    # ~7k env steps instead of ~14k (10 seeds; BENCHMARKS.md).
    "cartpole": Preset(dict(num_envs=8, num_steps=32, lr=2e-3, gamma=0.98, lam=0.8,
                            num_minibatches=2, update_epochs=10, ent_coef=0.0, clip_vloss=False),
                       "RL-Zoo ppo.yml CartPole-v1, retuned here (BENCHMARKS.md)", 100_000),
    # RL-Zoo's tuned Pendulum settings: short GAE horizon, reward scaling, many epochs.
    "pendulum": Preset(dict(num_envs=4, num_steps=256, lr=1e-3, gamma=0.9, lam=0.95,
                            update_epochs=10, num_minibatches=16, clip_coef=0.2,
                            norm_reward=True, init_log_std=-0.5, max_grad_norm=0.5),
                       "RL-Zoo ppo.yml Pendulum-v1 (BENCHMARKS.md)", 200_000),
    # The sparse-reward demo of `rnd`: short rollouts over 8 envs, few epochs (fast on CPU).
    # Reward scaling keeps the -1 per step from swamping the intrinsic advantage.
    "mountaincar": Preset(dict(num_envs=8, num_steps=128, lr=1e-3, update_epochs=4,
                               num_minibatches=4, ent_coef=0.0, norm_reward=True),
                          "measured here with RND (BENCHMARKS.md, exploration)", 100_000),
    "inverted-pendulum": Preset(dict(num_envs=4, num_steps=256, lr=3e-4, update_epochs=10,
                                     num_minibatches=8, norm_reward=True),
                                "measured here (BENCHMARKS.md)"),
} | robot_presets.PPO)
_TUNED["mountaincar-continuous"] = Preset(_TUNED["mountaincar"].fields,
                                          _TUNED["mountaincar"].source)
_FALLBACK = dict(num_envs=4, num_steps=512, lr=3e-4, update_epochs=10, num_minibatches=32,
                 norm_reward=True)


def preset(env: str) -> PPOConfig:
    """Per-env defaults: the small envs tuned on this project's machine, the robots from
    agents/model_free/robot_presets.py, a generic fallback for the rest."""
    return PPOConfig(**_TUNED.fields(env, _FALLBACK))


ALGORITHMS = (
    Algorithm(
        name="ppo", config_cls=PPOConfig, preset=preset, make_agent=PPO, loop=train_on_policy,
        actions=("discrete", "continuous"), default_steps=_TUNED.steps(lambda env: 1_000_000),
        preset_source=_TUNED.source,
        description="Proximal Policy Optimization (Schulman et al. 2017), on-policy.",
    ),
)
