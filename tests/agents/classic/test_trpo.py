"""TRPO: conjugate gradient against a direct solve, the KL of each accepted step within max_kl
(and a step that would break it shrunk), gradient isolation, bad configs, the CLI, resume, and
learning within a step budget.

The preset solves cart-pole (475, 10 deterministic episodes, evaluated every 1,024 steps) in
6,144  6,144  9,216  1,024  7,168  18,432  18,432 env steps on seeds 0..6 (median 7,168); the
budget of 16,384 is 2.3x the median.
"""

import copy
import dataclasses
import json

import pytest
import torch

import sim
from agents.classic.trpo import (
    TRPO,
    TRPOConfig,
    conjugate_gradient,
    line_search,
    mean_kl,
    preset,
    surrogate_objective,
)
from agents.runs.train import TrainConfig, train
from data.returns import gae
from kinema.cli import main
from tests.agents.loops.crash import assert_resumes_bit_exactly


# -- conjugate gradient ---------------------------------------------------------------------------
def _spd(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    M = torch.randn(n, n, generator=g, dtype=torch.float64)
    return M @ M.T + 0.1 * torch.eye(n, dtype=torch.float64), torch.randn(n, generator=g,
                                                                          dtype=torch.float64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conjugate_gradient_matches_a_direct_solve_on_a_random_spd_matrix(seed):
    A, b = _spd(12, seed)
    x = conjugate_gradient(lambda v: A @ v, b, iters=60, tol=1e-24)
    torch.testing.assert_close(x, torch.linalg.solve(A, b), rtol=1e-7, atol=1e-9)
    # each iteration lowers the A-norm of the error (what CG minimizes over the Krylov space)
    x_star = torch.linalg.solve(A, b)
    errors = [(e @ A @ e).item() for e in
              (conjugate_gradient(lambda v: A @ v, b, iters=k) - x_star for k in range(6))]
    assert all(later < earlier for earlier, later in zip(errors, errors[1:], strict=False))


def test_conjugate_gradient_stops_at_the_tolerance_and_handles_a_zero_right_hand_side():
    A, _ = _spd(6, 3)
    eigvals, eigvecs = torch.linalg.eigh(A)
    b = eigvecs[:, 2]  # solved exactly by the first iteration: x = b / lambda
    for iters in (1, 10):
        x = conjugate_gradient(lambda v: A @ v, b, iters=iters, tol=1e-20)
        torch.testing.assert_close(x, b / eigvals[2])
    zero = conjugate_gradient(lambda v: A @ v, torch.zeros(6, dtype=torch.float64), iters=5)
    assert torch.equal(zero, torch.zeros(6, dtype=torch.float64))


# -- the trust-region step on a real rollout ------------------------------------------------------
def _agent_with_rollout(env: str, **over) -> TRPO:
    """A TRPO agent whose buffer holds a real rollout of 256 steps of one env."""
    cfg = dataclasses.replace(preset(env), num_envs=1, num_steps=256, num_minibatches=4,
                              n_critic_updates=2, **over)
    torch.manual_seed(0)
    agent = TRPO(cfg, sim.spec(env).info, torch.device("cpu"))
    e, b = sim.make(env, seed=0), agent.buffer
    obs, _ = e.reset(seed=0)
    for t in range(b.num_steps):
        o_n = agent.normalize(torch.as_tensor(obs, dtype=torch.float32)[None], update=True)
        a, logp = agent.explore(o_n)
        obs, r, term, trunc, _ = e.step(a[0].numpy())
        b.obs[t], b.actions[t], b.logp[t], b.values[t] = o_n, a, logp, agent.value(o_n)
        b.rewards[t], b.terminated[t], b.ended[t] = float(r), term, term or trunc
        b.next_values[t] = agent.value(agent.normalize(torch.as_tensor(obs)[None]))
        if term or trunc:
            obs, _ = e.reset()
    return agent


@pytest.mark.parametrize("env", ["cartpole", "pendulum"])
def test_an_accepted_step_improves_the_surrogate_within_max_kl(env):
    agent = _agent_with_rollout(env, max_kl=0.01)
    before = copy.deepcopy(agent.net)
    terms = agent.learn()
    assert terms["accepted"] == 1.0 and 1 <= terms["line_search_steps"] <= 10
    obs = agent.buffer.obs.reshape(256, -1)
    with torch.no_grad():  # the KL of the step, recomputed from the two policies
        kl = mean_kl(before.dist(obs), agent.net.dist(obs))
    assert 1e-5 < kl <= 0.01
    torch.testing.assert_close(kl, terms["kl"])
    assert terms["improvement"] > 0
    assert not torch.equal(before.critic[0].weight, agent.net.critic[0].weight)


def test_a_step_that_would_break_the_trust_region_is_shrunk_until_it_fits():
    agent = _agent_with_rollout("pendulum", max_kl=0.01)
    b = agent.buffer
    n = b.num_steps
    adv, _ = gae(b.rewards, b.values, b.next_values, b.terminated, b.ended, gamma=0.9, lam=0.95)
    obs, actions, logp_old = b.obs.reshape(n, -1), b.actions.reshape(n, -1), b.logp.reshape(n)
    adv = ((adv - adv.mean()) / adv.std()).reshape(n)
    full, surr, old, _ = agent.natural_step(obs, actions, logp_old, adv)
    theta_old = torch.cat([p.detach().reshape(-1) for p in agent.policy_params]).clone()

    @torch.no_grad()
    def evaluate(step):
        agent.set_theta(theta_old + step)
        d = agent.net.dist(obs)
        return mean_kl(old, d), surrogate_objective(d.log_prob(actions), logp_old, adv) - surr

    too_far = 4.0 * full  # 16x the KL budget in the quadratic model
    assert evaluate(too_far)[0] > 0.01
    step, tries, kl, improvement = line_search(evaluate, too_far, 0.01, 0.5, 10)
    assert step is not None and tries > 1 and kl <= 0.01 and improvement > 0
    torch.testing.assert_close(step, 0.5 ** (tries - 1) * too_far)
    # the steps tried before it broke the constraint (or did not improve)
    bad_kl, bad_improvement = evaluate(0.5 ** (tries - 2) * too_far)
    assert bad_kl > 0.01 or bad_improvement <= 0
    # never improving: every try is refused
    refused = line_search(lambda s: (torch.tensor(0.0), torch.tensor(-1.0)), full, 0.01, 0.5, 4)
    assert refused[0] is None and refused[1] == 4


def test_with_no_acceptable_step_the_policy_keeps_its_parameters():
    agent = _agent_with_rollout("pendulum")
    before = [p.detach().clone() for p in agent.policy_params]
    n = agent.buffer.num_steps
    batch = {"obs": agent.buffer.obs.reshape(n, -1), "actions": agent.buffer.actions.reshape(n, -1),
             "logp": agent.buffer.logp.reshape(n), "advantages": torch.zeros(n)}
    terms = agent.policy_step(batch)  # no advantage: no step improves the surrogate
    assert terms["accepted"] == 0.0 and terms["line_search_steps"] == 10 and terms["kl"] == 0
    assert all(torch.equal(p, q) for p, q in zip(before, agent.policy_params, strict=True))


def test_the_policy_step_moves_no_critic_weight_and_the_critic_fit_no_policy_weight():
    agent = _agent_with_rollout("pendulum")
    b, n = agent.buffer, agent.buffer.num_steps
    batch = {"obs": b.obs.reshape(n, -1), "actions": b.actions.reshape(n, -1),
             "logp": b.logp.reshape(n), "values": b.values.reshape(n),
             "advantages": torch.randn(n), "returns": torch.randn(n)}
    critic = [p.detach().clone() for p in agent.net.critic.parameters()]
    assert agent.policy_step(batch)["accepted"] == 1.0
    assert all(torch.equal(p, q) for p, q in zip(critic, agent.net.critic.parameters(),
                                                 strict=True))
    policy = [p.detach().clone() for p in agent.policy_params]
    agent.critic_step(batch)
    assert all(torch.equal(p, q) for p, q in zip(policy, agent.policy_params, strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(critic, agent.net.critic.parameters(),
                                                     strict=True))


# -- configs and the command line -----------------------------------------------------------------
@pytest.mark.bad_input
@pytest.mark.parametrize("field,value,needle", [
    ("max_kl", 0.0, "max_kl must be a finite number > 0, got 0.0"),
    ("backtrack_coef", 1.0, "backtrack_coef must be a number in (0, 1), got 1.0"),
    ("cg_iters", 0, "cg_iters must be an integer >= 1, got 0"),
    ("cg_damping", -0.1, "cg_damping must be a finite number >= 0, got -0.1"),
    ("num_minibatches", 3, "num_envs * num_steps = 2048 must be at least 2 and divisible"),
])
def test_a_bad_config_value_is_one_line_naming_it(field, value, needle):
    with pytest.raises(ValueError) as e:
        TRPOConfig(**{field: value})
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_kinema_train_trpo_takes_its_options_from_the_command_line(tmp_path, capsys):
    rc = main(["train", "trpo", "--env", "cartpole", "--steps", "512", "--num-envs", "2",
               "--num-steps", "128", "--num-minibatches", "2", "--max-kl", "0.02",
               "--eval-every", "512", "--eval-episodes", "1", "--runs-dir", str(tmp_path),
               "--no-progress"])
    assert rc == 0
    (run,) = tmp_path.iterdir()
    assert json.loads((run / "config.json").read_text())["config"]["algo_config"]["max_kl"] == 0.02
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "kl" in r]
    assert steps and all(0.0 <= r["kl"] <= 0.02 for r in steps)
    assert {"improvement", "line_search_steps", "accepted", "value_loss"} <= set(steps[-1])
    capsys.readouterr()
    assert main(["train", "trpo", "--env", "cartpole", "--max-kl", "-1", "--runs-dir",
                 str(tmp_path / "bad"), "--no-progress"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "max_kl must be a finite number > 0, got -1.0" in line
    assert not (tmp_path / "bad").exists()


def test_resume_is_bit_exact(tmp_path):
    # small rollouts, so three iterations (and a checkpoint after each) run in a second or two
    cfg = dataclasses.replace(preset("pendulum"), num_envs=2, num_steps=64, num_minibatches=2,
                              n_critic_updates=2, norm_reward=True)
    base = dict(algo="trpo", env="pendulum", steps=384, eval_every=128, eval_episodes=1,
                checkpoint_every=128, seed=3)
    straight, resumed = assert_resumes_bit_exactly(tmp_path, base, crash_at=256, algo_cfg=cfg)

    def evals(run):
        rows = map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
        return [(r["step"], r["return_mean"]) for r in rows if r["kind"] == "eval"]

    assert evals(straight.run) == evals(resumed.run) and len(evals(straight.run)) == 3


CARTPOLE_STEPS = 16_384


@pytest.mark.parametrize("seed", [0, 1])
def test_trpo_solves_cartpole_within_budget(tmp_path, seed):
    result = train(TrainConfig(algo="trpo", env="cartpole", seed=seed, steps=CARTPOLE_STEPS,
                               eval_every=1024, target_return=475, runs_dir=str(tmp_path)))
    assert result.loop.solved_at is not None, (
        f"TRPO did not reach 475 within {CARTPOLE_STEPS} steps (seed {seed}); last evaluation "
        f"{result.loop.last_eval}")
    rows = [json.loads(line) for line in (result.run / "metrics.jsonl").read_text().splitlines()]
    assert [r for r in rows if r["kind"] == "eval"][-1]["return_mean"] >= 475
    steps = [r for r in rows if r["kind"] == "train"]
    assert all(r["kl"] <= 0.01 for r in steps)  # the preset's max_kl, every logged step
