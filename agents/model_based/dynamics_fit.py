"""Fitting the dynamics ensemble to transitions, as PETS and mbrl-lib do.

Chua et al. (2018), appendix A.1; Pineda et al. (2021), "MBRL-Lib". Each fit refits the
normalizers on all data, holds out a split, draws one bootstrap resample of the training split
per member, and minimises with Adam

    L = sum_e mean_{B, d} [(mu_e - y)^2 exp(-logvar_e) + logvar_e]
        + 0.01 sum_e (sum max_logvar_e - sum min_logvar_e)

(twice the Gaussian NLL less its constant, as PETS writes it; `loss="mse"` trains the mean alone
on sum_e mean (mu_e - y)^2, the deterministic model of the CS285 MBRL versions 0.5-1.5). Early
stopping is on held-out MSE of the mean: a member's best weights are kept when its MSE improves
by more than 1% (relative), and fitting stops when no member has for `patience` epochs (the rule
of MBPO's and mbrl-lib's trainers). The members with the lowest held-out MSE are the elites.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from data.replay import ReplayBuffer
from models.dynamics import ProbabilisticEnsemble

LOGVAR_BOUND_WEIGHT = 0.01
"""Weight of the bound term in the loss (PETS, mbrl-lib)."""
IMPROVEMENT = 0.01
"""Relative held-out improvement that counts for early stopping (MBPO, mbrl-lib)."""
LOSSES = ("nll", "mse")


def gaussian_nll(mean: Tensor, logvar: Tensor, target: Tensor) -> Tensor:
    """sum_e mean_{B, d} [(mu - y)^2 exp(-logvar) + logvar] for [E, B, d] (target [B, d] too).

    Twice the Gaussian NLL less its constant, as PETS and mbrl-lib write it, so the bound
    term keeps their relative weight.
    """
    return ((mean - target).square() * (-logvar).exp() + logvar).mean((-2, -1)).sum()


def logvar_bound_loss(max_logvar: Tensor, min_logvar: Tensor) -> Tensor:
    """0.01 (sum max_logvar - sum min_logvar): pulls the learned bounds tight (PETS)."""
    return LOGVAR_BOUND_WEIGHT * (max_logvar.sum() - min_logvar.sum())


def dynamics_optimizer(
    model: ProbabilisticEnsemble, *, lr: float = 1e-3, weight_decay: float = 5e-5
) -> torch.optim.Adam:
    """Adam over all the ensemble's parameters (mbrl-lib's PETS defaults).

    Weight decay (L2, as Adam adds it) acts on the network only, not on the logvar bounds:
    PETS decays its layers' weights, and a decay on min_logvar = -10 would pull the floor up
    as hard as the bound term does. Keep one and pass it to every `fit` to continue training
    the same nets with their moments (PETS retrains the same model each iteration); a fresh
    one is made otherwise.
    """
    if not (_is_number(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if not (_is_number(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    groups: list[dict[str, Any]] = [
        {"params": list(model.net.parameters())},
        {"params": [model.max_logvar, model.min_logvar], "weight_decay": 0.0}]
    return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)


def bootstrap_indices(
    train_idx: Tensor, ensemble_size: int, generator: torch.Generator, *, bootstrap: bool = True
) -> Tensor:
    """[E, N] rows of the training split per member: resampled with replacement (a bootstrap,
    PETS) or, without `bootstrap`, the split itself for every member."""
    n = train_idx.shape[0]
    if not bootstrap:
        return train_idx.expand(ensemble_size, n)
    draw = torch.randint(n, (ensemble_size, n), generator=generator, device=generator.device)
    return train_idx[draw.to(train_idx.device)]


@torch.no_grad()
def holdout_mse(model: ProbabilisticEnsemble, x: Tensor, y: Tensor) -> Tensor:
    """Per-member MSE [E] of the predicted mean on normalized inputs x [N, in], targets y."""
    mean, _ = model(x)
    return (mean - y).square().mean((-2, -1))


@dataclass(frozen=True)
class FitStats:
    """What one `fit` did (floats for logging)."""

    train_loss: float
    """Last epoch: mean over minibatches and members of the NLL term (no bound term)."""
    holdout_mse: float
    """Mean held-out MSE of the elites (normalized targets), after restoring the best weights."""
    member_mse: tuple[float, ...]
    """Held-out MSE of every member, after restoring."""
    epochs: int
    """Epochs trained."""
    elites: tuple[int, ...]
    """Elite members, best first (as in `model.elite_idx`)."""


def fit(
    model: ProbabilisticEnsemble, obs: Tensor, act: Tensor, next_obs: Tensor,
    reward: Tensor | None = None, *, generator: torch.Generator,
    optimizer: torch.optim.Optimizer | None = None, batch_size: int = 256,
    max_epochs: int = 100, holdout: float = 0.2, max_holdout: int = 5000, patience: int = 5,
    bootstrap: bool = True, loss: str = "nll",
) -> FitStats:
    """Fit the ensemble to transitions [N, *] (all the data so far, as PETS does each iteration).

    Refits the normalizers, splits off min(holdout N, max_holdout) rows to hold out, trains
    with early stopping, restores each member's best weights and sets `model.elite_idx`.
    `optimizer` (from `dynamics_optimizer`, over all of model's parameters) continues from its
    moments; None makes a fresh one. All randomness comes from `generator`: the same data and
    seed give bit-identical weights on CPU. Raises FloatingPointError, naming the epoch, when
    the loss turns non-finite (model and optimizer are then unusable: reload a checkpoint).
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    _check_fit_args(batch_size=batch_size, max_epochs=max_epochs, holdout=holdout,
                    max_holdout=max_holdout, patience=patience)
    opt = dynamics_optimizer(model) if optimizer is None else optimizer
    _check_optimizer(model, opt)
    device = model.elite_idx.device
    obs, act, next_obs = (t.to(device, torch.float32) for t in (obs, act, next_obs))
    reward = None if reward is None else reward.to(device, torch.float32)
    _check_data(model, obs, act, next_obs, reward)
    model.fit_normalizers(obs, act, next_obs, reward)
    with torch.no_grad():
        x = model.input_norm(torch.cat([obs, act], -1))  # [N, in]
        y = model.target_norm(model.targets(obs, next_obs, reward))  # [N, out]
    n = x.shape[0]
    n_hold = min(max(1, int(holdout * n)), max_holdout, n - 1)
    perm = torch.randperm(n, generator=generator, device=generator.device).to(device)
    hold, train = perm[:n_hold], perm[n_hold:]
    x_hold, y_hold = x[hold], y[hold]
    rows = bootstrap_indices(train, model.ensemble_size, generator, bootstrap=bootstrap)

    params = list(model.parameters())
    best = [p.detach().clone() for p in params]
    best_mse = holdout_mse(model, x_hold, y_hold)  # the starting weights are the first best
    since, epoch, train_loss = 0, 0, float("nan")
    while epoch < max_epochs and since < patience:
        epoch += 1
        train_loss = _train_epoch(model, opt, x, y, rows, batch_size, generator, epoch, loss)
        mse = holdout_mse(model, x_hold, y_hold)
        if not bool(torch.isfinite(mse).all()):
            raise FloatingPointError(f"dynamics fit: held-out MSE became non-finite in epoch "
                                     f"{epoch}")
        improved = mse < best_mse * (1.0 - IMPROVEMENT)  # [E]
        _keep(best, params, improved)
        best_mse = torch.where(improved, mse, best_mse)
        since = 0 if bool(improved.any()) else since + 1
    with torch.no_grad():  # restore every member's best
        for p, b in zip(params, best, strict=True):
            p.copy_(b)
    model.elite_idx.copy_(torch.argsort(best_mse, stable=True)[: model.n_elites])
    member = best_mse.tolist()
    elites = tuple(int(i) for i in model.elite_idx.tolist())
    return FitStats(train_loss=train_loss, holdout_mse=sum(member[i] for i in elites) / len(elites),
                    member_mse=tuple(member), epochs=epoch, elites=elites)


def fit_replay(model: ProbabilisticEnsemble, replay: ReplayBuffer, **settings: Any) -> FitStats:
    """`fit` to every transition stored in `replay` (with its rewards when the ensemble learns
    them), with a generator seeded from torch's checkpointed global generator, so a resumed
    run fits alike. `settings` are `fit`'s keywords (optimizer, batch_size, ...)."""
    n = replay.size
    obs, act, next_obs, rew = (
        getattr(replay, k)[:n].reshape(n * replay.num_envs, *getattr(replay, k).shape[2:])
        for k in ("obs", "actions", "next_obs", "rewards"))
    device = model.elite_idx.device
    gen = torch.Generator(device=device).manual_seed(int(torch.randint(2**62, (), device="cpu")))
    return fit(model, obs, act, next_obs, rew if model.reward else None, generator=gen,
               **settings)


def _train_epoch(
    model: ProbabilisticEnsemble, opt: torch.optim.Optimizer, x: Tensor, y: Tensor,
    rows: Tensor, batch_size: int, generator: torch.Generator, epoch: int, loss: str = "nll",
) -> float:
    """One pass over each member's rows [E, N] in a fresh order; mean loss per member."""
    E, n = rows.shape
    order = torch.argsort(torch.rand(E, n, generator=generator, device=generator.device), dim=1)
    rows = rows.gather(1, order.to(rows.device))
    total = torch.zeros((), device=x.device)
    for start in range(0, n, batch_size):
        idx = rows[:, start : start + batch_size]  # [E, b]: one gather for all members
        mean, logvar = model(x[idx])
        if loss == "mse":
            term = (mean - y[idx]).square().mean((-2, -1)).sum()
            objective = term
        else:
            term = gaussian_nll(mean, logvar, y[idx])
            objective = term + logvar_bound_loss(model.max_logvar, model.min_logvar)
        opt.zero_grad(set_to_none=True)
        objective.backward()
        opt.step()
        total = total + term.detach()
    value = float(total) / (math.ceil(n / batch_size) * E)  # one host sync per epoch
    if not math.isfinite(value):
        raise FloatingPointError(f"dynamics fit: the training loss became non-finite in epoch "
                                 f"{epoch}")
    return value


@torch.no_grad()
def _keep(dst: Sequence[Tensor], src: Sequence[Tensor], members: Tensor) -> None:
    """dst[e] <- src[e] for the members e where `members` [E] is True (stacked parameters)."""
    for d, s in zip(dst, src, strict=True):
        d.copy_(torch.where(members.view(-1, *([1] * (d.dim() - 1))), s, d))


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_fit_args(*, holdout: float, **counts: int) -> None:
    for name, v in counts.items():
        if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if not (_is_number(holdout) and 0 < holdout < 1):
        raise ValueError(f"holdout must be a fraction in (0, 1), got {holdout!r}")


def _check_optimizer(model: nn.Module, opt: torch.optim.Optimizer) -> None:
    """An optimizer of another model (say, one built before a reload) would train nothing."""
    have = {id(p) for g in opt.param_groups for p in g["params"]}
    if have != {id(p) for p in model.parameters()}:
        raise ValueError("optimizer must hold exactly this ensemble's parameters; build it with "
                         "dynamics_optimizer(model)")


def _check_data(
    model: ProbabilisticEnsemble, obs: Tensor, act: Tensor, next_obs: Tensor,
    reward: Tensor | None,
) -> None:
    """Refuse transitions of the wrong shape or with non-finite values, naming them."""
    n = obs.shape[0]
    want: dict[str, tuple[Tensor, tuple[int, ...]]] = {
        "obs": (obs, (n, model.obs_dim)), "act": (act, (n, model.act_dim)),
        "next_obs": (next_obs, (n, model.obs_dim))}
    if model.reward or reward is not None:
        if not model.reward or reward is None:
            raise ValueError(f"reward must be given exactly when the ensemble learns it "
                             f"(reward={model.reward})")
        want["reward"] = (reward, (n,))
    for name, (t, shape) in want.items():
        if tuple(t.shape) != shape:
            raise ValueError(f"{name} must have shape {list(shape)}, got {list(t.shape)}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} holds non-finite values; fit needs finite transitions")
    if n < 2:
        raise ValueError(f"fit needs at least 2 transitions (one held out), got {n}")
