"""The PETS dynamics ensemble: its loss against hand values, soft bounds, member isolation,
fitting a known linear system (mean, noise variance, reward, early stopping, elites),
trajectory-sampling steps, the ONNX graph, bad arguments and determinism."""

import logging
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agents.model_based.dynamics_fit import (
    bootstrap_indices,
    dynamics_optimizer,
    fit,
    gaussian_nll,
    logvar_bound_loss,
)
from models.dynamics import ProbabilisticEnsemble, soft_bound_logvar

A = torch.tensor([[0.9, 0.2], [-0.1, 0.95]])
B = torch.tensor([[0.0], [0.5]])
SIGMA = 0.05
"""x' = A x + B u + N(0, SIGMA^2 I); r = x_0 - 0.5 u (a linear reward the head can learn)."""


def linear_system(n: int, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    u = torch.rand(n, 1, generator=g) * 2 - 1
    x_next = x @ A.T + u @ B.T + SIGMA * torch.randn(n, 2, generator=g)
    return x, u, x_next, x[:, 0] - 0.5 * u[:, 0]


def small(**kw: object) -> ProbabilisticEnsemble:
    torch.manual_seed(0)
    args: dict = {"ensemble_size": 3, "hidden": (32, 32)} | kw
    return ProbabilisticEnsemble(2, 1, **args)


@pytest.fixture(scope="module")
def fitted():
    """One fit of the linear system with a reward head, shared by the tests that read it."""
    torch.set_num_threads(1)
    model = small(reward=True)
    stats = fit(model, *linear_system(2000, seed=0), generator=torch.Generator().manual_seed(1),
                batch_size=64, max_epochs=200)
    return model, stats


# -- loss ---------------------------------------------------------------------------------------
def test_gaussian_nll_matches_hand_values_and_torch():
    mean = torch.tensor([[[0.0], [1.0]], [[2.0], [0.0]]])  # [E=2, B=2, d=1]
    logvar = torch.tensor([[[0.0], [math.log(4.0)]], [[0.0], [0.0]]])
    target = torch.tensor([[0.0], [3.0]])  # shared by both members
    # member 0: (0 + 0, (1-3)^2/4 + log 4) -> mean 1.193147; member 1: (4, 9) -> 6.5
    expected = (0.0 + 1.0 + math.log(4.0)) / 2 + (4.0 + 9.0) / 2
    assert gaussian_nll(mean, logvar, target).item() == pytest.approx(expected, rel=1e-6)
    # twice torch's NLL without its constant, per member, summed over members
    ref = sum(2 * F.gaussian_nll_loss(mean[e], target, logvar[e].exp()) for e in range(2))
    assert gaussian_nll(mean, logvar, target).item() == pytest.approx(ref.item(), rel=1e-6)


def test_logvar_bound_term_is_one_hundredth_of_the_bounds_gap():
    model = small()  # E=3, out=2, bounds 0.5 and -10
    bound = logvar_bound_loss(model.max_logvar, model.min_logvar).item()
    assert bound == pytest.approx(0.01 * 3 * 2 * (0.5 + 10.0))
    assert logvar_bound_loss(torch.tensor([1.0, 2.0]), torch.tensor([-3.0])).item() == (
        pytest.approx(0.06))


def test_soft_bounds_keep_logvar_between_the_learned_bounds():
    hi, lo = torch.tensor(0.5, dtype=torch.float64), torch.tensor(-10.0, dtype=torch.float64)
    raw = torch.cat([torch.linspace(-1e4, 1e4, 2001), torch.linspace(-15, 5, 2001)]).double()
    logvar = soft_bound_logvar(raw, hi, lo)
    assert torch.all(logvar >= lo)
    assert torch.all(logvar <= hi + F.softplus(lo - hi) + 1e-12)  # the soft bounds' ceiling
    assert logvar.min() < lo + 1e-3 and logvar.max() > hi - 1e-3  # both bounds are reached
    assert torch.all(logvar[2001:].diff() >= 0)  # monotone
    assert soft_bound_logvar(torch.tensor(-4.0), hi, lo).item() == pytest.approx(-4.0, abs=0.02)


def test_a_members_loss_moves_only_its_own_weights():
    model = small()
    x, y = torch.randn(3, 16, 3), torch.randn(3, 16, 2)
    mean, logvar = model(x)
    loss = gaussian_nll(mean[:1], logvar[:1], y[:1]) + logvar_bound_loss(
        model.max_logvar[:1], model.min_logvar[:1])
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape[0] == 3, name
        assert p.grad[0].abs().sum() > 0, name
        assert torch.all(p.grad[1:] == 0), name


# -- fitting ------------------------------------------------------------------------------------
def test_fit_learns_the_linear_system_and_its_noise_variance(fitted):
    model, stats = fitted
    x, u, _, _ = linear_system(500, seed=7)
    with torch.no_grad():
        mean, logvar = model(model.input_norm(torch.cat([x, u], -1)))
        std = model.target_norm.std
        pred = x + (mean * std + model.target_norm.mean)[..., :2]
        var = logvar.exp() * std.square()  # [E, N, out] in env units
    # held-out MSE of normalized targets: the noise floor is SIGMA^2 / std^2 (about 0.04 here)
    floor = (SIGMA**2 / std[:2].square()).mean().item()
    assert stats.holdout_mse < 1.3 * floor
    assert (pred - (x @ A.T + u @ B.T)).square().mean() < 0.1 * SIGMA**2
    ratio = var[..., :2].mean() / SIGMA**2
    assert 0.6 < ratio < 1.6, f"predicted variance {ratio:.2f} x the noise variance"
    assert math.isfinite(stats.train_loss) and stats.train_loss < 0


def test_fit_pulls_the_logvar_bounds_in(fitted):
    model, _ = fitted
    assert torch.all(model.max_logvar < 0.5 - 0.05) and torch.all(model.min_logvar > -10 + 0.05)


def test_early_stopping_stops_an_easy_fit_before_max_epochs(fitted):
    _, stats = fitted
    assert 5 < stats.epochs < 200


def test_reward_head_predicts_the_reward(fitted):
    model, _ = fitted
    x, u, x_next, r = linear_system(200, seed=8)
    obs, act = x.expand(3, -1, -1), u.expand(3, -1, -1)
    with torch.no_grad():
        next_obs, reward = model.propagate(obs, act)
    assert reward is not None and reward.shape == (3, 200) and next_obs.shape == (3, 200, 2)
    err = (reward - r).abs()
    assert err.mean() < 0.02 and err.max() < 0.15  # r spans about +-3
    assert small().propagate(obs, act)[1] is None  # no head, no reward


def test_elites_are_the_members_with_the_lowest_holdout_mse():
    model = small(ensemble_size=4, elites=3)
    frozen = torch.tensor([1.0, 1.0, 0.0, 1.0])  # member 2 never learns: it must be left out
    for p in model.parameters():
        p.register_hook(lambda g: g * frozen.view(-1, *([1] * (g.dim() - 1))))
    stats = fit(model, *linear_system(600, seed=2)[:3], generator=torch.Generator().manual_seed(0),
                optimizer=dynamics_optimizer(model, weight_decay=0.0), max_epochs=20)
    mse = torch.tensor(stats.member_mse)
    assert 2 not in stats.elites and mse.argmax() == 2
    assert stats.elites == tuple(model.elite_idx.tolist()) == tuple(mse.argsort()[:3].tolist())
    assert stats.holdout_mse == pytest.approx(mse[list(stats.elites)].mean().item())


def test_each_member_gets_back_its_own_best_weights():
    model = small()
    start = {k: v.detach().clone() for k, v in model.named_parameters()}
    ascend = torch.tensor([-1.0, 1.0, 1.0])  # member 0 climbs its loss: it never improves
    for p in model.parameters():
        p.register_hook(lambda g: g * ascend.view(-1, *([1] * (g.dim() - 1))))
    stats = fit(model, *linear_system(600, seed=2)[:3], generator=torch.Generator().manual_seed(0),
                optimizer=dynamics_optimizer(model, weight_decay=0.0), max_epochs=30)
    assert 5 <= stats.epochs <= 30
    for name, p in model.named_parameters():
        assert torch.equal(p[0], start[name][0]), name  # restored to where it started
        assert not torch.equal(p[1], start[name][1]) and not torch.equal(p[2], start[name][2])
    assert stats.elites[-1] == 0


def test_bootstrap_indices_resample_the_training_split_per_member():
    train = torch.arange(10, 110)
    rows = bootstrap_indices(train, 4, torch.Generator().manual_seed(0))
    assert rows.shape == (4, 100)
    assert all(not torch.equal(rows[0], rows[e]) for e in range(1, 4))
    assert torch.isin(rows, train).all()
    assert all(r.unique().numel() < 100 for r in rows)  # with replacement
    plain = bootstrap_indices(train, 4, torch.Generator().manual_seed(0), bootstrap=False)
    assert all(torch.equal(r, train) for r in plain)


def test_a_kept_optimizer_continues_and_a_foreign_one_is_refused():
    model = small()
    opt = dynamics_optimizer(model)
    data = linear_system(300, seed=3)[:3]
    kw = {"optimizer": opt, "batch_size": 64, "max_epochs": 2}
    first = fit(model, *data, generator=torch.Generator().manual_seed(0), **kw)
    steps = opt.state[model.max_logvar]["step"].item()
    fit(model, *data, generator=torch.Generator().manual_seed(0), **kw)
    # 240 training rows in batches of 64: 4 steps an epoch, counted on across fits
    assert opt.state[model.max_logvar]["step"].item() == 2 * steps == 2 * first.epochs * 4
    with pytest.raises(ValueError, match="optimizer must hold exactly this ensemble"):
        fit(model, *data, generator=torch.Generator(), optimizer=dynamics_optimizer(small()))


def test_a_non_finite_loss_raises_naming_the_epoch():
    model = small()
    with torch.no_grad():
        model.net[0].weight[1, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="non-finite in epoch 1$"):
        fit(model, *linear_system(100, seed=0)[:3], generator=torch.Generator())


def test_fit_is_deterministic_given_the_generator():
    data = linear_system(400, seed=4)[:3]

    def run(seed: int, other: int) -> dict[str, Tensor]:
        model = small()
        torch.manual_seed(other)  # the global RNG plays no part
        fit(model, *data, generator=torch.Generator().manual_seed(seed), max_epochs=3)
        return model.state_dict()

    a, b, c = run(0, 10), run(0, 11), run(1, 10)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["net.0.weight"], c["net.0.weight"])


# -- trajectory sampling and export -------------------------------------------------------------
def with_normalizers(model: ProbabilisticEnsemble) -> ProbabilisticEnsemble:
    g = torch.Generator().manual_seed(5)
    obs = torch.randn(100, model.obs_dim, generator=g) * 3 + 1
    model.fit_normalizers(obs, torch.randn(100, model.act_dim, generator=g),
                          obs + torch.randn(100, model.obs_dim, generator=g),
                          torch.randn(100, generator=g) if model.reward else None)
    return model


def test_normalizers_only_centre_a_constant_column():
    model = small()
    obs = torch.cat([torch.randn(50, 1), torch.full((50, 1), 3.0)], -1)  # column 1 never moves
    model.fit_normalizers(obs, torch.randn(50, 1), obs + torch.tensor([0.1, 0.0]))
    assert model.input_norm.std[1] == 1.0 and model.target_norm.std.tolist() == [1.0, 1.0]
    assert model.input_norm.count == 50
    z = model.input_norm(torch.tensor([[0.0, 3.1, 0.0]]))
    assert z[0, 1].item() == pytest.approx(0.1, abs=1e-6)  # a small deviation stays small


def test_propagate_shapes_mean_and_noise():
    model = with_normalizers(small(ensemble_size=4, elites=2))
    model.elite_idx.copy_(torch.tensor([3, 1]))
    obs, act = torch.randn(4, 6, 2), torch.randn(4, 6, 1)
    noise = torch.randn(4, 6, 2)
    with torch.no_grad():
        mean, logvar = model(model.input_norm(torch.cat([obs, act], -1)))
        s_mean, r = model.propagate(obs, act)
        s_noisy, _ = model.propagate(obs, act, noise)
        s_elite, _ = model.propagate(obs[[3, 1]], act[[3, 1]], noise[[3, 1]], elites_only=True)
    std = model.target_norm.std
    assert s_mean.shape == (4, 6, 2) and r is None
    assert torch.allclose(s_mean, obs + mean * std + model.target_norm.mean, atol=1e-5)
    assert torch.allclose(s_noisy - s_mean, (0.5 * logvar).exp() * noise * std, atol=1e-5)
    assert torch.allclose(s_elite, s_noisy[[3, 1]], atol=1e-6)  # each member its own particles


class _Step(nn.Module):
    """Both propagate paths in one graph: all members and the elites only."""

    def __init__(self, model: ProbabilisticEnsemble) -> None:
        super().__init__()
        self.model = model

    def forward(self, obs: Tensor, act: Tensor, noise: Tensor, elite_obs: Tensor,
                elite_act: Tensor) -> tuple[Tensor, ...]:
        s, r = self.model.propagate(obs, act, noise)
        s_e, r_e = self.model.propagate(elite_obs, elite_act, elites_only=True)
        assert r is not None and r_e is not None
        return s, r, s_e, r_e


def test_propagate_exports_to_onnx_with_parity():
    ort = pytest.importorskip("onnxruntime")
    model = with_normalizers(small(ensemble_size=4, elites=2, reward=True, hidden=(16, 16)))
    model.elite_idx.copy_(torch.tensor([3, 1]))
    step = _Step(model).eval()
    n, names = torch.export.Dim("n"), ["obs", "act", "noise", "elite_obs", "elite_act"]

    def inputs(k: int, seed: int) -> tuple[Tensor, ...]:
        g = torch.Generator().manual_seed(seed)
        return tuple(torch.randn(m, k, d, generator=g) * 2
                     for m, d in ((4, 2), (4, 1), (4, 3), (2, 2), (2, 1)))

    with warnings.catch_warnings():  # as deploy.export: torch's exporter trips its own warnings
        warnings.filterwarnings("ignore", "`isinstance.treespec, LeafSpec.`", FutureWarning)
        warnings.filterwarnings("ignore", "# The axis name", UserWarning)
        logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
        program = torch.onnx.export(step, inputs(5, 0), input_names=names, opset_version=20,
                                    dynamo=True, verbose=False,
                                    dynamic_shapes=tuple({1: n} for _ in names))
    assert program is not None
    session = ort.InferenceSession(program.model_proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    feed = inputs(9, 1)  # another particle count than the traced one
    got = session.run(None, {k: v.numpy() for k, v in zip(names, feed, strict=True)})
    with torch.no_grad():
        want = step(*feed)
    for g, w in zip(got, want, strict=True):
        assert g.shape == tuple(w.shape)
        assert np.max(np.abs(g - w.numpy())) <= 1e-5


# -- bad arguments ------------------------------------------------------------------------------
@pytest.mark.bad_input
def test_more_elites_than_members_is_refused():
    with pytest.raises(ValueError, match=r"^elites must be an integer in 1..ensemble_size \(3\), "
                                         r"got 4$"):
        small(elites=4)


@pytest.mark.bad_input
@pytest.mark.parametrize("holdout", [0.0, 1.0, 1.5, -0.2])
def test_a_holdout_outside_zero_one_is_refused(holdout):
    model = small()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=rf"^holdout must be a fraction in \(0, 1\), got "
                                         rf"{holdout}$"):
        fit(model, *linear_system(50, seed=0)[:3], generator=torch.Generator(), holdout=holdout)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # untouched


@pytest.mark.bad_input
def test_a_zero_batch_size_is_refused():
    with pytest.raises(ValueError, match="^batch_size must be an integer >= 1, got 0$"):
        fit(small(), *linear_system(50, seed=0)[:3], generator=torch.Generator(), batch_size=0)
