"""Known rewards: agree with the simulators on recorded transitions, batch, export to ONNX."""

from __future__ import annotations

import functools
import logging
import warnings

import numpy as np
import pytest
import torch

import sim
from agents.model_based.rewards import (
    RewardFn,
    known_reward,
    names_with_margin,
    names_with_reward,
    reward_for,
)

NAMES = names_with_reward()
STEPS, EPISODE = 300, 100  # transitions per env; a reset at least every EPISODE steps


def _near_the_track_end(env, rng: np.random.Generator) -> np.ndarray:
    """CartPole started fast towards an end of the track, so x (not only theta) terminates."""
    x = rng.uniform(1.8, 2.3) * rng.choice([-1.0, 1.0])
    env.unwrapped.state = np.array([x, 2.0 * np.sign(x), 0.0, 0.0])
    return np.asarray(env.unwrapped.state, np.float32)


STARTS = {"cartpole": _near_the_track_end}
"""Envs whose random-action episodes miss a termination: every other episode starts here."""


@functools.cache
def record(name: str) -> dict[str, torch.Tensor]:
    """STEPS transitions of `name` under random actions in [-1.2, 1.2] (past the bounds, so the
    clip matters), reset at termination, truncation and every EPISODE steps."""
    env = sim.make(name, seed=0)
    rng = np.random.default_rng(0)
    discrete = sim.spec(name).info.discrete
    obs, _ = env.reset(seed=0)
    rows: dict[str, list] = {k: [] for k in ("obs", "act", "next_obs", "reward", "done")}
    t, episode = 0, 0
    for _ in range(STEPS):
        if discrete:
            a = np.int64(rng.integers(env.action_space.n))
        else:
            a = rng.uniform(-1.2, 1.2, env.action_space.shape).astype(np.float32)
        next_obs, r, terminated, truncated, info = env.step(a)
        assert not info.get("sim_unstable"), info
        for k, v in zip(rows, (obs, a, next_obs, r, terminated), strict=True):
            rows[k].append(v)
        t += 1
        obs = next_obs
        if terminated or truncated or t == EPISODE:
            episode, t = episode + 1, 0
            obs, _ = env.reset(seed=episode)
            if name in STARTS and episode % 2:
                obs = STARTS[name](env, rng)
    env.close()
    out = {k: torch.as_tensor(np.asarray(v)) for k, v in rows.items()}
    out["obs"], out["next_obs"] = out["obs"].float(), out["next_obs"].float()
    return out


def test_the_registry_names_registered_envs_and_ant_is_not_among_them():
    assert set(NAMES) <= set(sim.names())
    assert {"pendulum", "inverted-pendulum", "cartpole-swingup", "reacher", "halfcheetah",
            "hopper", "cartpole"} <= set(NAMES)
    assert "ant" not in NAMES and known_reward("ant") is None


@pytest.mark.parametrize("name", NAMES)
def test_action_bounds_match_the_spec(name):
    fn, info = reward_for(name), sim.spec(name).info
    assert fn.discrete == info.discrete
    if not info.discrete:
        assert tuple((fn.act_mid - fn.act_half).tolist()) == info.action_low
        assert tuple((fn.act_mid + fn.act_half).tolist()) == info.action_high
        a = torch.tensor([[-1.0] * info.act_dim, [1.5] * info.act_dim])
        assert fn.robot_action(a).tolist() == [list(info.action_low), list(info.action_high)]


# Measured max |r - r_sim| over the STEPS transitions recorded here (seed 0), under the stated
# RewardFn.max_error: the exact envs are float32 rounding (< 2e-6, pendulum's the largest); the
# forward reward of locomotion, the x displacement estimated from the rootx velocity before and
# after the step, is off by what contacts change within the step: halfcheetah 0.51 (RMS 0.17
# of the reward's std), hopper 0.038, walker2d 0.080.
@pytest.mark.parametrize("name", NAMES)
def test_reward_and_termination_agree_with_the_simulator(name):
    data, fn = record(name), reward_for(name)
    args = data["obs"], data["act"], data["next_obs"]
    reward, done = fn.reward(*args), fn.done(*args)
    assert reward.shape == done.shape == (STEPS,) and done.dtype == torch.bool
    assert reward.dtype == torch.float32
    error = (reward.double() - data["reward"].double()).abs()
    assert error.max() <= fn.max_error, f"{name}: max error {error.max():.3g}"
    # Not only bounded: an approximation explains nearly all of the reward's variation.
    assert error.square().mean().sqrt() <= 0.2 * data["reward"].double().std() + 1e-5
    assert torch.equal(done, data["done"])


@pytest.mark.parametrize("name", NAMES)
def test_recordings_terminate_exactly_where_the_registry_says_episodes_can(name):
    """EnvSpec.terminates (what TD-MPC2's `episodic` preset reads) agrees with the simulator,
    whose terminations the termination functions match (the test above)."""
    done = record(name)["done"]
    if not sim.spec(name).terminates:
        assert not done.any()
        return
    assert 3 <= int(done.sum()) < STEPS // 2
    if name == "cartpole":  # both kinds of bounds: the cart's position and the pole's angle
        next_obs = record(name)["next_obs"][done]
        assert (next_obs[:, 0].abs() > 2.4).any() and (next_obs[:, 2].abs() < 0.2).any()


@pytest.mark.parametrize("name", ["reacher-easy", "cartpole-swingup"])
def test_recordings_reach_the_rewards_interesting_values(name):
    reward = record(name)["reward"]
    assert reward.min() < reward.max()
    if name == "reacher-easy":  # both touching the target and not
        assert set(reward.unique().tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("name", ["pendulum", "hopper", "cartpole", "cartpole-swingup"])
def test_batched_population_shapes(name):
    data, fn = record(name), reward_for(name)
    k, h = 6, 50
    obs, act, next_obs = (data[x][: k * h] for x in ("obs", "act", "next_obs"))
    batched = [x.reshape(k, h, *x.shape[1:]) for x in (obs, act, next_obs)]
    reward, done = fn(*batched)
    assert reward.shape == done.shape == (k, h)
    assert torch.equal(reward.reshape(-1), fn.reward(obs, act, next_obs))
    assert torch.equal(done.reshape(-1), fn.done(obs, act, next_obs))
    r64 = fn.reward(*(x.double() if x.is_floating_point() else x for x in batched))
    assert r64.dtype == torch.float64 and torch.allclose(r64.float(), reward, atol=1e-5)


@pytest.mark.parametrize("name", ["pendulum", "hopper"])
def test_onnx_export_matches_onnxruntime(name):
    ort = pytest.importorskip("onnxruntime")
    from deploy.export import OPSET

    data, fn = record(name), reward_for(name).eval()
    example = tuple(data[x][:12].reshape(3, 4, -1) for x in ("obs", "act", "next_obs"))
    dims = {0: torch.export.Dim("K"), 1: torch.export.Dim("H")}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`isinstance.treespec, LeafSpec.`", FutureWarning)
        # obs, act and next_obs share the axes K and H; the exporter says so for each
        warnings.filterwarnings("ignore", "# The axis name: ", UserWarning)
        logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
        program = torch.onnx.export(fn, example, input_names=["obs", "act", "next_obs"],
                                    output_names=["reward", "done"], opset_version=OPSET,
                                    dynamo=True, external_data=False, verbose=False,
                                    dynamic_shapes=(dims, dims, dims))
    assert program is not None
    session = ort.InferenceSession(program.model_proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    k, h = 10, 30  # another population than the example's
    inputs = {x: data[x][: k * h].reshape(k, h, -1) for x in ("obs", "act", "next_obs")}
    reward, done = session.run(["reward", "done"], {x: v.numpy() for x, v in inputs.items()})
    want_reward, want_done = fn(*inputs.values())
    assert reward.shape == (k, h) and done.dtype == np.bool_
    np.testing.assert_allclose(reward, want_reward.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_array_equal(done, want_done.numpy())


def test_a_reward_fn_moves_with_the_module_and_is_fresh_per_call():
    a, b = reward_for("pendulum"), reward_for("pendulum")
    assert isinstance(a, RewardFn) and a is not b and a.act_mid is not b.act_mid
    a.double()
    assert a.act_half.dtype == torch.float64 and b.act_half.dtype == torch.float32


@pytest.mark.bad_input
def test_an_env_without_a_known_reward_gets_one_line_naming_those_with_one():
    with pytest.raises(ValueError) as info:
        reward_for("ant")
    message = str(info.value)
    assert "\n" not in message and "'ant'" in message
    assert all(name in message for name in NAMES)


@pytest.mark.parametrize("name", names_with_margin())
def test_the_planning_margin_is_zero_where_the_env_fails_and_one_at_its_centre(name):
    fn, data = reward_for(name), record(name)
    margin = fn.margin(data["obs"], data["act"].float(), data["next_obs"])
    assert margin.shape == data["done"].shape
    assert bool(((margin >= 0) & (margin <= 1)).all())
    done = data["done"]  # a terminating step has no margin left on the limit it crossed
    assert bool(done.any()) and bool((margin[done] <= 0.5).all())
    assert float(margin[~done].mean()) > float(margin[done].mean()) + 0.2
    # inverted-pendulum at rest in the middle of the rail, upright: as far from failing as it gets
    centre = torch.zeros(1, data["obs"].shape[-1])
    assert torch.allclose(fn.margin(centre, torch.zeros(1, 1), centre), torch.ones(1))


@pytest.mark.bad_input
def test_the_inverted_pendulums_margin_places_the_cart_where_its_velocity_takes_it():
    # obs: (cart x, hinge, cart v, hinge rate); upright at x = 0.5, the cart's term is
    # 1 - |x + 1 s * v|: moving to the near end at 0.5 /s it is 0, moving back to the centre 1
    fn = reward_for("inverted-pendulum")
    s = torch.tensor([[0.5, 0.0, 0.5, 0.0], [0.5, 0.0, -0.5, 0.0], [0.5, 0.0, 0.0, 0.0],
                      [0.0, 0.1, 0.0, 0.0]])
    margin = fn.margin(s, torch.zeros(4, 1), s)
    assert torch.allclose(margin, torch.tensor([0.5, 1.0, 0.75, 0.75]))


def test_a_margin_on_an_env_that_states_none_names_those_that_do():
    with pytest.raises(ValueError, match=r"'pendulum' states no planning margin; envs that do: "
                       r"inverted-pendulum"):
        reward_for("pendulum").margin(torch.zeros(1, 3), torch.zeros(1, 1), torch.zeros(1, 3))
