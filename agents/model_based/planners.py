"""Sampling-based planners over action sequences: the cross-entropy method and MPPI.

Both planners search for an action sequence a_{0:H} that maximises an objective J(a_{0:H}), the
return predicted by some model (a simulator, a learned dynamics ensemble, a latent world model).
Each iteration draws a population of K sequences from a sampling distribution, evaluates the
whole population at once, and refits the distribution to the good ones:

- CEM, the cross-entropy method (Rubinstein 1999), as used for planning by PETS (Chua et al.
  2018, "Deep reinforcement learning in a handful of trials using probabilistic dynamics
  models"): refit a diagonal Gaussian per step to the `elites` best sequences,
  mean <- alpha * mean + (1 - alpha) * mean(elites) (likewise the std; alpha is `momentum`).
  Discrete actions use independent categoricals per step, refit to the elite frequencies mixed
  with a little of the uniform distribution so that no action dies out. The best sequence seen
  (the incumbent) is carried into every later population, so the plan never gets worse.
- MPPI, model-predictive path integral control (Williams et al. 2017, "Information theoretic
  MPC for model-based reinforcement learning"), iterated as in TD-MPC2 (Hansen et al. 2024):
  the new mean is the average of all samples weighted by w_k ~ exp((J_k - max J) / temperature),
  and the new std is the weighted spread.

Receding horizon and warm start (PETS): a planner object lives as long as its controller. After
each `plan` it keeps the final mean shifted by one step (the last step padded with the initial
mean), so the next call starts from the rest of the previous plan; `reset()` at episode start.
Std is reset to `init_std` every call.

The objective maps a population [K, H, *action_shape] (continuous, in [-1, 1]) or [K, H] int64
(discrete action indices) to returns [K], higher is better; it must not modify the population.
The planner itself has no loop over members or timesteps, only over iterations, so with a
fixed `iterations` and the noise passed in, the update steps (`refit_gaussian`,
`refit_categorical`, `mppi_update`) are plain tensor functions that trace and export.
Sampling uses a torch.Generator seeded from the config, on the planner's device: the same seed
and the same calls give the same plans.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from agents.runs.config import require, require_positive

Objective = Callable[[Tensor], Tensor]
"""Population of action sequences [K, H, *action_shape] or [K, H] int64 -> returns [K]."""


@dataclass(frozen=True)
class CEMConfig:
    """Cross-entropy method (names as in Chua et al. 2018)."""

    horizon: int = 20
    """Planning horizon H in steps."""
    samples: int = 64
    """Population size K per iteration."""
    iterations: int = 2
    """Refits per `plan` call; 1 is random shooting (with the incumbent kept)."""
    elites: int = 8
    """Best sequences the sampling distribution is refit to."""
    init_std: float = 0.6
    """Std of the Gaussian at the start of each call (continuous actions live in [-1, 1])."""
    min_std: float = 0.05
    """Lower bound of the refit std, so the search never collapses to a point."""
    momentum: float = 0.0
    """alpha: new = alpha * old + (1 - alpha) * elite fit (PETS uses 0.1)."""
    keep_incumbent: bool = True
    """Put the best sequence so far (and the previous call's, shifted) into every population."""
    uniform_mix: float = 0.1
    """Discrete: weight of the uniform distribution mixed into the elite frequencies."""
    seed: int = 0
    """Seed of the planner's torch.Generator."""

    def __post_init__(self) -> None:
        require_positive(self, "horizon", "samples", "iterations", "elites", prefix="CEM ")
        require(self.elites <= self.samples, "CEM elites", self.elites,
                f"<= samples ({self.samples})")
        require(self.init_std > 0, "CEM init_std", self.init_std, "> 0")
        require(self.min_std >= 0, "CEM min_std", self.min_std, ">= 0")
        require(0 <= self.momentum < 1, "CEM momentum", self.momentum, "in [0, 1)")
        require(0 <= self.uniform_mix <= 1, "CEM uniform_mix", self.uniform_mix, "in [0, 1]")
        require(isinstance(self.keep_incumbent, bool), "CEM keep_incumbent",
                self.keep_incumbent, "True or False")


@dataclass(frozen=True)
class MPPIConfig:
    """Model-predictive path integral control (Williams et al. 2017; TD-MPC2's settings)."""

    horizon: int = 20
    """Planning horizon H in steps."""
    samples: int = 256
    """Population size K per iteration."""
    iterations: int = 4
    """Reweighting rounds per `plan` call."""
    temperature: float = 1.0
    """lambda: weights exp((J - max J) / lambda); smaller is greedier."""
    init_std: float = 0.6
    """Std of the Gaussian at the start of each call."""
    min_std: float = 0.05
    """Lower bound of the reweighted std."""
    seed: int = 0
    """Seed of the planner's torch.Generator."""

    def __post_init__(self) -> None:
        require_positive(self, "horizon", "samples", "iterations", prefix="MPPI ")
        require(self.temperature > 0, "MPPI temperature", self.temperature, "> 0")
        require(self.init_std > 0, "MPPI init_std", self.init_std, "> 0")
        require(self.min_std >= 0, "MPPI min_std", self.min_std, ">= 0")


@dataclass(frozen=True)
class Plan:
    """The outcome of one `plan` call."""

    action: Tensor
    """First action of the plan, [*action_shape] (discrete: an int64 scalar): apply this."""
    actions: Tensor
    """The whole plan [H, *action_shape] (discrete: [H] int64)."""
    value: Tensor
    """Its return: CEM the best return seen; MPPI the weighted mean return of the last round."""
    best_returns: Tensor
    """Best return in each iteration's population, [iterations]."""


# ---- update steps: pure tensor functions --------------------------------------------------


def refit_gaussian(elites: Tensor, mean: Tensor, std: Tensor, momentum: float,
                   min_std: float) -> tuple[Tensor, Tensor]:
    """CEM refit of a per-step diagonal Gaussian to elites [E, *batch, H, *A] (mean and std
    [*batch, H, *A]), smoothed by momentum."""
    new_mean = momentum * mean + (1 - momentum) * elites.mean(0)
    new_std = momentum * std + (1 - momentum) * elites.std(0, correction=0)
    return new_mean, new_std.clamp(min=min_std)


def refit_categorical(elites: Tensor, probs: Tensor, momentum: float,
                      uniform_mix: float) -> Tensor:
    """CEM refit of per-step categoricals [H, n] to the frequencies in elites [E, H] int64."""
    n = probs.shape[-1]
    freq = torch.nn.functional.one_hot(elites, n).to(probs.dtype).mean(0)  # [H, n]
    fit = (1 - uniform_mix) * freq + uniform_mix / n
    return momentum * probs + (1 - momentum) * fit


def mppi_update(seqs: Tensor, returns: Tensor, temperature: float,
                min_std: float) -> tuple[Tensor, Tensor, Tensor]:
    """Weighted mean and std of seqs [K, *batch, H, *A] with w ~ exp((J - max J) / temperature)
    over the population, for returns [K, *batch] (one planning problem per batch entry).

    Returns (mean, std, weighted mean return [*batch]).
    """
    w = torch.softmax((returns - returns.amax(0, keepdim=True)) / temperature, dim=0)
    wb = w.reshape(*w.shape, *([1] * (seqs.dim() - w.dim())))
    mean = (wb * seqs).sum(0)
    std = (wb * (seqs - mean) ** 2).sum(0).sqrt().clamp(min=min_std)
    return mean, std, (w * returns).sum(0)


def shift(seq: Tensor, fill: Tensor) -> Tensor:
    """Drop the first step of seq [H, ...] and append `fill` [...]: the receding-horizon shift."""
    return torch.cat([seq[1:], fill.unsqueeze(0)], dim=0)


def _sanitize(returns: Tensor) -> Tensor:
    """NaN and infinities (a model blowing up) become the worst/best finite values."""
    lo, hi = torch.finfo(returns.dtype).min, torch.finfo(returns.dtype).max
    return torch.nan_to_num(returns, nan=lo, neginf=lo, posinf=hi)


# ---- planners -----------------------------------------------------------------------------


class _Planner:
    """Shared state: action space, device, generator, warm-start mean."""

    def __init__(self, cfg: CEMConfig | MPPIConfig, action_shape: tuple[int, ...],
                 n_actions: int | None, device: torch.device | str | None,
                 dtype: torch.dtype) -> None:
        if n_actions is not None and n_actions < 1:
            raise ValueError(f"n_actions must be >= 1 (or None for continuous), got {n_actions}")
        self.cfg = cfg
        self.discrete = n_actions is not None
        self.n_actions = n_actions
        self.action_shape = () if self.discrete else tuple(action_shape)
        self.device = torch.device(device if device is not None else "cpu")
        self.dtype = dtype
        self.generator = torch.Generator(device=self.device)
        self.reset(cfg.seed)

    def reset(self, seed: int | None = None) -> None:
        """Forget the warm start (episode start); reseed the generator if a seed is given."""
        if seed is not None:
            self.generator.manual_seed(seed)
        self.mean = self._initial_mean()
        self.incumbent: Tensor | None = None

    def _initial_mean(self) -> Tensor:
        H = self.cfg.horizon
        if self.discrete:
            assert self.n_actions is not None
            return torch.full((H, self.n_actions), 1.0 / self.n_actions, dtype=self.dtype,
                              device=self.device)
        return torch.zeros((H, *self.action_shape), dtype=self.dtype, device=self.device)

    def _gaussian(self, mean: Tensor, std: Tensor) -> Tensor:
        noise = torch.randn((self.cfg.samples, *mean.shape), generator=self.generator,
                            dtype=self.dtype, device=self.device)
        return (mean + std * noise).clamp(-1.0, 1.0)  # [K, H, *A]

    def _evaluate(self, objective: Objective, seqs: Tensor) -> Tensor:
        returns = torch.as_tensor(objective(seqs), dtype=self.dtype, device=self.device)
        if returns.shape != (self.cfg.samples,):
            raise ValueError(f"the objective must return one value per sequence, shape "
                             f"({self.cfg.samples},), got {tuple(returns.shape)}")
        return _sanitize(returns)


class CEM(_Planner):
    """Cross-entropy method with elites, momentum, incumbent and shift-by-one warm start.

    Continuous: CEM(cfg, action_shape=(A,)); discrete: CEM(cfg, n_actions=n).
    `mean` is the warm start of the next call: a Gaussian mean [H, *A] or probabilities [H, n].
    """

    cfg: CEMConfig

    def __init__(self, cfg: CEMConfig, action_shape: tuple[int, ...] = (1,),
                 n_actions: int | None = None, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__(cfg, action_shape, n_actions, device, dtype)

    def _sample(self, mean: Tensor, std: Tensor) -> Tensor:
        if self.discrete:  # mean holds the probabilities [H, n]
            idx = torch.multinomial(mean, self.cfg.samples, replacement=True,
                                    generator=self.generator)  # [H, K]
            return idx.T.contiguous()  # [K, H]
        return self._gaussian(mean, std)

    @torch.no_grad()
    def plan(self, objective: Objective) -> Plan:
        cfg = self.cfg
        mean = self.mean
        std = torch.full_like(mean, cfg.init_std)
        incumbent = self.incumbent if cfg.keep_incumbent else None
        best_seq: Tensor | None = None
        best_ret = torch.tensor(float("-inf"), dtype=self.dtype, device=self.device)
        per_iteration = []
        for _ in range(cfg.iterations):
            seqs = self._sample(mean, std)
            if incumbent is not None:
                seqs[0] = incumbent
            returns = self._evaluate(objective, seqs)
            top = returns.topk(cfg.elites).indices
            i = top[0]
            per_iteration.append(returns[i])
            if best_seq is None or not cfg.keep_incumbent:  # plain CEM: the last one's best
                best_seq, best_ret = seqs[i], returns[i]
            else:
                better = returns[i] > best_ret
                best_seq = torch.where(better, seqs[i], best_seq)
                best_ret = torch.where(better, returns[i], best_ret)
            if cfg.keep_incumbent:
                incumbent = best_seq
            if self.discrete:
                mean = refit_categorical(seqs[top], mean, cfg.momentum, cfg.uniform_mix)
            else:
                mean, std = refit_gaussian(seqs[top], mean, std, cfg.momentum, cfg.min_std)
        assert best_seq is not None
        best_seq = best_seq.clone()
        self.mean = shift(mean, self._initial_mean()[-1])
        self.incumbent = shift(best_seq, best_seq[-1])  # the last action repeated
        return Plan(action=best_seq[0], actions=best_seq, value=best_ret,
                    best_returns=torch.stack(per_iteration))


class MPPI(_Planner):
    """MPPI over a per-step Gaussian, iterated with a reweighted std (TD-MPC2).

    Continuous actions only. `mean` [H, *A] is the warm start of the next call.
    """

    cfg: MPPIConfig

    def __init__(self, cfg: MPPIConfig, action_shape: tuple[int, ...] = (1,),
                 device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__(cfg, action_shape, None, device, dtype)

    @torch.no_grad()
    def plan(self, objective: Objective) -> Plan:
        cfg = self.cfg
        mean = self.mean
        std = torch.full_like(mean, cfg.init_std)
        value = torch.tensor(float("-inf"), dtype=self.dtype, device=self.device)
        per_iteration = []
        for _ in range(cfg.iterations):
            seqs = self._gaussian(mean, std)
            returns = self._evaluate(objective, seqs)
            per_iteration.append(returns.max())
            mean, std, value = mppi_update(seqs, returns, cfg.temperature, cfg.min_std)
        self.mean = shift(mean, self._initial_mean()[-1])
        return Plan(action=mean[0], actions=mean, value=value,
                    best_returns=torch.stack(per_iteration))
