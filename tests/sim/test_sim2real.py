"""Each sim-to-real wrapper does what it says, on every backend."""

import json

import numpy as np
import pytest

import sim
from sim.physics import physics_of
from sim.sim2real import DEFAULT_RANGES

ONE_PER_BACKEND = ["cartpole", "halfcheetah", "cheetah-run", "panda-push", "hopper-bullet"]
CONTINUOUS_PER_BACKEND = ["pendulum", "hopper", "walker-walk", "bullet-cartpole", "ant-bullet"]


def _record_below(env, wrapper_name):
    """Actions reaching the layer below the wrapper named `wrapper_name`."""
    layer = env
    while type(layer).__name__ != wrapper_name:
        layer = layer.env
    inner = layer.env
    seen, orig = [], inner.step
    inner.step = lambda a: (seen.append(np.array(a, copy=True)), orig(a))[1]
    return seen


@pytest.mark.parametrize("name", CONTINUOUS_PER_BACKEND)
def test_action_delay_shifts_actions_by_exactly_k_steps(name):
    k = 3
    env = sim.make(name, seed=0, action_delay=k)
    seen = _record_below(env, "ActionDelay")
    env.reset(seed=0)
    sent = [np.full(env.action_space.shape, 0.1 * (i + 1), np.float32) for i in range(8)]
    for a in sent:
        env.step(a)
    assert all(np.array_equal(s, np.zeros_like(s)) for s in seen[:k])  # the neutral action
    for t in range(k, 8):
        assert np.array_equal(seen[t], sent[t - k])


def test_action_delay_checks_actions_when_they_are_given():
    env = sim.make("pendulum", seed=0, action_delay=2)
    with pytest.raises(ValueError, match="not finite"):
        env.step(np.array([np.nan], np.float32))


@pytest.mark.parametrize("name", ONE_PER_BACKEND)
def test_randomization_changes_parameters_within_range_and_restores_them(name):
    plain = sim.make(name, seed=0)
    nominal = {p: physics_of(plain.unwrapped).values(p)
               for p in physics_of(plain.unwrapped).parameters}
    env = sim.make(name, seed=0, domain_randomization=True)
    physics = physics_of(env.unwrapped)
    dr = env.get_wrapper_attr("restore").__self__
    ranges = sim.spec(name).randomization or DEFAULT_RANGES
    firsts = {}
    for episode in range(2):
        env.reset(seed=episode)
        changed = 0
        for p, base in nominal.items():
            lo, hi = ranges[p]
            now = physics.values(p)
            nz = base != 0
            assert np.all(now[~nz] == 0)  # a multiplicative draw keeps a zero at zero
            ratio = now[nz] / base[nz]
            assert np.all(ratio >= lo - 1e-9) and np.all(ratio <= hi + 1e-9), p
            changed += bool(np.any(np.abs(ratio - 1) > 1e-6))
            if episode == 0:
                firsts[p] = now
            elif nz.any():  # a new draw each episode, from the nominal values (no compounding)
                assert not np.array_equal(now, firsts[p])
        assert changed == sum(bool(np.any(b != 0)) for b in nominal.values()) >= 2
        env.step(env.action_space.sample())
    dr.restore()
    for p, base in nominal.items():
        assert np.array_equal(physics.values(p), base), f"{p} not restored"


def test_randomization_is_seeded_and_ranges_can_be_given():
    def scales(seed):
        env = sim.make("cheetah-run", seed=seed, domain_randomization={"mass": (0.5, 0.6)})
        return env.get_wrapper_attr("scales")

    a, b, c = scales(1), scales(1), scales(2)
    assert set(a) == {"mass"} and np.array_equal(a["mass"], b["mass"])
    assert not np.array_equal(a["mass"], c["mass"])
    assert np.all((a["mass"] >= 0.5) & (a["mass"] <= 0.6))


def test_randomization_refuses_what_a_backend_cannot_change():
    with pytest.raises(ValueError, match="cannot randomize.*friction"):
        sim.make("cartpole", domain_randomization={"friction": (0.9, 1.1)})
    with pytest.raises(ValueError, match="unknown randomization parameters"):
        sim.make("halfcheetah", domain_randomization={"wings": (0.9, 1.1)})
    with pytest.raises(ValueError, match="0 < low <= high"):
        sim.make("halfcheetah", domain_randomization={"mass": (1.2, 0.8)})


def test_observation_noise_has_the_declared_scale():
    std = 0.05
    clean = sim.make("cheetah-run", seed=3)
    noisy = sim.make("cheetah-run", seed=3, obs_noise=std)
    o1, _ = clean.reset(seed=3)
    o2, _ = noisy.reset(seed=3)
    diffs = [o2 - o1]
    rng = np.random.default_rng(0)
    for _ in range(300):
        a = rng.uniform(-1, 1, 6).astype(np.float32)
        diffs.append(noisy.step(a)[0] - clean.step(a)[0])  # noise never reaches the physics
    d = np.concatenate(diffs)
    assert abs(d.mean()) < 0.01 and d.std() == pytest.approx(std, rel=0.05)


def test_action_repeat_applies_the_action_n_times_and_sums_rewards():
    repeated = sim.make("walker-walk", seed=2, action_repeat=3)
    single = sim.make("walker-walk", seed=2)
    repeated.reset(seed=2)
    single.reset(seed=2)
    a = np.full(6, 0.3, np.float32)
    obs, reward, *_ = repeated.step(a)
    rewards = [single.step(a)[1] for _ in range(3)]
    assert np.array_equal(obs, single.unwrapped.observe())
    assert reward == pytest.approx(sum(rewards), abs=1e-12)


@pytest.mark.parametrize("name", ["cartpole", "hopper", "walker-walk", "a1-walk", "ant-bullet"])
def test_initial_state_perturbation_moves_the_start_by_the_declared_scale(name):
    std = 0.02
    plain = sim.make(name, seed=5)
    perturbed = sim.make(name, seed=5, init_perturbation=std)
    plain.reset(seed=5)
    obs, _ = perturbed.reset(seed=5)
    q0, v0 = physics_of(plain.unwrapped).joint_state()
    q1, v1 = physics_of(perturbed.unwrapped).joint_state()
    d = np.concatenate([q1 - q0, v1 - v0])
    assert np.all(d != 0) and np.all(np.abs(d) < 6 * std)
    # The observation describes the perturbed state, not the one before it.
    assert np.allclose(obs, physics_of(perturbed.unwrapped).observe(), atol=1e-6)


def test_every_wrapper_composes_and_resumes_exactly():
    options = dict(domain_randomization=True, obs_noise=0.01, action_delay=2, action_repeat=2,
                   init_perturbation=0.01)
    for name in ("halfcheetah", "panda-push"):
        env = sim.make(name, seed=1, **options)
        for _ in range(3):
            env.step(env.action_space.sample())
        state = json.loads(json.dumps(sim.get_state(env)))
        actions = [env.action_space.sample() for _ in range(10)]
        expected = [env.step(a)[:2] for a in actions]
        other = sim.make(name, seed=9, **options)
        sim.set_state(other, state)
        for a, (o1, r1) in zip(actions, expected, strict=True):
            o2, r2 = other.step(a)[:2]
            assert np.array_equal(o1, o2) and r1 == r2


def test_ranges_come_from_the_env_spec():
    spec = sim.spec("a1-walk")
    assert spec.randomization is not None
    env = sim.make("a1-walk", seed=0, domain_randomization=True)
    lo, hi = spec.randomization["friction"]
    scales = env.get_wrapper_attr("scales")
    assert set(scales) == set(spec.randomization)
    assert np.all((scales["friction"] >= lo) & (scales["friction"] <= hi))
    assert scales["friction"].min() < DEFAULT_RANGES["friction"][0]  # wider than the default
