"""`gail|airl --absorbing`: a termination leads to an absorbing state with a learned reward
(Kostrikov et al. 2019). Its terms by hand, the marker input of the discriminators, and the
mechanism: where the policy ends episodes and the expert never does, the discriminator learns to
price the ending, so the generator's reward of a terminal transition falls below the same
transition going on (GAIL; AIRL with PPO and SAC generators)."""

import pytest
import torch

import sim
from agents.irl import gail
from agents.irl.adversarial import absorbing_f, absorbing_logits, absorbing_return, absorbing_terms
from agents.irl.airl import AIRL, AIRLConfig, preset
from agents.irl.airl_sac import AIRLSAC
from agents.irl.gail import GAIL, GAILConfig
from agents.irl.gcl import GCLConfig
from tests.agents.irl.test_adversarial import _batch

CPU = torch.device("cpu")


def test_absorbing_terms_by_hand():
    a, gamma = torch.tensor([-2.0, 3.0]), 0.9  # g_abs, h_abs
    f_abs = -2.0 + (0.9 - 1.0) * 3.0  # g + gamma h - h of the self-transition
    assert float(absorbing_f(a, gamma)) == pytest.approx(f_abs)
    shaping, after = absorbing_terms(a, torch.tensor([False, True]), gamma)
    assert torch.allclose(shaping, torch.tensor([0.0, 0.9 * 3.0]))
    assert torch.allclose(after, torch.tensor([0.0, 0.9 * f_abs / (1 - 0.9)]))  # sum_k>=1 g^k f
    logits = absorbing_logits(a, torch.tensor([True, False, True]), gamma)
    assert logits.shape == (2,) and torch.allclose(logits, torch.full((2,), f_abs))
    r = absorbing_return(torch.tensor(2.0), torch.tensor([True, False]), 0.5)
    assert torch.allclose(r, torch.tensor([0.5 * 2.0 / 0.5, 0.0]))


def test_real_states_carry_marker_zero_and_the_absorbing_state_marker_one():
    agent = AIRL(AIRLConfig(hidden=(8,), disc_hidden=(8,), absorbing=True),
                 sim.spec("pendulum").info, CPU)
    d = agent.disc
    obs = torch.randn(4, 3)
    with torch.no_grad():
        x = torch.cat([d.obs_norm(obs), torch.zeros(4, 1)], -1)
        assert torch.allclose(d.g(obs), d.g_net(x).squeeze(-1))
        marker = torch.tensor([[0.0, 0.0, 0.0, 1.0]])
        assert torch.allclose(d.absorbing(), torch.cat([d.g_net(marker), d.h_net(marker)])
                              .reshape(2))


def _f_abs(agent) -> float:
    """The absorbing state's logit (GAIL) or f (AIRL)."""
    with torch.no_grad():
        a = agent.disc.absorbing()
        return float(a if a.ndim == 0 else absorbing_f(a, agent.cfg.gamma))


def _ending_policy_batch(agent):
    """The policy's transitions all end the episode, the expert's never do."""
    b = _batch(agent)
    b["terminated"] = torch.ones_like(b["terminated"])
    return b


@pytest.mark.parametrize("cls,cfg,env", [(AIRL, AIRLConfig, "inverted-pendulum"),
                                         (GAIL, GAILConfig, "cartpole")])
@pytest.mark.parametrize("absorbing", [True, False])
def test_the_discriminator_prices_ending_where_the_expert_never_ends(absorbing, cls, cfg, env):
    agent = cls(cfg(hidden=(8,), disc_hidden=(16,), disc_lr=3e-3, absorbing=absorbing),
                sim.spec(env).info, CPU)
    b = _ending_policy_batch(agent)
    agent.normalize(b["obs"], update=True)
    agent.set_expert_statistics(b["expert_obs"])
    going_on = b | {"terminated": torch.zeros_like(b["terminated"])}

    def gap() -> float:  # what ending adds to the generator's reward of a transition
        return float((agent.reward(b) - agent.reward(going_on)).mean())

    f0, gap0 = _f_abs(agent), gap()
    for _ in range(200):
        agent.update(b)
    f1, gap1 = _f_abs(agent), gap()
    if not absorbing:  # ending only drops AIRL's gamma h(s'); GAIL's reward does not see it
        assert abs(gap1) < 10.0, gap1
    elif cls is AIRL:  # f_abs goes negative: ending costs gamma f_abs / (1 - gamma)
        assert f1 < f0 - 1.0 and gap1 < -10.0, (f0, f1, gap1)
    else:  # D(absorbing) -> 0: what ending paid (as much as staying alive at first) -> 0
        assert f1 < f0 - 1.0 and gap0 > 10.0 and 0.0 < gap1 < 0.1 * gap0, (f0, f1, gap0, gap1)


def test_the_sac_generator_prices_ending_too():
    info = sim.spec("inverted-pendulum").info
    cfg = AIRLConfig(disc_hidden=(16,), disc_lr=3e-3, absorbing=True, generator="sac",
                     num_envs=1)
    agent = AIRLSAC(cfg, info, CPU)
    b = _ending_policy_batch(agent)
    agent.expert = {k: b["expert_" + k] for k in ("obs", "actions", "next_obs", "terminated")}
    agent.disc.obs_norm.fit(agent.expert["obs"])
    policy = {k: b[k] for k in ("obs", "actions", "next_obs", "terminated")}
    f0 = _f_abs(agent)
    for _ in range(200):
        agent.disc_step(policy)
    f1 = _f_abs(agent)
    with torch.no_grad():
        _, after = agent.absorbing(policy["terminated"])
    assert f1 < f0 - 1.0 and torch.allclose(after, torch.full_like(after, 0.99 * f1 / 0.01),
                                            rtol=1e-4)


def test_the_presets_that_have_it_and_gcl_refuses_it():
    cfg = preset("inverted-pendulum")
    assert cfg.absorbing and cfg.grad_penalty == 10.0
    assert not preset("pendulum").absorbing and not preset("cartpole").absorbing
    assert not gail.preset("cartpole").absorbing
    with pytest.raises(ValueError, match="absorbing must be False for gcl and deep-maxent-irl"):
        GCLConfig(absorbing=True)
