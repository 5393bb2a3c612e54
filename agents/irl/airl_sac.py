"""AIRL with a SAC generator (`kinema train airl --generator sac`): the disentangled reward of
agents.irl.airl learned against replayed transitions, SAC trained off-policy on it.

Fu, Luo, Levine (2018) train AIRL's generator with TRPO on fresh rollouts; here the generator is
SAC (Haarnoja et al. 2018) and the off-policy loop (agents.loops.off_policy) runs unchanged.
Every SAC update is preceded by one discriminator step on its replay batch against as many
expert transitions (the replay buffer as the discriminator's policy data, as Kostrikov et al.
2019, "Discriminator-Actor-Critic", train GAIL's off-policy), with the same logit as the PPO
path, f(s, a, s') - log pi(a|s), log pi the current SAC actor's tanh-Gaussian density. The
replay batch's rewards are then replaced by f(s, a, s') of the updated discriminator (relabelled
at sample time, so old transitions are scored by the current reward). SAC's own entropy term
is the maximum-entropy part, so the reward has no -alpha log pi of its own (imitation's
AIRL with SAC does the same: its generator reward is f).

The generator's hyperparameters are SAC's preset for the env, with the run's num_envs and gamma
(one gamma: the shaping term gamma h(s') - h(s) must discount as the generator does). The
learned reward g(s) is written to RUN/reward/ when the run ends.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from agents.irl.adversarial import (
    AdversarialConfig,
    GeneratorAndDiscriminator,
    absorbing_logits,
    absorbing_terms,
    accuracy,
    airl_f,
    airl_logits,
    discriminator_loss,
    gradient_penalty,
)
from agents.loops.adversarial import KEYS, expert_transitions
from agents.loops.offline import open_dataset
from agents.model_free import sac
from models.actors import tanh_gaussian_log_prob
from models.discriminator import AIRLReward
from sim.registry import EnvInfo

if TYPE_CHECKING:
    from agents.runs.run import Run

ACTION_EDGE = 1.0 - 1e-4
"""Actions are read at most this far out for log pi: atanh(+-1) is infinite, and expert
actions often sit on the bound."""


def sac_config(cfg: AdversarialConfig, env: str) -> sac.SACConfig:
    """SAC's preset for `env` with the run's num_envs and gamma."""
    return dataclasses.replace(sac.preset(env), num_envs=cfg.num_envs, gamma=cfg.gamma)


class AIRLSAC(GeneratorAndDiscriminator):
    """AIRL's f = g(s) + gamma h(s') - h(s) against the expert's transitions; SAC on f."""

    reward_form = "airl"

    def __init__(self, cfg: AdversarialConfig, info: EnvInfo, device: torch.device) -> None:
        if info.discrete:
            raise ValueError(f"airl --generator sac needs continuous actions; {info.name!r} has "
                             "discrete ones (use --generator ppo)")
        self.airl_cfg, self.info, self.device = cfg, info, device
        self.cfg = sac_config(cfg, info.name)
        """The generator's config: what the off-policy loop reads."""
        self.generator = sac.SAC(self.cfg, info, device)
        self.replay = self.generator.replay
        self.disc = AIRLReward(info.obs_dim, hidden=cfg.disc_hidden,
                               activation=cfg.disc_activation).to(device)
        self.disc_opt = torch.optim.Adam(self.disc.parameters(), lr=cfg.disc_lr)
        self.expert: dict[str, Tensor] | None = None
        """The dataset's transitions, read at the first update (evaluation does not need them)."""
        self.last_disc: dict[str, Tensor] = {}
        """The discriminator's accuracies at its last step (for the evaluation records)."""

    # -- acting (the generator's) ---------------------------------------------------------------
    def act(self, obs: Tensor | Any, *, deterministic: bool = False) -> Tensor:
        return self.generator.act(obs, deterministic=deterministic)

    def explore(self, obs: Tensor, step: int) -> Tensor:
        return self.generator.explore(obs, step)

    def inference_module(self) -> nn.Module:
        return self.generator.inference_module()

    # -- the discriminator ----------------------------------------------------------------------
    def expert_batch(self, n: int) -> dict[str, Tensor]:
        """n random expert transitions; the dataset is read (and D's normalizer fitted to it)
        on first use."""
        if self.expert is None:
            cfg = self.airl_cfg
            ds = open_dataset(cfg.dataset, self.info.name)
            self.expert = expert_transitions(ds, cfg.max_episodes, False, self.device)
            self.disc.obs_norm.fit(self.expert["obs"])  # the same values on a resumed run
        idx = torch.randint(len(self.expert["obs"]), (n,), device=self.device)
        return {k: self.expert[k][idx] for k in KEYS}

    def log_pi(self, obs: Tensor, actions: Tensor) -> Tensor:
        """log pi(a|s) [B] of the current actor at given actions (no gradient)."""
        with torch.no_grad():
            mean, log_std = self.generator.actor.mean_log_std(obs)
            u = torch.atanh(actions.clamp(-ACTION_EDGE, ACTION_EDGE))
            return tanh_gaussian_log_prob(u, mean, log_std)

    def f(self, b: dict[str, Tensor]) -> Tensor:
        d, gamma = self.disc, self.cfg.gamma
        f = airl_f(d.g(b["obs"]), d.h(b["obs"]), d.h(b["next_obs"]), b["terminated"], gamma)
        if self.airl_cfg.absorbing:  # as agents.irl.airl: a terminal s' is the absorbing state
            f = f + absorbing_terms(d.absorbing(), b["terminated"], gamma)[0]
        return f

    def absorbing(self, terminated: Tensor) -> tuple[Tensor, Tensor]:
        """(logits of the absorbing transitions after the terminal ones, the absorbing state's
        return after each transition [B]); nothing without --absorbing."""
        if not self.airl_cfg.absorbing:
            return torch.zeros(0, device=self.device), torch.zeros_like(terminated.float())
        a, gamma = self.disc.absorbing(), self.cfg.gamma
        return absorbing_logits(a, terminated, gamma), absorbing_terms(a, terminated, gamma)[1]

    def disc_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One step of D's binary cross-entropy: the replay batch against expert transitions."""
        n = len(batch["obs"])
        expert = self.expert_batch(n)
        both = {k: torch.cat([expert[k], batch[k].to(expert[k].dtype)]) for k in KEYS}
        logits = airl_logits(self.f(both), self.log_pi(both["obs"], both["actions"]))
        le, lp = logits[:n], logits[n:]  # one pass over expert and replay transitions
        le = torch.cat([le, self.absorbing(expert["terminated"])[0]])
        lp = torch.cat([lp, self.absorbing(batch["terminated"])[0]])
        loss = discriminator_loss(le, lp)
        terms: dict[str, Tensor] = {}
        if self.airl_cfg.grad_penalty > 0:
            d = self.info.obs_dim

            def f_of(x: Tensor) -> Tensor:  # x = [s, s'], done = 0
                zeros = torch.zeros(len(x), device=x.device)
                return self.f({"obs": x[:, :d], "next_obs": x[:, d:], "terminated": zeros})

            gp = gradient_penalty(f_of, torch.cat([expert["obs"], expert["next_obs"]], -1),
                                  torch.cat([batch["obs"], batch["next_obs"]], -1),
                                  torch.rand(len(le), 1, device=le.device))
            loss = loss + self.airl_cfg.grad_penalty * gp
            terms["grad_penalty"] = gp.detach()
        self.disc_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.disc_opt.step()
        acc_e, acc_p = accuracy(le.detach(), lp.detach())
        self.last_disc = {"disc_expert_acc": acc_e, "disc_policy_acc": acc_p}
        return terms | {"disc_loss": loss.detach(), **self.last_disc}

    def update(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """A discriminator step, then a SAC step on the batch relabelled with f(s, a, s')."""
        terms = self.disc_step(batch)
        with torch.no_grad():
            reward = self.f(batch) + self.absorbing(batch["terminated"])[1]
        return terms | {"learned_reward": reward.mean()} | self.generator.update(
            batch | {"rewards": reward})

    def learned_reward(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """(weights, description) of g(s), as agents.irl.reward.load_reward reads them."""
        info, cfg = self.info, self.airl_cfg
        meta = {"form": self.reward_form, "obs_dim": info.obs_dim, "act_dim": info.act_dim,
                "discrete": info.discrete, "hidden": list(cfg.disc_hidden),
                "activation": cfg.disc_activation, "env": info.name}
        weights = {k: v.detach().cpu().contiguous() for k, v in self.disc.state_dict().items()}
        return weights, meta


def train_airl_sac(agent: AIRLSAC, envs: Any, run: Run, schedule: Any, *,
                   resume: dict[str, Any] | None = None, on_progress: Any = None) -> Any:
    """The off-policy loop on the AIRL-SAC agent, its evaluations scored as the PPO path's are
    (the true return, the expert-normalized score, the discriminator's accuracy); then its
    reward written to RUN/reward/."""
    from agents.imitation.scores import score_fields
    from agents.loops.adversarial import dataset_reference, write_reward
    from agents.loops.off_policy import train_off_policy

    cfg = agent.airl_cfg
    ds = open_dataset(cfg.dataset, run.env)
    reference = dataset_reference(ds, cfg.max_episodes, run.env, schedule)  # the same on resume
    n = len(ds) if cfg.max_episodes is None else min(len(ds), cfg.max_episodes)
    scores = score_fields(reference, sum(len(e.actions) for e in ds.episodes(range(n))))

    def fields(return_mean: float) -> dict[str, Any]:
        return scores(return_mean) | {k: float(v) for k, v in agent.last_disc.items()}

    loop = train_off_policy(agent, envs, run, schedule, resume=resume, on_progress=on_progress,
                            eval_fields=fields)
    write_reward(run, agent)  # type: ignore[arg-type]  # it reads learned_reward() only
    return loop
