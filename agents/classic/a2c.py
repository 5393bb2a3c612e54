"""A2C: synchronous advantage actor-critic with n-step (or GAE) advantages.

Mnih, Badia, Mirza, Graves, Lillicrap, Harley, Silver, Kavukcuoglu (2016), "Asynchronous
Methods for Deep Reinforcement Learning", arXiv:1602.01783, in the synchronous form of OpenAI
Baselines and Stable-Baselines3 (one batched update over all envs per rollout instead of
asynchronous workers); GAE from Schulman et al. (2016), arXiv:1506.02438; CS285 (Levine,
lecture 6: actor-critic algorithms).

    A_t = sum_{k<n} gamma^k r_{t+k} + gamma^n V(s_{t+n}) - V(s_t)        (lam = 1: n-step)
    L   = -mean(log pi(a_t|s_t) A_t) + c_v mean((V(s_t) - R_t)^2) - c_e H[pi(.|s_t)]

with R_t = A_t + V(s_t), one RMSprop step per rollout of num_steps steps in each env (RMSprop
with alpha 0.99 as in the paper, eps 1e-5 as in Baselines and SB3) and a clipped gradient norm.
`lam` < 1 gives GAE advantages over the same rollout. The policy-gradient and value losses are
REINFORCE's (agents.classic.reinforce) with a bootstrapped critic in place of the Monte-Carlo
return.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from agents.classic.reinforce import policy_gradient_loss, value_regression_loss
from agents.loops.on_policy import train_on_policy
from agents.model_free.on_policy import ActorCriticActing
from agents.model_free.robot_presets import tuned_on
from agents.protocol import Algorithm
from agents.runs.config import require_number, require_positive, require_sizes
from data.returns import gae
from data.rollout import RolloutBuffer
from models.actors import ActorCritic
from models.normalizer import RewardScaler
from sim.registry import EnvInfo


@dataclass(frozen=True)
class A2CConfig:
    """A2C hyperparameters (names and defaults as in Stable-Baselines3's A2C)."""

    num_envs: int = 8
    """Parallel environments (gymnasium.vector): the synchronous actors."""
    num_steps: int = 5
    """Rollout length per environment (n of the n-step return)."""
    lr: float = 7e-4
    """RMSprop learning rate."""
    anneal_lr: bool = False
    """Anneal the learning rate linearly to 0 over the step budget (Baselines' default)."""
    gamma: float = 0.99
    """Discount factor."""
    lam: float = 1.0
    """GAE lambda; 1.0 gives the n-step advantages of the paper."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient c_e."""
    vf_coef: float = 0.5
    """Value loss coefficient c_v."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    rms_alpha: float = 0.99
    """RMSprop smoothing constant (the paper's alpha)."""
    rms_eps: float = 1e-5
    """RMSprop epsilon."""
    norm_adv: bool = False
    """Standardize the advantages of each rollout."""
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

    def __post_init__(self) -> None:
        require_positive(self, "num_envs", "num_steps")
        require_number(self, "lr", "max_grad_norm", "rms_eps", low=0.0, low_open=True)
        require_number(self, "gamma", "lam", "rms_alpha", low=0.0, high=1.0)
        require_number(self, "ent_coef", "vf_coef", low=0.0)
        require_number(self, "init_log_std")
        require_sizes(self, "hidden")


class A2C(ActorCriticActing):
    """A2C agent: act, one combined update per rollout, save/load, export."""

    def __init__(self, cfg: A2CConfig, info: EnvInfo, device: torch.device) -> None:
        self.cfg, self.info, self.device = cfg, info, device
        self.net = ActorCritic(
            info.obs_dim, info.act_dim, discrete=info.discrete, hidden=cfg.hidden,
            activation=cfg.activation, init_log_std=cfg.init_log_std,
        ).to(device)
        self._params = list(self.net.parameters())
        self.opt = torch.optim.RMSprop(self._params, lr=cfg.lr, alpha=cfg.rms_alpha,
                                       eps=cfg.rms_eps, foreach=True)
        self.reward_scaler = RewardScaler(cfg.num_envs, cfg.gamma).to(device)
        self.buffer = RolloutBuffer(cfg.num_steps, cfg.num_envs, info.obs_dim,
                                    () if info.discrete else (info.act_dim,),
                                    discrete=info.discrete, device=device)

    # -- learning -------------------------------------------------------------------------------
    def set_lr_fraction(self, frac: float) -> None:
        """Linear annealing: lr = frac * cfg.lr (with anneal_lr; else lr stays cfg.lr)."""
        if not self.cfg.anneal_lr:
            return
        for g in self.opt.param_groups:
            g["lr"] = frac * self.cfg.lr

    def update(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One gradient step of the combined loss on a batch (obs, actions, advantages,
        returns); the loss terms (tensors, no host sync)."""
        cfg = self.cfg
        adv = batch["advantages"]
        if cfg.norm_adv:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        d = self.net.dist(batch["obs"])
        pg_loss = policy_gradient_loss(d.log_prob(batch["actions"]), adv)
        v_loss = value_regression_loss(self.net.value(batch["obs"]), batch["returns"])
        entropy = d.entropy().mean()
        loss = pg_loss + cfg.vf_coef * v_loss - cfg.ent_coef * entropy
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self._params, cfg.max_grad_norm, foreach=True)
        self.opt.step()
        return {"policy_loss": pg_loss.detach(), "value_loss": v_loss.detach(),
                "entropy": entropy.detach()}

    def learn(self) -> dict[str, Tensor]:
        """The update on the whole filled rollout buffer: n-step (GAE) advantages, one step."""
        b, cfg = self.buffer, self.cfg
        adv, returns = gae(b.rewards, b.values, b.next_values, b.terminated, b.ended,
                           gamma=cfg.gamma, lam=cfg.lam)
        n = b.num_steps * b.num_envs
        return self.update({"obs": b.obs.reshape(n, -1),
                            "actions": b.actions.reshape(n, *b.actions.shape[2:]),
                            "advantages": adv.reshape(n), "returns": returns.reshape(n)})


def preset(env: str) -> A2CConfig:
    """Per-env defaults, tuned on this project's machine (the learning test's docstring)."""
    if env == "cartpole":
        # RL-Zoo's CartPole-v1 entry (8 envs, ent_coef 0, SB3's A2C defaults otherwise) with
        # normalized observations: 475 in a median of 6,000 env steps over 5 seeds.
        return A2CConfig(num_envs=8, num_steps=5, ent_coef=0.0)
    # Continuous control: the same with reward scaling (inverted-pendulum, seed 0: 1,000 after
    # 30,000 env steps).
    return A2CConfig(num_envs=8, num_steps=5, norm_reward=True)


def default_steps(env: str) -> int:
    return {"cartpole": 200_000}.get(env, 1_000_000)


ALGORITHMS = (
    Algorithm(
        name="a2c", config_cls=A2CConfig, preset=preset, make_agent=A2C, loop=train_on_policy,
        actions=("discrete", "continuous"), default_steps=default_steps,
        preset_source=tuned_on("RL-Zoo a2c.yml CartPole-v1 (the learning test's docstring)",
                               "cartpole"),
        description="Advantage actor-critic, synchronous (Mnih et al. 2016), on-policy.",
    ),
)
