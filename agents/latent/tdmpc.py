"""TD-MPC2: a latent world model trained by consistency, planned with MPPI and a policy prior.

Hansen, Su, Wang (2024), "TD-MPC2: Scalable, Robust World Models for Continuous Control",
arXiv:2310.16828; TD-MPC, Hansen, Wang, Su (2022), "Temporal Difference Learning for Model
Predictive Control", arXiv:2203.04955. CS285 (Levine, lecture 12, latent space models) frames
the idea: learn a latent state in which to plan, here without reconstructing observations.

From a sub-trajectory (s_0, a_0, r_0, ..., s_H) of the replay (data.replay.sample_sequences),
with z_0 = h(s_0), z_{t+1} = d(z_t, a_t) and targets from the next observations (eq. 3-4):

    L_cons = 1/H sum_t rho^t || z_{t+1} - sg(h(s_{t+1})) ||^2 / latent_dim
    L_rew  = 1/H sum_t rho^t CE(R(z_t, a_t), r_t)                          (two-hot, symlog)
    L_val  = 1/(H E) sum_t rho^t sum_i CE(Q_i(z_t, a_t), y_t)
    y_t    = r_t + gamma (1 - d_t) min_{i,j ~ 2 of E} Q'(h(s_{t+1}), p(h(s_{t+1})))
    L_term = mean_{t, B} BCE(D(z_{t+1}), d_t)                 (`episodic` only, TD-MPC2 code)
    L      = consistency_coef L_cons + reward_coef L_rew + value_coef L_val
             + termination_coef L_term

The policy prior p maximises a scaled value with an entropy bonus (eq. 5), on the detached
rollout latents and the Q heads' weights as constants:

    L_p = 1/(H+1) sum_t rho^t E[ entropy_coef log~p(a|z_t) - Q(z_t, a) / S ],  a ~ p(z_t)

with Q the mean of two random heads and S a running (tau) estimate of the 5th-95th percentile
range of Q(z_0, .), floored at 1, so the entropy coefficient means the same on any reward
scale; log~p is TD-MPC2's log-prob with its Gaussian part scaled by the action dimension
(models.world_model.scaled_log_prob), so it means the same on any action size. The Q targets
follow the heads by Polyak averaging (tau). Acting plans by MPPI in latent space with the
prior's trajectories mixed in, warm-started from the previous plan shifted by one
(agents/latent/planner.py); `plan` False acts with the prior alone. Exploration: an elite
sequence drawn by its MPPI weight, its first action plus the final std times normal noise.
With `episodic` (on in the preset of envs that can terminate), plans stop counting reward and
value after a predicted termination D(z_t) > 0.5; the TD target is cut by the stored d_t.
Learning starts with TD-MPC2's pretraining burst (`seed_pretrain`, agents/loops/latent.py).

The loss terms are pure functions in agents/latent/losses.py. Kinema's counting: one env step
is one control step of the registered env (no action repeat; TD-MPC2 counts its dm-control
steps with action repeat 2).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from agents.latent.config import TDMPCConfig
from agents.latent.export import ExportedLatentMPPI, PriorPolicy
from agents.latent.losses import (
    consistency_loss,
    policy_loss,
    reward_loss,
    td_target,
    termination_loss,
    updated_scale,
    value_loss,
)
from agents.latent.planner import LatentMPPI, shift_plan
from agents.loops.latent import train_latent
from agents.model_based.mpc import Plans
from agents.model_free.off_policy import polyak_update
from agents.model_free.robot_presets import tuned_on
from agents.protocol import Algorithm
from data.replay import ReplayBuffer
from models.world_model import WorldModel
from sim.registry import EnvInfo, spec

EVAL_PLANNER_SEED = 12345
"""Evaluation plans with a generator re-seeded to this at every evaluation."""


class SequenceReplay(ReplayBuffer):
    """The replay buffer whose batches are `horizon`-step sequences (`sample_sequences`), so
    the off-policy loop's `replay.sample(batch_size)` feeds TD-MPC's update."""

    def __init__(self, cfg: TDMPCConfig, info: EnvInfo, device: torch.device) -> None:
        pixels = info.obs_dtype == "uint8"
        super().__init__(cfg.buffer_size, cfg.num_envs, info.obs_shape, (info.act_dim,),
                         discrete=False, device=device, gamma=cfg.gamma,
                         obs_dtype=torch.uint8 if pixels else torch.float32)
        self.horizon = cfg.horizon

    def can_sample(self) -> bool:
        return self.size >= self.horizon

    def sample(self, batch_size: int) -> dict[str, Tensor]:
        return self.sample_sequences(batch_size, self.horizon)


class TDMPC:
    """TD-MPC2 agent: world model, policy prior, latent MPPI; act, update, save, export."""

    def __init__(self, cfg: TDMPCConfig, info: EnvInfo, device: torch.device) -> None:
        if info.discrete:
            raise ValueError("TD-MPC plans continuous actions")
        self.cfg, self.info, self.device = cfg, info, device
        self.model = WorldModel(
            info.obs_shape, info.act_dim, pixels=info.obs_dtype == "uint8",
            latent_dim=cfg.latent_dim, mlp_dim=cfg.mlp_dim, enc_dim=cfg.enc_dim,
            num_enc_layers=cfg.num_enc_layers, num_q=cfg.num_q, dropout=cfg.dropout,
            simnorm_dim=cfg.simnorm_dim, num_bins=cfg.num_bins, vmin=cfg.vmin, vmax=cfg.vmax,
            log_std_min=cfg.log_std_min, log_std_max=cfg.log_std_max,
            num_channels=cfg.num_channels, episodic=cfg.episodic).to(device).eval()
        m = self.model
        enc = list(m.encoder.parameters())
        rest = [p for p in m.world_parameters() if all(p is not q for q in enc)]
        groups: list[dict[str, Any]] = [{"params": enc, "lr": cfg.lr * cfg.enc_lr_scale},
                                        {"params": rest}]
        # fused: one kernel per step for all parameters (as agents.model_free.off_policy.adam)
        self.opt = torch.optim.Adam(groups, lr=cfg.lr, fused=True)
        self.pi_opt = torch.optim.Adam(m.pi_net.parameters(), lr=cfg.lr, eps=1e-5, fused=True)
        self.planner = LatentMPPI(m, cfg.settings())
        self.replay = SequenceReplay(cfg, info, device)
        self.q_scale = torch.ones((), device=device)
        self.updates = 0
        self.plan_s, self.plans = 0.0, 0  # wall time of planning (reported as plan_ms)
        self._train = Plans(cfg.num_envs, cfg.horizon, info.act_dim, device)
        self._eval: Plans | None = None
        self._eval_gen = torch.Generator(device=device).manual_seed(EVAL_PLANNER_SEED)
        self._targets: list[Tensor] = list(m.Q_target.parameters())
        self._online: list[Tensor] = list(m.Qs.parameters())

    # -- acting ---------------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: Tensor | np.ndarray, *, deterministic: bool = False) -> Tensor:
        """Actions in [-1, 1] for observations [B, *obs_shape].

        Planning, deterministic (evaluation): the mean plan's first action, with the
        evaluation planner's own generator and warm starts (`reset_evaluation` re-seeds and
        clears them); otherwise a fresh plan per observation (no warm start), explored as in
        `explore`. With `plan` False: the prior's tanh(mu(z)) or a sample of it.
        """
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        if not self.cfg.plan:
            z = self.model.encode(obs)
            return self.model.pi(z, None if not deterministic else
                                 torch.zeros(*z.shape[:-1], self.info.act_dim,
                                             device=self.device))[0]
        B = obs.shape[0]
        if not deterministic:
            return self._plan(obs, Plans(B, self.cfg.horizon, self.info.act_dim, self.device),
                              None, explore=True)
        if self._eval is None or self._eval.warm.shape[0] != B:
            self._eval = Plans(B, self.cfg.horizon, self.info.act_dim, self.device)
        return self._plan(obs, self._eval, self._eval_gen, explore=False)

    @torch.no_grad()
    def explore(self, obs: Tensor, step: int) -> Tensor:
        """The training envs' actions: planned (or the prior's samples), with each env's warm
        start cleared when its last stored step ended an episode."""
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        if not self.cfg.plan:
            return self.act(obs)
        r = self.replay
        if r.size:
            last = (r.pos - 1) % r.rows
            self._train.reset(r.terminated[last] | r.truncated[last])
        return self._plan(obs, self._train, None, explore=True)

    def reset_evaluation(self) -> None:
        """Before an evaluation: fresh warm starts, and the planner's evaluation seed."""
        self._eval = None
        self._eval_gen.manual_seed(EVAL_PLANNER_SEED)

    def _plan(self, obs: Tensor, plans: Plans, generator: torch.Generator | None, *,
              explore: bool) -> Tensor:
        t0 = time.perf_counter()
        B = obs.shape[0]
        z = self.model.encode(obs)
        plan = self.planner(z, plans.warm, **self.planner.draw_noise(B, generator, self.device))
        chosen = plan.mean
        if explore:  # an elite drawn by its weight, its first action perturbed by the std
            pick = torch.multinomial(plan.weights.T, 1, generator=generator)[:, 0]  # [B]
            chosen = plan.elites[pick, torch.arange(B, device=self.device)].clone()
            noise = torch.randn(chosen[:, 0].shape, generator=generator, device=self.device)
            chosen[:, 0] = (chosen[:, 0] + plan.std[:, 0] * noise).clamp(-1.0, 1.0)
        # Plans.start shifts past the one executed step itself; the warm start is the mean
        plans.start(torch.ones(B, dtype=torch.bool, device=self.device),
                    shift_plan(plan.mean), chosen, 1)
        self.plan_s += time.perf_counter() - t0
        self.plans += 1
        return plans.next_action(1)

    # -- learning -------------------------------------------------------------------------------
    def model_losses(self, batch: dict[str, Tensor]) -> tuple[dict[str, Tensor], Tensor]:
        """L_cons, L_rew, L_val (L_term when episodic) and their weighted sum L on a sequence
        batch (obs [H+1, B, ...], actions, rewards, terminated [H, B, ...]); and the rollout
        latents z_0..z_H [H+1, B, L]."""
        cfg, m = self.cfg, self.model
        obs, actions = batch["obs"], batch["actions"]
        with torch.no_grad():
            next_z = m.encode(obs[1:])  # the consistency targets h(s_1..s_H), [H, B, L]
            next_a, _ = m.pi(next_z)
            y = td_target(batch["rewards"], batch["terminated"], cfg.gamma,
                          m.Q(next_z, next_a, "min2", target=True))
        z = m.encode(obs[0])
        zs = [z]
        for t in range(cfg.horizon):
            z = m.next(z, actions[t])
            zs.append(z)
        z_all = torch.stack(zs)  # [H+1, B, L]
        q_logits = m.Q(z_all[:-1], actions, "all")  # [E, H, B, bins]
        r_logits = m.reward_logits(z_all[:-1], actions)
        terms = {"consistency_loss": consistency_loss(z_all[1:], next_z, cfg.rho),
                 "reward_loss": reward_loss(r_logits, batch["rewards"], cfg.rho, cfg.vmin,
                                            cfg.vmax),
                 "value_loss": value_loss(q_logits, y, cfg.rho, cfg.vmin, cfg.vmax)}
        terms["model_loss"] = (cfg.consistency_coef * terms["consistency_loss"]
                               + cfg.reward_coef * terms["reward_loss"]
                               + cfg.value_coef * terms["value_loss"])
        if m.episodic:  # D on the predicted next latents z_1..z_H
            terms["termination_loss"] = termination_loss(m.termination_logits(z_all[1:]),
                                                         batch["terminated"])
            terms["model_loss"] = (terms["model_loss"]
                                   + cfg.termination_coef * terms["termination_loss"])
        return terms, z_all

    def policy_terms(self, zs: Tensor) -> dict[str, Tensor]:
        """L_p on latents zs [H+1, B, L] (detached here), the Q heads' weights as constants,
        with the action-dimension-scaled log p; the running scale S is updated from Q(z_0, .)
        first, as in TD-MPC2."""
        zs = zs.detach()
        a, logp, scaled = self.model.pi_scaled(zs)
        q = self.model.Q(zs, a, "avg", detach=True)  # [H+1, B]
        self.q_scale = updated_scale(self.q_scale, q[0], self.cfg.tau)
        return {"pi_loss": policy_loss(scaled, q, self.q_scale, self.cfg.rho,
                                       self.cfg.entropy_coef),
                "pi_entropy": -logp.detach().mean(),
                "pi_scaled_entropy": -scaled.detach().mean(), "q_scale": self.q_scale}

    def update(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One step of the world model, then one of the prior, then the Polyak targets."""
        cfg, m = self.cfg, self.model
        m.train()
        terms, zs = self.model_losses(batch)
        self.opt.zero_grad(set_to_none=True)
        terms["model_loss"].backward()
        terms["grad_norm"] = nn.utils.clip_grad_norm_(m.world_parameters(), cfg.grad_clip_norm)
        self.opt.step()
        pi = self.policy_terms(zs)
        self.pi_opt.zero_grad(set_to_none=True)
        pi["pi_loss"].backward()
        nn.utils.clip_grad_norm_(m.pi_net.parameters(), cfg.grad_clip_norm)
        self.pi_opt.step()
        polyak_update(self._targets, self._online, cfg.tau)
        m.eval()
        self.updates += 1
        terms |= pi
        # planning cost so far: mean ms per plan (one plan covers every env of the batch)
        terms["plan_ms"] = torch.tensor(1e3 * self.plan_s / max(self.plans, 1))
        return {k: v.detach() for k, v in terms.items()}

    # -- state and export -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "q_scale": self.q_scale,
                "updates": self.updates, "plans": self._train.state_dict(),
                "optim": {"model": self.opt.state_dict(), "pi": self.pi_opt.state_dict()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.q_scale = torch.as_tensor(state["q_scale"], device=self.device).clone()
        self.updates = int(state["updates"])
        self._train.load_state_dict(state["plans"])
        self.opt.load_state_dict(state["optim"]["model"])
        self.pi_opt.load_state_dict(state["optim"]["pi"])

    def inference_module(self) -> nn.Module:
        """For export, on CPU: the planner (ExportedLatentMPPI: the deterministic act, its
        noise and warm start as graph inputs) when `plan` and `export_planner`, else the prior
        alone: obs -> tanh(mu(h(obs))) scaled to the robot's units."""
        if self.cfg.plan and self.cfg.export_planner:
            low, high = torch.tensor(self.info.action_low), torch.tensor(self.info.action_high)
            return ExportedLatentMPPI(self.planner, low, high).cpu().eval()
        return self.prior_module()

    def prior_module(self) -> nn.Module:
        """The prior alone, whatever `export_planner` (`kinema export --prior`), on CPU."""
        low, high = torch.tensor(self.info.action_low), torch.tensor(self.info.action_high)
        return PriorPolicy(self.model, low, high).cpu().eval()


# ---- presets and registration ------------------------------------------------------------------

def default_gamma(episode_steps: int) -> float:
    """TD-MPC2's discount heuristic from the episode length T: (T/5 - 1) / (T/5), clipped to
    [0.95, 0.995]."""
    frac = episode_steps / 5
    return min(max((frac - 1) / frac, 0.95), 0.995)


def preset(env: str) -> TDMPCConfig:
    """Per-env defaults: the paper's settings at CPU size, gamma from the episode length, the
    termination head where the env's episodes can terminate (`EnvSpec.terminates`: not the
    dm-control tasks, which TD-MPC2 runs non-episodic)."""
    gamma = default_gamma(spec(env).max_episode_steps or 1000)
    episodic = spec(env).terminates
    if env.endswith("-pixels"):  # uint8 frames: 84x84x9 bytes twice per transition
        return TDMPCConfig(gamma=gamma, buffer_size=10_000, episodic=episodic)
    if env == "pendulum":
        # A 3-dim state needs little: 64-wide nets, 64 samples and 2 iterations plan in a few
        # ms on one CPU thread; at lr 1e-3 (as SAC's pendulum preset), evaluated every 250
        # steps, seeds 0 and 1 passed -400 at 1,250 and 1,750 env steps with the seed
        # pretraining burst (200 updates at step 200), at 1,000 and 1,250 without it.
        return TDMPCConfig(gamma=gamma, lr=1e-3, buffer_size=20_000, learning_starts=200,
                           batch_size=64, latent_dim=32, mlp_dim=64, enc_dim=64,
                           num_samples=64, num_elites=8, num_pi_trajs=8, iterations=2)
    # States: 128-wide heads and a 256-sequence, 4-iteration MPPI (the paper: 512 wide, 512
    # sequences, 6 iterations). One CPU thread: a plan takes 25-32 ms p50 in torch and 15-18
    # ms in onnxruntime (`kinema bench latent --tasks planning`), and training about 0.1 s of
    # CPU per env step (`kinema bench latent`), so a 20k-step run fits a CPU session (the
    # BENCHMARKS.md section has the figures). On a GPU, raise them (`--mlp-dim 512
    # --num-samples 512 --num-elites 64 --num-pi-trajs 24 --iterations 6`).
    return TDMPCConfig(gamma=gamma, buffer_size=1_000_000, episodic=episodic, mlp_dim=128,
                       num_samples=256, num_elites=32, num_pi_trajs=12, iterations=4)


def default_steps(env: str) -> int:
    """Default budget: pendulum 3k, dm-control tasks 100k (the paper's first milestone)."""
    return {"pendulum": 3_000}.get(env, 100_000)


ALGORITHMS = (
    Algorithm(
        name="tdmpc", config_cls=TDMPCConfig, preset=preset, make_agent=TDMPC,
        loop=train_latent, actions=("continuous",), default_steps=default_steps, pixels=True,
        preset_source=tuned_on("measured here (the preset's comment)", "pendulum"),
        description="TD-MPC2 (Hansen et al. 2024): latent world model, MPPI with a policy "
                    "prior, from states or pixels.",
    ),
)
