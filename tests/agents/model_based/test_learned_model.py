"""The learned model of MBPO, MVE and SVG: fitting a known linear system from a replay buffer,
one step through a uniformly drawn elite, the env's termination, gradients to obs and actions,
the error on fresh data, determinism and state."""

import dataclasses

import pytest
import torch

from agents.model_based.learned_model import LearnedModel, ModelConfig
from data.replay import ReplayBuffer
from sim.registry import EnvInfo

A = torch.tensor([[0.9, 0.2], [-0.1, 0.95]])
B = torch.tensor([[0.0], [0.5]])
SMALL = ModelConfig(ensemble_size=3, num_elites=2, model_hidden=(32, 32), model_max_epochs=150,
                    model_batch_size=64)


def info(name: str = "", obs_dim: int = 2) -> EnvInfo:
    return EnvInfo(obs_shape=(obs_dim,), obs_dtype="float32", discrete=False, action_shape=(1,),
                   n_actions=None, action_low=(-1.0,), action_high=(1.0,), dt=0.05, name=name)


def linear_replay(n: int = 1500, seed: int = 0) -> ReplayBuffer:
    """x' = A x + B u + N(0, 0.05^2), r = x_0 - 0.5 u, in a buffer of 2 envs."""
    g = torch.Generator().manual_seed(seed)
    replay = ReplayBuffer(n, 2, (2,), (1,), discrete=False)
    for _ in range(n // 2):
        x, u = torch.randn(2, 2, generator=g), torch.rand(2, 1, generator=g) * 2 - 1
        x_next = x @ A.T + u @ B.T + 0.05 * torch.randn(2, 2, generator=g)
        replay.add(x, u, x[:, 0] - 0.5 * u[:, 0], x_next, torch.zeros(2, dtype=torch.bool),
                   torch.zeros(2, dtype=torch.bool))
    return replay


@pytest.fixture(scope="module")
def fitted() -> tuple[LearnedModel, dict[str, float]]:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = LearnedModel(SMALL, info(), torch.device("cpu"))
    return model, model.fit(linear_replay())


def test_fit_learns_the_linear_system_and_its_reward(fitted):
    model, stats = fitted
    assert model.fits == 1 and stats["model_holdout_mse"] < 0.05
    x = torch.tensor([[0.5, -0.3], [-1.0, 0.2]])
    u = torch.tensor([[0.4], [-0.8]])
    s, r, done = model.step(x, u, mean=True)
    assert torch.allclose(s, x @ A.T + u @ B.T, atol=0.05)
    assert torch.allclose(r, x[:, 0] - 0.5 * u[:, 0], atol=0.05)
    assert not done.any()
    err = model.error({"obs": x, "actions": u, "next_obs": x @ A.T + u @ B.T,
                       "rewards": x[:, 0] - 0.5 * u[:, 0]})
    assert 0 <= err["model_error_obs"] < 0.01 and 0 <= err["model_error_reward"] < 0.01


def test_each_row_draws_one_elite_and_samples_its_gaussian(fitted):
    model, _ = fitted
    x = torch.zeros(4000, 2)
    u = torch.zeros(4000, 1)
    g = torch.Generator().manual_seed(3)
    s, _, _ = model.step(x, u, generator=g)
    s_again, _, _ = model.step(x, u, generator=torch.Generator().manual_seed(3))
    assert torch.equal(s, s_again)  # the generator decides the members and the noise
    # samples spread about the mean by about the noise the model learned (0.05)
    assert 0.02 < float(s.detach().std(0).mean()) < 0.1
    # each row takes the mean of one elite, and over 64 rows both elites are drawn
    m = model.ensemble
    rows = model.step(x[:64], u[:64], mean=True, generator=torch.Generator().manual_seed(0))[0]
    z, _ = m(m.input_norm(torch.zeros(1, 3)).expand(m.ensemble_size, 1, -1))
    member = m.target_norm.inverse(z)[:, 0, :2]  # [E, 2], every member's mean step from 0
    picked = (rows[:, None] - member[None]).abs().amax(-1).argmin(-1)  # [64]
    assert torch.allclose(rows, member[picked], atol=1e-5)
    assert set(picked.tolist()) == set(m.elite_idx.tolist())


def test_gradients_reach_observations_and_actions(fitted):
    model, _ = fitted
    x = torch.tensor([[0.5, -0.3]], requires_grad=True)
    u = torch.tensor([[0.2]], requires_grad=True)
    s, r, _ = model.step(x, u, mean=True)
    (s.sum() + r.sum()).backward()
    assert x.grad is not None and u.grad is not None
    # d(r)/du ~ -0.5 and d(s_1)/du ~ 0.5 from the linear system: their sum is near 0
    assert abs(float(u.grad)) < 0.2 and float(x.grad.abs().sum()) > 0.5


def test_known_termination_ends_model_steps():
    model = LearnedModel(SMALL, info("inverted-pendulum", 4), torch.device("cpu"))
    obs = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, 0.5, 0.0, 0.0]])
    model.ensemble.fit_normalizers(obs, torch.zeros(2, 1), obs, torch.zeros(2))
    with torch.no_grad():  # a model that predicts no change: the tilted pole stays fallen
        for p in model.ensemble.net.parameters():
            p.zero_()
    _, _, done = model.step(obs, torch.zeros(2, 1), mean=True)
    assert done.tolist() == [False, True]


def test_a_known_model_reward_is_the_envs_function_of_s_a_and_the_predicted_s_next():
    """model_reward="known": the ensemble predicts s' - s alone, and r of a model step (and of
    the error on real data) is the env's own reward of (s, a, s') in the robot's units."""
    from agents.model_based.rewards import reward_for

    torch.manual_seed(0)
    model = LearnedModel(dataclasses.replace(SMALL, model_reward="known"), info("pendulum", 3),
                         torch.device("cpu"))
    assert not model.ensemble.reward and model.ensemble.out_dim == 3
    obs = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 2.0], [-1.0, 0.0, -1.0]])
    act = torch.tensor([[0.5], [-1.0], [0.0]])
    model.ensemble.fit_normalizers(obs, act, obs + 0.1)
    s, r, done = model.step(obs, act, mean=True)
    fn = reward_for("pendulum")
    assert torch.equal(r, fn.reward(obs, act, s)) and not done.any()
    with torch.no_grad():  # every member predicts the data's mean change, +0.1
        for p in model.ensemble.net.parameters():
            p.zero_()
    s, r, _ = model.step(obs, act, mean=True)
    assert torch.allclose(s, obs + 0.1, atol=1e-6)
    # pendulum's cost of (theta, theta_dot, u): theta 0, pi/2, pi; u = 2 a (torque +-2)
    assert torch.allclose(r, -torch.tensor([0.001 * 1.0, (torch.pi / 2) ** 2 + 0.1 * 4 + 0.004,
                                            torch.pi ** 2 + 0.1]), atol=1e-5)
    err = model.error({"obs": obs, "actions": act, "next_obs": s, "rewards": r})
    assert err["model_error_obs"] < 1e-10 and err["model_error_reward"] < 1e-10
    err = model.error({"obs": obs, "actions": act, "next_obs": s, "rewards": r + 2.0})
    assert err["model_error_reward"] == pytest.approx(4.0)


def test_a_known_model_reward_needs_an_env_that_has_one():
    with pytest.raises(ValueError) as e:
        LearnedModel(dataclasses.replace(SMALL, model_reward="known"), info("gridless", 2),
                     torch.device("cpu"))
    line = str(e.value)
    assert "'gridless'" in line and "pendulum" in line and "\n" not in line
    with pytest.raises(ValueError, match="model_reward"):
        ModelConfig(model_reward="exact")


def test_state_round_trip_and_bad_settings(fitted):
    model, _ = fitted
    copy = LearnedModel(SMALL, info(), torch.device("cpu"))
    copy.load_state_dict(model.state_dict())
    x, u = torch.randn(5, 2), torch.rand(5, 1)
    a = copy.step(x, u, generator=torch.Generator().manual_seed(5))
    b = model.step(x, u, generator=torch.Generator().manual_seed(5))
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    assert copy.fits == 1
    with pytest.raises(ValueError, match="num_elites"):
        dataclasses.replace(SMALL, num_elites=4)
    with pytest.raises(ValueError, match="model_train_freq"):
        ModelConfig(model_train_freq=0)
    with pytest.raises(ValueError, match="continuous"):
        LearnedModel(SMALL, dataclasses.replace(info(), discrete=True, n_actions=2),
                     torch.device("cpu"))
