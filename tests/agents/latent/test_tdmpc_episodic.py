"""TD-MPC2's `episodic` option and its seed pretraining: the termination loss against a hand
computation, plans' returns cut by a predicted termination, the preset's choice per env, the
termination head in the exported planner, and the burst of updates when the seed steps end."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import torch
from torch import nn

import sim
from agents.latent.losses import termination_loss
from agents.latent.tdmpc import TDMPC, preset
from agents.runs.train import TrainConfig, load_agent, train
from deploy.contract import Contract
from deploy.export import export_bundle
from deploy.runtime import OnnxPolicy

TINY: dict[str, Any] = dict(latent_dim=16, mlp_dim=32, enc_dim=32, num_samples=32,
                            num_elites=4, num_pi_trajs=4, iterations=2, batch_size=16,
                            learning_starts=50, buffer_size=2_000)


def _agent(**kw: Any) -> TDMPC:
    torch.manual_seed(0)
    cfg = dataclasses.replace(preset("pendulum"), **TINY | kw)
    return TDMPC(cfg, sim.spec("pendulum").info, torch.device("cpu"))


def _last_layer(agent: TDMPC) -> nn.Linear:
    """The termination head's output layer."""
    assert agent.model.termination_net is not None
    return cast(nn.Linear, agent.model.termination_net[-1])


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_termination_loss_hand_computed() -> None:
    logits = torch.tensor([[0.0, 2.0], [-1.0, 3.0]])  # [H=2, B=2]
    done = torch.tensor([[False, False], [False, True]])
    bce = [-math.log(0.5), -math.log(1 - _sigmoid(2.0)), -math.log(1 - _sigmoid(-1.0)),
           -math.log(_sigmoid(3.0))]
    assert termination_loss(logits, done).item() == pytest.approx(sum(bce) / 4, rel=1e-6)


def test_the_episodic_model_trains_its_termination_head_on_the_stored_terminations() -> None:
    agent = _agent(episodic=True, termination_coef=2.0)
    m = agent.model
    assert m.episodic and not _agent().model.episodic
    head = list(m.termination_net.parameters())  # type: ignore[union-attr]
    assert all(any(p is q for q in m.world_parameters()) for p in head)
    g = torch.Generator().manual_seed(0)
    H, B = agent.cfg.horizon, 8
    batch = {"obs": torch.randn(H + 1, B, 3, generator=g),
             "actions": torch.rand(H, B, 1, generator=g) * 2 - 1,
             "rewards": torch.randn(H, B, generator=g),
             "terminated": torch.zeros(H, B, dtype=torch.bool)}
    batch["terminated"][-1, :3] = True  # only a sequence's last step can end its episode
    m.train()
    torch.manual_seed(1)
    terms, zs = agent.model_losses(batch)
    want = termination_loss(m.termination_logits(zs[1:]), batch["terminated"])
    assert terms["termination_loss"].item() == pytest.approx(want.item(), rel=1e-6)
    rest = (20.0 * terms["consistency_loss"] + 0.1 * terms["reward_loss"]
            + 0.1 * terms["value_loss"])
    assert terms["model_loss"].item() == pytest.approx((rest + 2.0 * want).item(), rel=1e-5)
    terms["model_loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head)


def test_plans_returns_are_cut_after_the_first_predicted_termination() -> None:
    agent = _agent(episodic=True)
    m, planner = agent.model, agent.planner
    gamma, H = agent.cfg.gamma, agent.cfg.horizon
    assert H == 3
    m.reward = lambda z, a: torch.ones(z.shape[:-1])  # type: ignore[method-assign]
    m.Q = lambda z, a, which, members=None: torch.full(z.shape[:-1], 10.0)  # type: ignore
    z = m.encode(torch.randn(2, 3))
    K = 5
    seqs = torch.zeros(K, 2, H, 1)
    zk = z.expand(K, *z.shape)
    noise, members = torch.zeros(K, 2, 1), torch.tensor([0, 1])

    def returns_with(pattern: list[float]) -> torch.Tensor:
        calls = iter(pattern)  # D(z_1), D(z_2), D(z_3) > 0.5, one per rollout step
        m.terminated = lambda z: torch.full(z.shape[:-1], next(calls))  # type: ignore
        return planner.returns(zk, seqs, noise, members)

    never = 1 + gamma + gamma**2 + 10 * gamma**3
    assert torch.allclose(returns_with([0.0, 0.0, 0.0]), torch.full((K, 2), never))
    # z_2 predicted terminal: r_0 and r_1 count, r_2 and the value do not (nor z_3's 0)
    assert torch.allclose(returns_with([0.0, 1.0, 0.0]), torch.full((K, 2), 1 + gamma))
    assert torch.allclose(returns_with([1.0, 0.0, 0.0]), torch.ones(K, 2))
    # the real head: a large negative bias predicts no termination, a positive one every step
    del m.terminated
    last = _last_layer(agent)
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.constant_(last.bias, -5.0)
    assert torch.allclose(planner.returns(zk, seqs, noise, members), torch.full((K, 2), never))
    torch.nn.init.constant_(last.bias, 5.0)
    assert torch.allclose(planner.returns(zk, seqs, noise, members), torch.ones(K, 2))


def test_the_preset_is_episodic_exactly_where_episodes_can_terminate() -> None:
    for env in ("hopper", "walker2d", "inverted-pendulum", "hopper-bullet", "bullet-cartpole",
                "mountaincar-continuous"):
        assert sim.spec(env).terminates and preset(env).episodic, env
    for env in ("cartpole-swingup", "cheetah-run", "walker-walk-pixels", "pendulum",
                "halfcheetah", "reacher", "panda-reach"):
        assert not sim.spec(env).terminates and not preset(env).episodic, env


def test_the_exported_planner_predicts_terminations_as_the_agent(tmp_path: Path) -> None:
    """An episodic planner bundle (the termination head in the graph) plans as the agent on
    the same noise, with a head that predicts a termination at every step (J = R(z_0, a_0))
    and one that never does (J as without the head): the two plan differently."""
    agent = _agent(episodic=True, num_elites=8)
    m = agent.model
    for p in (*m.reward_net[-1].parameters(), *m.Qs[-1].parameters()):
        torch.nn.init.normal_(p, std=0.5)  # distinct returns: ranking not decided by rounding
    last = _last_layer(agent)
    torch.nn.init.zeros_(last.weight)
    first_actions = {}
    for bias in (5.0, -5.0):
        torch.nn.init.constant_(last.bias, bias)
        out = tmp_path / f"bundle{bias}"
        export_bundle(agent.inference_module(), env="pendulum", out_dir=out)
        c = Contract.load(out)
        assert c.stateful and c.parity_max_abs_error <= 1e-4
        policy = OnnxPolicy(out)
        rng = np.random.Generator(np.random.PCG64(c.noise_seed))
        feed = iter([{n.name: torch.from_numpy(rng.standard_normal(n.shape, dtype=np.float32))
                      for n in c.noise} for _ in range(3)])
        agent.planner.draw_noise = lambda *a, f=feed, **k: next(f)  # type: ignore[method-assign]
        agent.reset_evaluation()
        env = sim.make("pendulum", seed=1)
        obs, _ = env.reset(seed=1)
        got = []
        for _ in range(3):
            got.append(policy(obs))
            action = agent.act(obs[None], deterministic=True)
            np.testing.assert_allclose(got[-1], 2.0 * action[0].numpy(), atol=1e-4)
            obs = env.step(action[0].numpy())[0]
        env.close()
        first_actions[bias] = np.stack(got)
    assert np.abs(first_actions[5.0] - first_actions[-5.0]).max() > 1e-3


def test_seed_pretraining_bursts_learning_starts_updates_once(tmp_path: Path) -> None:
    cfg = dataclasses.replace(preset("pendulum"), **TINY)
    runs = {}
    for burst in (True, False):
        run = train(TrainConfig(algo="tdmpc", env="pendulum", steps=60, eval_every=60,
                                eval_episodes=1, runs_dir=str(tmp_path / str(burst))),
                    dataclasses.replace(cfg, seed_pretrain=burst)).run
        runs[burst] = cast(TDMPC, load_agent(run)[0]).updates
    # TD-MPC2: at the end of the 50 seed steps 50 updates, then one per env step (10 more)
    assert runs == {True: 50 + 10, False: 1 + 10}
