"""What GAIL and AIRL share: the config, the discriminator's losses and the agent around a PPO
generator (the learned reward saved in the run: agents.irl.reward).

Adversarial imitation (Ho & Ermon 2016; Fu, Luo, Levine 2018; CS285, Levine, lecture 20:
"Inverse Reinforcement Learning") is a game: a discriminator learns to tell expert transitions
from the policy's, and the policy (the generator, here PPO) is trained by RL on a reward built
from the discriminator. Convention: D -> 1 on expert data, D -> 0 on policy data, so

    L_D = -E_expert[log D] - E_policy[log(1 - D)]            (binary cross-entropy)

and the generator's reward grows with D. An optional gradient penalty (Gulrajani et al. 2017,
"Improved Training of Wasserstein GANs"; used for GAIL by Kostrikov et al. 2019, "Discriminator-
Actor-Critic") keeps D smooth on interpolates of expert and policy inputs:

    L_GP = lambda E_x^[(||grad_x^ logit(x^)||_2 - 1)^2],  x^ = eps x_E + (1 - eps) x_pi.

The generator composes a PPO agent (agents.model_free.ppo) unchanged; the adversarial loop
replaces the env's rewards in its rollout buffer by the learned ones before PPO learns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agents.model_free.ppo import PPO, PPOConfig
from agents.runs.config import require, require_number, require_positive, require_sizes
from models.discriminator import AIRLReward, Discriminator
from models.mlp import check_activation
from sim.registry import EnvInfo


@dataclass(frozen=True)
class AdversarialConfig(PPOConfig):
    """The generator's PPO hyperparameters (inherited) and the discriminator's."""

    dataset: str = ""
    """Dataset folder written by `kinema collect` (required)."""
    max_episodes: int | None = None
    """Learn from the first N expert episodes only (None: all)."""
    disc_hidden: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of the discriminator (AIRL: of g and of h)."""
    disc_activation: str = "tanh"
    """Hidden activation of the discriminator: tanh, relu, elu or silu."""
    disc_lr: float = 3e-4
    """Adam learning rate of the discriminator."""
    disc_batch_size: int = 256
    """Expert and policy transitions per discriminator update (each)."""
    disc_updates: int = 4
    """Discriminator updates per rollout, before the generator's."""
    grad_penalty: float = 0.0
    """Gradient-penalty coefficient lambda (0: off)."""
    absorbing: bool = False
    """A termination leads to an absorbing state with a learned reward (Kostrikov et al. 2019;
    `absorbing_return`): the generator's reward of a terminal transition includes what the
    absorbing state pays from there on, and the discriminator sees one absorbing transition
    per terminal one, on each side (gail, airl)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require_sizes(self, "disc_hidden", allow_empty=False)
        check_activation(self.disc_activation)
        require_number(self, "disc_lr", low=0.0, low_open=True)
        require_number(self, "grad_penalty", low=0.0)
        require_positive(self, "disc_batch_size", "disc_updates")
        if self.max_episodes is not None:
            require_positive(self, "max_episodes")
        require(isinstance(self.dataset, str), "dataset", self.dataset, "a folder path")


def ppo_config(cfg: AdversarialConfig) -> PPOConfig:
    """The generator's own config: the PPOConfig fields of `cfg`."""
    return PPOConfig(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(PPOConfig)})


# -- losses ---------------------------------------------------------------------------------------
def discriminator_loss(logits_expert: Tensor, logits_policy: Tensor) -> Tensor:
    """-E_expert[log D] - E_policy[log(1 - D)], D = sigmoid(logit) (stable in logit form)."""
    return (F.binary_cross_entropy_with_logits(logits_expert, torch.ones_like(logits_expert))
            + F.binary_cross_entropy_with_logits(logits_policy, torch.zeros_like(logits_policy)))


def gradient_penalty(logits_of: Callable[[Tensor], Tensor], x_expert: Tensor, x_policy: Tensor,
                     eps: Tensor) -> Tensor:
    """E[(||grad logit(x^)||_2 - 1)^2] at x^ = eps x_E + (1 - eps) x_pi; eps [B, 1] in [0, 1]."""
    x_hat = (eps * x_expert + (1.0 - eps) * x_policy).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(logits_of(x_hat).sum(), x_hat, create_graph=True)
    return (grad.norm(dim=-1) - 1.0).square().mean()


def airl_f(g_s: Tensor, h_s: Tensor, h_next: Tensor, terminated: Tensor, gamma: float) -> Tensor:
    """AIRL's f(s, a, s') = g(s) + gamma (1 - done) h(s') - h(s); a terminal s' has no
    potential (agents.irl.airl, with a PPO or a SAC generator)."""
    return g_s + gamma * (1.0 - terminated.float()) * h_next - h_s


def absorbing_f(absorbing: Tensor, gamma: float) -> Tensor:
    """f of the absorbing state's self-transition, g_abs + gamma h_abs - h_abs: a scalar.

    Kostrikov et al. (2019), "Discriminator-Actor-Critic", section 4.2: a termination leads to
    an absorbing state whose reward is learned like any other, so that the generator is not
    paid for ending episodes by a reward that is negative on its own states (AIRL's f is), and
    does not take ending as free where the expert never ends (inverted-pendulum)."""
    return absorbing[0] + (gamma - 1.0) * absorbing[1]


def absorbing_return(r_abs: Tensor, terminated: Tensor, gamma: float) -> Tensor:
    """What the absorbing state pays after each terminal transition, sum_k>=1 gamma^k r_abs =
    gamma r_abs / (1 - gamma) [B], 0 after the others."""
    return terminated.float() * gamma / (1.0 - gamma) * r_abs


def absorbing_terms(absorbing: Tensor, terminated: Tensor, gamma: float) -> tuple[Tensor, Tensor]:
    """AIRL's: (the shaping term gamma h_abs of each terminal transition [B], the absorbing
    state's return after it [B]), 0 elsewhere."""
    return (gamma * terminated.float() * absorbing[1],
            absorbing_return(absorbing_f(absorbing, gamma), terminated, gamma))


def per_terminal(logit_abs: Tensor, terminated: Tensor) -> Tensor:
    """The discriminator's logits of the absorbing transitions that follow the batch's terminal
    ones, one each [n_terminal] (an action there is no choice: AIRL has no log pi there)."""
    return logit_abs.reshape(()).expand(int(terminated.sum()))


def absorbing_logits(absorbing: Tensor, terminated: Tensor, gamma: float) -> Tensor:
    """AIRL's logits of the absorbing transitions: f_abs per terminal transition."""
    return per_terminal(absorbing_f(absorbing, gamma), terminated)


def airl_logits(f: Tensor, log_pi: Tensor) -> Tensor:
    """AIRL's logit D = log exp(f) - log pi(a|s) = f - log pi."""
    return f - log_pi


def accuracy(logits_expert: Tensor, logits_policy: Tensor) -> tuple[Tensor, Tensor]:
    """Fractions classified right: expert with D > 1/2, policy with D < 1/2."""
    return (logits_expert > 0).float().mean(), (logits_policy < 0).float().mean()


# -- the agent ------------------------------------------------------------------------------------
class GeneratorAndDiscriminator:
    """The checkpoint of an agent made of a generator (an RL agent), a discriminator and the
    discriminator's optimizer: the optimizers' states together under "optim"."""

    generator: Any
    disc: Any
    disc_opt: torch.optim.Optimizer

    def state_dict(self) -> dict[str, Any]:
        gen = self.generator.state_dict()
        return {"generator": {k: v for k, v in gen.items() if k != "optim"},
                "disc": self.disc.state_dict(),
                "optim": {"generator": gen["optim"], "disc": self.disc_opt.state_dict()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"] | {"optim": state["optim"]["generator"]})
        self.disc.load_state_dict(state["disc"])
        self.disc_opt.load_state_dict(state["optim"]["disc"])


class Adversarial(GeneratorAndDiscriminator):
    """A PPO generator and a discriminator; GAIL and AIRL define the discriminator's logits
    (`logits`, `penalty_inputs`) and the generator's reward (`reward`)."""

    disc: Discriminator | AIRLReward
    reward_form: str
    """How the saved reward reads the discriminator (agents.irl.reward.REWARD_FORMS)."""

    def __init__(self, cfg: AdversarialConfig, info: EnvInfo, device: torch.device) -> None:
        self.cfg, self.info, self.device = cfg, info, device
        self.generator = PPO(ppo_config(cfg), info, device)
        self.disc = self.make_discriminator().to(device)
        self.disc_opt = torch.optim.Adam(self.disc.parameters(), lr=cfg.disc_lr)

    def make_discriminator(self) -> Discriminator | AIRLReward:
        raise NotImplementedError

    # -- the generator (the OnPolicyAgent members, delegated) -----------------------------------
    @property
    def buffer(self) -> Any:
        return self.generator.buffer

    @property
    def raw_next_obs(self) -> Tensor | None:
        """The generator's buffer of raw next observations when it keeps one (RND), or None."""
        return getattr(self.generator, "raw_next_obs", None)

    def normalize(self, obs: Tensor, *, update: bool = False) -> Tensor:
        return self.generator.normalize(obs, update=update)

    def explore(self, obs_n: Tensor) -> tuple[Tensor, Tensor]:
        return self.generator.explore(obs_n)

    def value(self, obs_n: Tensor) -> Tensor:
        return self.generator.value(obs_n)

    def scale_reward(self, reward: Tensor, ended: Tensor) -> Tensor:
        return self.generator.scale_reward(reward, ended)

    def set_lr_fraction(self, frac: float) -> None:
        self.generator.set_lr_fraction(frac)

    def learn(self) -> dict[str, Tensor]:
        return self.generator.learn()

    def act(self, obs: Tensor | np.ndarray, *, deterministic: bool = False) -> Tensor:
        return self.generator.act(obs, deterministic=deterministic)

    def log_pi(self, obs: Tensor, actions: Tensor) -> Tensor:
        """log pi(a|s) [B] under the current generator, for raw observations (no gradient)."""
        with torch.no_grad():
            return self.generator.net.dist(self.normalize(obs)).log_prob(actions)

    # -- the discriminator ----------------------------------------------------------------------
    def set_expert_statistics(self, obs: Tensor) -> None:
        """Fit the discriminator's observation normalizer to the expert observations."""
        self.disc.obs_norm.fit(obs.to(self.device))

    def logits(self, batch: dict[str, Tensor], prefix: str) -> Tensor:
        """The discriminator's logits [B] of the batch's `prefix` transitions ("" or "expert_")."""
        raise NotImplementedError

    def absorbing_logits(self, batch: dict[str, Tensor], prefix: str) -> Tensor:
        """Logits of absorbing transitions after the batch's terminal ones (AIRL --absorbing);
        none by default."""
        return torch.zeros(0, device=self.device)

    def penalty_inputs(self, batch: dict[str, Tensor]) -> tuple[Callable[[Tensor], Tensor],
                                                                 Tensor, Tensor]:
        """(logit function, expert inputs, policy inputs) for the gradient penalty."""
        raise NotImplementedError

    def reward(self, batch: dict[str, Tensor]) -> Tensor:
        """The generator's reward [B] of policy transitions (no gradient)."""
        raise NotImplementedError

    def update(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One discriminator step on policy transitions ("obs", "actions", "next_obs",
        "terminated", raw observations) and as many expert ones (the same keys, "expert_")."""
        le, lp = self.logits(batch, "expert_"), self.logits(batch, "")
        le = torch.cat([le, self.absorbing_logits(batch, "expert_")])
        lp = torch.cat([lp, self.absorbing_logits(batch, "")])
        loss = discriminator_loss(le, lp)
        terms: dict[str, Tensor] = {}
        if self.cfg.grad_penalty > 0:
            logits_of, xe, xp = self.penalty_inputs(batch)
            eps = torch.rand(len(xe), 1, device=xe.device)
            gp = gradient_penalty(logits_of, xe, xp, eps)
            loss = loss + self.cfg.grad_penalty * gp
            terms["grad_penalty"] = gp.detach()
        self.disc_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.disc_opt.step()
        acc_e, acc_p = accuracy(le.detach(), lp.detach())
        return terms | {"disc_loss": loss.detach(), "disc_expert_acc": acc_e,
                        "disc_policy_acc": acc_p}

    # -- export ----------------------------------------------------------------------------------
    def inference_module(self) -> nn.Module:
        """The generator policy: obs (robot units) -> action (robot units), for export."""
        return self.generator.inference_module()

    def learned_reward(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """(weights, description): what RUN/reward/ holds and `load_reward` rebuilds."""
        info = self.info
        meta = {"form": self.reward_form, "obs_dim": info.obs_dim, "act_dim": info.act_dim,
                "discrete": info.discrete, "hidden": list(self.cfg.disc_hidden),
                "activation": self.cfg.disc_activation, "env": info.name}
        weights = {k: v.detach().cpu().contiguous() for k, v in self.disc.state_dict().items()}
        return weights, meta
