"""Every registered algorithm satisfies the protocol its loop is annotated with, and runs the
whole contract once: act -> update -> save -> load -> export."""

import dataclasses
import inspect

import numpy as np
import pytest
import torch

import agents.protocol as protocol
import sim
from agents.registry import algorithm, names
from agents.runs.checkpoint import load_checkpoint, save_checkpoint
from deploy.export import export_bundle

ENV = {"discrete": "cartpole", "continuous": "pendulum"}
SMALL = {"hidden": (16,), "num_envs": 2, "num_steps": 8, "num_minibatches": 2,
         "buffer_size": 64, "batch_size": 8,
         # planners: a short unrolled graph keeps the export quick
         "horizon": 3, "iterations": 1, "samples": 8, "elites": 2, "replan_every": 1,
         # tdmpc: the prior's bundle; an agent after one update predicts near-equal returns,
         # whose ranking rounding decides (its planner's export: tests/agents/latent)
         "export_planner": False}


def loop_protocol(algo) -> type:
    """The protocol named by the annotation of the loop's `agent` parameter."""
    annotation = inspect.signature(algo.loop).parameters["agent"].annotation
    name = annotation if isinstance(annotation, str) else annotation.__name__
    return getattr(protocol, name)


def small_agent(name: str):
    algo = algorithm(name)
    env = ENV[algo.actions[0]]
    if loop_protocol(algo) is protocol.TabularAgent:  # a table over a tabular MDP's states
        env = "gridworld-slippery"
    cfg = algo.preset(env)
    fields = {f.name for f in dataclasses.fields(cfg)}
    cfg = dataclasses.replace(cfg, **{k: v for k, v in SMALL.items() if k in fields})
    torch.manual_seed(0)
    return algo, env, algo.make_agent(cfg, sim.spec(env).info, torch.device("cpu"))


def one_batch(agent, obs: torch.Tensor) -> dict[str, torch.Tensor]:
    """A batch the agent's family learns from, built as its loop would build it."""
    info, B = agent.info, len(obs)
    actions = agent.act(obs)
    if isinstance(agent, protocol.TabularAgent):  # TD transitions (DP sweeps its model),
        return {"obs": obs, "actions": actions, "rewards": torch.ones(B), "next_obs": obs,
                "terminated": torch.zeros(B, dtype=torch.bool), "next_actions": actions,
                "visits": obs.sum(0)}  # and the demonstrations' state visits (inverse RL)
    if isinstance(agent, protocol.OffPolicyAgent):
        n = agent.replay.num_envs
        for _ in range(agent.replay.n_step + 2):
            o = obs[:n]
            agent.replay.add(o, agent.act(o), np.ones(n), o.numpy(), np.zeros(n, bool),
                             np.zeros(n, bool))
        return agent.replay.sample(B)
    if isinstance(agent, protocol.AdversarialAgent):  # one discriminator step (GAIL, AIRL)
        agent.normalize(obs, update=True)
        agent.set_expert_statistics(obs)
        half = {"obs": obs, "actions": actions, "next_obs": obs,
                "terminated": torch.zeros(B, dtype=torch.bool)}
        return half | {"logp": torch.zeros(B)} | {f"expert_{k}": v for k, v in half.items()}
    if isinstance(agent, protocol.OnPolicyAgent):
        agent.normalize(obs, update=True)  # as the loop does with every observation
        return {"obs": obs, "actions": actions, "logp": torch.zeros(B), "values": torch.zeros(B),
                "advantages": torch.randn(B), "returns": torch.randn(B)}
    assert isinstance(agent, protocol.ImitationAgent)
    agent.set_statistics(obs)
    return {"obs": obs, "actions": actions if info.discrete else actions.reshape(B, -1)}


@pytest.mark.parametrize("name", names())
def test_the_algorithm_satisfies_the_protocol_of_its_loop(name):
    algo, _, agent = small_agent(name)
    proto = loop_protocol(algo)
    assert proto is not protocol.Agent and protocol.Agent in proto.__mro__
    assert isinstance(agent, proto), f"{name} lacks members of {proto.__name__}"
    assert isinstance(agent, protocol.Agent)


@pytest.mark.parametrize("name", names())
def test_act_update_save_load_export(name, tmp_path):
    algo, env, agent = small_agent(name)
    obs = torch.as_tensor(np.stack([sim.make(env).reset(seed=i)[0]
                                    for i in range(8)]), dtype=torch.float32)
    terms = agent.update(one_batch(agent, obs))
    assert terms and all(torch.isfinite(torch.as_tensor(v)).all() for v in terms.values())

    state = agent.state_dict()
    save_checkpoint(tmp_path, 1, {"agent": {k: v for k, v in state.items() if k != "optim"},
                                  "optim": state["optim"]})
    _, tree = load_checkpoint(tmp_path)
    _, _, fresh = small_agent(name)
    fresh.load_state_dict(tree["agent"] | {"optim": tree["optim"]})
    assert torch.equal(agent.act(obs, deterministic=True), fresh.act(obs, deterministic=True))

    contract = export_bundle(fresh.inference_module(), env=env, out_dir=tmp_path / "bundle",
                             source_run=f"{env}-{name}", rollout_obs=obs.numpy())
    assert contract.parity_max_abs_error < 1e-4
