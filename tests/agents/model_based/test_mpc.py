"""The MPC controller plans through a model: known optima, a double integrator, particles."""

import pytest
import torch
from torch import Tensor, nn

from agents.model_based.mpc import MPCController, MPCSettings, _by_member, _from_member


class ExactModel(nn.Module):
    """A 'learned' model that is exact: the 1-D double integrator x' = x + dt v, v' = v + dt u,
    with optional additive noise (std 0.01 per unit of noise) to exercise the particles."""

    def __init__(self, ensemble_size: int = 1, dt: float = 0.1) -> None:
        super().__init__()
        self.ensemble_size, self.out_dim, self.obs_dim, self.act_dim = ensemble_size, 2, 2, 1
        self.reward, self.dt = False, dt

    def propagate(self, obs: Tensor, act: Tensor, noise: Tensor | None = None):
        x, v, u = obs[..., 0], obs[..., 1], act[..., 0]
        nxt = torch.stack([x + self.dt * v, v + self.dt * u], -1)
        return (nxt if noise is None else nxt + 0.01 * noise), None


class Quadratic(nn.Module):
    """r = -(a - target)^2: the best action is the target, whatever the state."""

    def __init__(self, target: float) -> None:
        super().__init__()
        self.target = target

    def forward(self, obs: Tensor, act: Tensor, next_obs: Tensor):
        return -(act[..., 0] - self.target).square(), torch.zeros_like(act[..., 0], dtype=bool)


class Regulate(nn.Module):
    """r = -(x'^2 + 0.1 v'^2 + 0.001 u^2): bring the integrator to rest at the origin."""

    def forward(self, obs: Tensor, act: Tensor, next_obs: Tensor):
        r = -(next_obs[..., 0].square() + 0.1 * next_obs[..., 1].square()
              + 1e-3 * act[..., 0].square())
        return r, torch.zeros_like(r, dtype=torch.bool)


def settings(**kw) -> MPCSettings:
    base = dict(planner="cem", horizon=1, samples=200, iterations=5, elites=20, init_std=0.5,
                min_std=0.01, momentum=0.1, temperature=0.05, particles=1, propagation="mean")
    return MPCSettings(**(base | kw))


@pytest.mark.parametrize("planner", ["cem", "mppi"])
def test_the_controller_finds_the_optimum_of_a_known_quadratic(planner):
    torch.manual_seed(0)
    mpc = MPCController(ExactModel(), Quadratic(0.3), settings(planner=planner))
    obs = torch.zeros(3, 2)
    action, warm, chosen = mpc(obs, mpc.initial_plan(3), **mpc.draw_noise(3))
    assert action.shape == (3, 1) and warm.shape == chosen.shape == (3, 1, 1)
    assert torch.allclose(action, torch.full((3, 1), 0.3), atol=0.03), action


@pytest.mark.parametrize("planner", ["cem", "mppi"])
def test_the_controller_brings_a_double_integrator_to_rest(planner):
    torch.manual_seed(0)
    mpc = MPCController(ExactModel(), Regulate(), settings(planner=planner, horizon=15))
    model = ExactModel()
    state, plan = torch.tensor([[1.0, 0.0]]), mpc.initial_plan(1)
    for _ in range(60):
        action, plan, _ = mpc(state, plan, **mpc.draw_noise(1))
        state, _ = model.propagate(state[None], action[None])
        state = state[0]
    assert state.abs().max() < 0.1, state  # from x = 1 at rest to near the origin
    # A do-nothing controller stays at x = 1; one pushing the wrong way goes further.


def test_particles_go_to_members_and_back():
    t = torch.arange(3 * 2 * 6 * 4, dtype=torch.float32).reshape(3, 2, 6, 4)
    by = _by_member(t, 3)
    assert by.shape == (3, 3 * 2 * 2, 4)
    assert torch.equal(_from_member(by, 3, 2, 6), t)
    # particle p of every candidate goes to member p // (P / E)
    assert torch.equal(by[1].reshape(3, 2, 2, 4), t[:, :, 2:4])


def test_termination_stops_the_reward_of_a_particle():
    class DoneAfterFirst(nn.Module):
        def forward(self, obs, act, next_obs):
            return torch.ones_like(act[..., 0]), torch.ones_like(act[..., 0], dtype=torch.bool)

    mpc = MPCController(ExactModel(), DoneAfterFirst(), settings(horizon=5))
    seqs = torch.zeros(4, 1, 5, 1)
    returns = mpc.returns(torch.zeros(1, 2), seqs, torch.zeros(5, 1, 2))
    assert torch.equal(returns, torch.ones(4, 1))  # only the first step counts


@pytest.mark.parametrize("propagation", ["ts-inf", "ts-1"])
def test_particles_spread_with_the_model_noise(propagation):
    mpc = MPCController(ExactModel(ensemble_size=2), Regulate(),
                        settings(horizon=4, particles=4, propagation=propagation))
    noise = mpc.draw_noise(1)
    assert set(noise) == ({"cem_noise", "particle_noise"} | (
        {"perm_noise"} if propagation == "ts-1" else set()))
    seqs = torch.zeros(2, 1, 4, 1)
    noisy = mpc.returns(torch.ones(1, 2), seqs, noise["particle_noise"], noise.get("perm_noise"))
    calm = mpc.returns(torch.ones(1, 2), seqs, torch.zeros_like(noise["particle_noise"]),
                       noise.get("perm_noise"))
    assert not torch.equal(noisy, calm) and torch.allclose(noisy, calm, atol=0.05)
    assert torch.equal(noisy[0], noisy[1])  # common random numbers: same draws per candidate


@pytest.mark.bad_input
def test_particles_must_divide_among_members():
    with pytest.raises(ValueError, match=r"particles \(3\) must be a multiple of the ensemble "
                       r"size \(2\)"):
        MPCController(ExactModel(ensemble_size=2), Regulate(), settings(particles=3))
