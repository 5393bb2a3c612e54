"""Model-predictive control over a learned dynamics ensemble: PETS's planner as one module.

Chua, Calandra, McAllister, Levine (2018), "Deep Reinforcement Learning in a Handful of Trials
using Probabilistic Dynamics Models" (PETS). Each call plans for a batch of B states:

    for i in 1..I:                            (planner iterations)
        A_k ~ N(mu, sigma^2), clipped to [-1, 1]        k = 1..K candidate sequences [H, A]
        J_k = 1/P sum_p sum_h r(s_h^p, a_h, s_{h+1}^p)   P particles per candidate
        CEM: refit (mu, sigma) to the best `elites` J_k (momentum alpha), keep the best A_k
        MPPI: (mu, sigma) <- exp(J / lambda)-weighted mean and spread
    apply the first action of mu (MPPI, and CEM as Chua et al.'s code does: `cem_action`
    mean) or of the best sequence sampled (CEM, `cem_action` best); warm-start the next call
    with mu shifted by one step (the last step padded with 0, the middle of [-1, 1])

Particles: s_{h+1}^p = s_h^p + f_m(s_h^p, a_h) + sigma_m(s_h^p, a_h) eps, with member m of the
ensemble assigned to particle p. TS-inf keeps the assignment for the whole horizon (particle p
is member p // (P / E)); TS-1 draws a new one every step (the particle axis is permuted before
the step); `mean` propagates the members' means (no eps: the deterministic models of the
CS285 MBRL versions 0.5 to 1.5). A particle whose step terminates (the env's known termination
function) earns nothing afterwards.

Planning margin (`margin_weight` w > 0, envs whose reward function states one): each step adds
w * m(s') to the planned return, m in [0, 1] the distance of s' from the env's failure set
(agents.model_based.rewards). A reward that only counts steps alive (inverted-pendulum) ties
every candidate that survives the horizon, so the plan drifts to the edge of what the model
predicts survivable; the margin ranks those candidates by how far they stay from it. It enters
the planner's objective only: training and evaluation report the env's reward.

All randomness enters as arguments: `cem_noise` [I, K, B, H, A] for the candidates and
`particle_noise` [H, P, D] (+ `perm_noise` [H, P] for TS-1), standard normal. The particle
noise is shared by every candidate and state (common random numbers: candidates are compared
on the same draws, which lowers the variance of the comparison, not of the estimate). So the
module is a pure function: the agent draws the noise from torch's generator when it acts, the
exported graph takes it as inputs that the runtime draws (deploy.runtime.policy), and torch
and onnxruntime can be compared on the same noise. There is no Python loop over members or
particles; the loops over iterations and horizon steps are unrolled when exported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from agents.model_based.planners import mppi_update, refit_gaussian
from models.dynamics import ProbabilisticEnsemble

PROPAGATIONS = ("ts-inf", "ts-1", "mean")
PLANNERS = ("cem", "mppi")
CEM_ACTIONS = ("mean", "best")

Margin = Callable[[Tensor, Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class MPCSettings:
    """The planner's sizes and rules (validated by the agent's config)."""

    planner: str
    horizon: int
    samples: int
    iterations: int
    elites: int
    init_std: float
    min_std: float
    momentum: float
    temperature: float
    particles: int
    propagation: str
    cem_action: str = "mean"
    margin_weight: float = 0.0


class MPCController(nn.Module):
    """Plans with `model` and `reward` ((s, a, s') -> (r, done), or None: the learned head);
    `margin` (s, a, s') -> m(s') in [0, 1] for margin_weight > 0 (RewardFn.margin)."""

    def __init__(self, model: ProbabilisticEnsemble, reward: nn.Module | None,
                 settings: MPCSettings, margin: Margin | None = None) -> None:
        super().__init__()
        if settings.propagation not in PROPAGATIONS:
            raise ValueError(f"propagation {settings.propagation!r} is not one of "
                             f"{', '.join(PROPAGATIONS)}")
        if settings.planner not in PLANNERS:
            raise ValueError(f"planner {settings.planner!r} is not one of {', '.join(PLANNERS)}")
        if settings.particles % model.ensemble_size:
            raise ValueError(f"particles ({settings.particles}) must be a multiple of the "
                             f"ensemble size ({model.ensemble_size})")
        if reward is None and not model.reward:
            raise ValueError("no reward function and no learned reward head")
        if settings.cem_action not in CEM_ACTIONS:
            raise ValueError(f"cem_action {settings.cem_action!r} is not one of "
                             f"{', '.join(CEM_ACTIONS)}")
        if settings.margin_weight > 0 and margin is None:
            raise ValueError(f"margin_weight {settings.margin_weight:g} > 0 needs the env's "
                             "planning margin (agents.model_based.rewards)")
        self.margin = margin if settings.margin_weight > 0 else None
        self.model, self.reward, self.s = model, reward, settings
        self.act_dim = model.act_dim

    # -- the shapes of the random inputs ------------------------------------------------------
    def noise_shapes(self, batch: int) -> dict[str, tuple[int, ...]]:
        s = self.s
        shapes = {"cem_noise": (s.iterations, s.samples, batch, s.horizon, self.act_dim),
                  "particle_noise": (s.horizon, s.particles, self.model.out_dim)}
        if s.propagation == "ts-1":
            shapes["perm_noise"] = (s.horizon, s.particles)
        return shapes

    def draw_noise(self, batch: int, generator: torch.Generator | None = None,
                   device: torch.device | None = None) -> dict[str, Tensor]:
        """Standard normal noise of `noise_shapes(batch)`, from `generator` (None: torch's)."""
        return {name: torch.randn(shape, generator=generator, device=device)
                for name, shape in self.noise_shapes(batch).items()}

    def initial_plan(self, batch: int, device: torch.device | None = None) -> Tensor:
        return torch.zeros(batch, self.s.horizon, self.act_dim, device=device)

    # -- planning -------------------------------------------------------------------------------
    def forward(self, obs: Tensor, plan: Tensor, cem_noise: Tensor, particle_noise: Tensor,
                perm_noise: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """obs [B, obs_dim], plan (warm-start mean) [B, H, A] -> first action [B, A] in
        [-1, 1], the next call's warm start [B, H, A], and the chosen sequence [B, H, A]."""
        s = self.s
        mean = plan
        std = torch.full_like(mean, s.init_std)
        best_seq = mean
        best_ret = torch.full(obs.shape[:1], float("-inf"), device=obs.device)
        for i in range(s.iterations):
            seqs = (mean + std * cem_noise[i]).clamp(-1.0, 1.0)  # [K, B, H, A]
            returns = self.returns(obs, seqs, particle_noise, perm_noise)  # [K, B]
            ranked = returns - tie_breaker(returns)
            top_ret, top = ranked.topk(s.elites if s.planner == "cem" else 1, dim=0)
            gather = top[..., None, None].expand(-1, -1, *seqs.shape[2:])
            elites = seqs.gather(0, gather)  # [elites, B, H, A], best first
            better = top_ret[0] > best_ret
            best_seq = torch.where(better[:, None, None], elites[0], best_seq)
            best_ret = torch.where(better, top_ret[0], best_ret)
            if s.planner == "cem":
                mean, std = refit_gaussian(elites, mean, std, s.momentum, s.min_std)
            else:
                mean, std, _ = mppi_update(seqs, returns, s.temperature, s.min_std)
        chosen = best_seq if s.planner == "cem" and s.cem_action == "best" else mean
        warm = torch.cat([mean[:, 1:], torch.zeros_like(mean[:, :1])], dim=1)
        return chosen[:, 0], warm, chosen

    def returns(self, obs: Tensor, seqs: Tensor, particle_noise: Tensor,
                perm_noise: Tensor | None = None) -> Tensor:
        """Mean over particles of the predicted return of each sequence: seqs [K, B, H, A]
        from obs [B, obs_dim] -> [K, B]. Non-finite predictions count as the worst return."""
        s, m = self.s, self.model
        K, B, H, A = seqs.shape
        P, E = s.particles, m.ensemble_size
        x = obs[None, :, None, :].expand(K, B, P, obs.shape[-1])
        total = torch.zeros(K, B, P, device=obs.device)
        alive = torch.ones(K, B, P, device=obs.device)
        for h in range(H):
            if perm_noise is not None:  # TS-1: a fresh particle -> member assignment
                order = perm_noise[h].argsort()
                x, total, alive = x[:, :, order], total[:, :, order], alive[:, :, order]
            a = seqs[:, :, h, None, :].expand(K, B, P, A)
            noise = None if s.propagation == "mean" else particle_noise[h].expand(
                K, B, P, m.out_dim)
            nxt, r_learned = m.propagate(_by_member(x, E), _by_member(a, E),
                                         None if noise is None else _by_member(noise, E))
            nxt = _from_member(nxt, K, B, P)
            if self.reward is None:
                assert r_learned is not None
                r, done = _from_member(r_learned[..., None], K, B, P)[..., 0], None
            else:
                r, done = self.reward(x, a, nxt)
                if self.margin is not None:
                    r = r + s.margin_weight * self.margin(x, a, nxt)
            total = total + alive * r
            if done is not None:
                alive = alive * (~done).to(alive.dtype)
            x = nxt
        return torch.nan_to_num(total.mean(-1), nan=-1e30, posinf=-1e30, neginf=-1e30)


def tie_breaker(ret: Tensor) -> Tensor:
    """k * 2^-20 (|J|max + 1) for candidate k of returns [K, B]: exact ties (a termination-only
    reward such as 'alive' counts whole steps) are broken by index, the same way by torch and by
    onnxruntime, whose top-k orders tied values differently. At most 5e-4 of |J| for K = 500."""
    scale = ret.detach().abs().amax(0, keepdim=True) + 1.0
    k = torch.arange(ret.shape[0], device=ret.device, dtype=ret.dtype)[:, None]
    return k * scale * 2.0**-20


def _by_member(t: Tensor, E: int) -> Tensor:
    """[K, B, P, d] -> [E, K * B * P / E, d]: particle p goes to member p // (P / E)."""
    K, B, P, d = t.shape
    return t.reshape(K, B, E, P // E, d).permute(2, 0, 1, 3, 4).reshape(E, -1, d)


def _from_member(t: Tensor, K: int, B: int, P: int) -> Tensor:
    """The inverse of _by_member: [E, K * B * P / E, d] -> [K, B, P, d]."""
    E, _, d = t.shape
    return t.reshape(E, K, B, P // E, d).permute(1, 2, 0, 3, 4).reshape(K, B, P, d)


class ExportedMPC(nn.Module):
    """The controller as a bundle's policy: obs [1, obs_dim] (robot units), the warm start and
    the noise in; the action in the robot's units and the next warm start out.

    With `replan_every` k > 1 (the open-loop CS285 versions 0.5 and 1.0) the graph executes a
    plan as the agent does: it also carries the chosen sequence and the step t within it, plans
    only when t is -1 (an `If` node, torch.cond: the other calls run no planner), and its warm
    start skips the k steps a plan covers. Noise is drawn by the runtime for every call and
    used by the calls that plan.

    `graph_io` tells deploy.export which inputs are carried state and which are noise the
    runtime draws (deploy.contract: state and noise)."""

    act_mid: Tensor
    act_half: Tensor

    def __init__(self, controller: MPCController, low: Tensor, high: Tensor,
                 replan_every: int = 1) -> None:
        super().__init__()
        self.controller, self.replan_every = controller, replan_every
        self.register_buffer("act_mid", (high + low) / 2)
        self.register_buffer("act_half", (high - low) / 2)
        s, A = controller.s, controller.act_dim
        shapes = controller.noise_shapes(1)
        self.noise_names = tuple(shapes)
        state = [{"input": "plan", "output": "plan_out", "shape": [1, s.horizon, A],
                  "initial": 0.0}]
        if replan_every > 1:
            state += [{"input": "actions", "output": "actions_out", "shape": [1, s.horizon, A],
                       "initial": 0.0},
                      {"input": "t", "output": "t_out", "shape": [1], "initial": -1.0}]
        self.graph_io = {
            "state": state,
            "noise": [{"name": n, "shape": list(shape)} for n, shape in shapes.items()],
        }

    def forward(self, obs: Tensor, plan: Tensor, *inputs: Tensor) -> tuple[Tensor, ...]:
        if self.replan_every == 1:
            action, warm, _ = self.controller(obs, plan, *inputs)
            return self._robot_units(action), warm
        actions, t, *noise = inputs
        due = t[0] < 0.0
        warm, actions = torch.cond(due, self._replan, self._keep, (obs, plan, actions, *noise))
        t = torch.where(due, torch.zeros_like(t), t)
        action = actions[0].index_select(0, t.long())  # [1, A]
        t = t + 1.0
        t = torch.where(t >= self.replan_every, torch.full_like(t, -1.0), t)
        return self._robot_units(action), warm, actions, t

    def _replan(self, obs: Tensor, plan: Tensor, actions: Tensor, *noise: Tensor
                ) -> tuple[Tensor, Tensor]:
        _, warm, chosen = self.controller(obs, plan, *noise)
        return skip_executed(warm, self.replan_every), chosen

    def _keep(self, obs: Tensor, plan: Tensor, actions: Tensor, *noise: Tensor
              ) -> tuple[Tensor, Tensor]:
        return plan.clone(), actions.clone()

    def _robot_units(self, action: Tensor) -> Tensor:
        return self.act_mid + self.act_half * action.clamp(-1.0, 1.0)


def skip_executed(warm: Tensor, k: int) -> Tensor:
    """The warm start (already shifted by one step) for a plan whose first k steps will be
    executed open loop: shifted k - 1 steps more, padded with 0."""
    return torch.cat([warm[:, k - 1:], torch.zeros_like(warm[:, :k - 1])], 1)


class Plans:
    """Per-env planning state of an agent: the warm start, the plan being executed and the step
    within it (-1: plan now). With replan_every k, a plan's first k actions are executed open
    loop; k = 1 is MPC. ExportedMPC keeps the same state in its graph."""

    def __init__(self, batch: int, horizon: int, act_dim: int, device: torch.device) -> None:
        self.warm = torch.zeros(batch, horizon, act_dim, device=device)
        self.actions = torch.zeros(batch, horizon, act_dim, device=device)
        self.t = torch.full((batch,), -1, dtype=torch.long, device=device)

    def reset(self, mask: Tensor | None = None) -> None:
        """Episode start for the envs in `mask` (all when None)."""
        if mask is None:
            mask = torch.ones_like(self.t, dtype=torch.bool)
        self.warm[mask] = 0.0
        self.t[mask] = -1

    def start(self, due: Tensor, warm: Tensor, chosen: Tensor, k: int) -> None:
        """The envs in `due` [B] begin executing `chosen` [B, H, A]; their next warm start is
        `warm` (the planner's, shifted by one) shifted past the k steps the plan covers."""
        warm = skip_executed(warm, k)
        self.warm = torch.where(due[:, None, None], warm, self.warm)
        self.actions = torch.where(due[:, None, None], chosen, self.actions)
        self.t = torch.where(due, 0, self.t)

    def next_action(self, k: int) -> Tensor:
        """Each env's current action [B, A]; a plan used up after k steps is due again."""
        action = self.actions[torch.arange(self.t.shape[0], device=self.t.device), self.t]
        self.t = self.t + 1
        self.t = torch.where(self.t >= k, -1, self.t)
        return action

    def state_dict(self) -> dict[str, Tensor]:
        return {"warm": self.warm, "actions": self.actions, "t": self.t}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        for k in ("warm", "actions", "t"):
            getattr(self, k).copy_(state[k])
