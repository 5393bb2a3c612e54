"""Every locomotion and manipulation env has a tuned preset for PPO, SAC, TD3 and DDPG (so a new
robot cannot land without one), each builds a valid config, and `kinema envs` shows them."""

import dataclasses
import json
import subprocess
import sys

import pytest

import sim
from agents.model_free import robot_presets
from agents.model_free.ppo import PPOConfig
from agents.model_free.sac import SACConfig
from agents.model_free.td3 import TD3Config
from agents.registry import algorithm

ALGOS = ("ppo", "sac", "td3", "ddpg")
ROBOTS = sorted(name for name in sim.names() if "state" in sim.spec(name).tags
                and {"locomotion", "manipulation"} & set(sim.spec(name).tags))


def test_the_robots_are_the_registry_s_locomotion_and_manipulation_envs():
    assert {"halfcheetah", "hopper", "walker2d", "ant", "humanoid", "reacher", "pusher",
            "cheetah-run", "walker-walk", "a1-walk", "panda-reach", "panda-push",
            "halfcheetah-bullet"} <= set(ROBOTS)


@pytest.mark.parametrize("algo", ALGOS)
def test_every_robot_has_a_tuned_preset(algo):
    untuned = [env for env in ROBOTS if algorithm(algo).preset_source(env) is None]
    assert not untuned, f"{algo} has no tuned preset for {untuned} (agents/model_free/" \
                        f"robot_presets.py)"


@pytest.mark.parametrize("algo", ALGOS)
def test_every_robot_preset_is_a_valid_config_with_a_budget(algo):
    a = algorithm(algo)
    for env in ROBOTS:
        cfg = a.preset(env)
        assert isinstance(cfg, a.config_cls)
        assert a.default_steps(env) >= 100_000


@pytest.mark.parametrize("table, cls", [(robot_presets.PPO, PPOConfig),
                                        (robot_presets.SAC, SACConfig),
                                        (robot_presets.TD3, TD3Config)])
def test_preset_fields_are_set_as_written(table, cls):
    names = {f.name for f in dataclasses.fields(cls)}
    for env, preset in table.items():
        assert set(preset.fields) <= names, env
        cfg = cls(**preset.fields)
        assert all(getattr(cfg, k) == v for k, v in preset.fields.items()), env
        assert preset.source


def test_ppo_halfcheetah_is_rl_zoo_s_entry_in_kinema_s_names():
    # RL-Zoo ppo.yml Hopper-v4: n_envs 1, n_steps 512, batch_size 32 -> 16 minibatches; the
    # same 512-step rollout over 8 envs
    cfg = algorithm("ppo").preset("hopper")
    assert (cfg.num_envs, cfg.num_steps, cfg.num_minibatches, cfg.update_epochs) == (8, 64, 16, 5)
    assert cfg.vf_coef == 2 * 0.835671  # SB3's value loss is twice Kinema's
    assert (cfg.hidden, cfg.activation, cfg.init_log_std, cfg.ortho_init) == \
        ((256, 256), "relu", -2.0, False)
    assert cfg.norm_obs and cfg.norm_reward and not cfg.anneal_lr and not cfg.clip_vloss
    # and the fallback for an env without a preset is still the generic one
    assert algorithm("ppo").preset_source("cartpole-swingup") is None


def test_ppo_without_orthogonal_init_keeps_torch_s_default_init():
    from models.actors import ActorCritic

    ortho = ActorCritic(5, 2, discrete=False, hidden=(256, 256))
    plain = ActorCritic(5, 2, discrete=False, hidden=(256, 256), orthogonal=False)
    # the orthogonal policy head starts at gain 0.01, PyTorch's at U(-1/sqrt(256), 1/sqrt(256))
    assert ortho.actor[-1].weight.abs().max() < 0.02
    assert plain.actor[-1].weight.abs().max() > 0.03
    assert plain.actor[0].bias.abs().sum() > 0  # orthogonal init zeroes the biases


def test_kinema_envs_lists_the_tuned_presets():
    r = subprocess.run([sys.executable, "-m", "kinema", "envs", "--json"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout.strip().splitlines()[-1])}
    assert set(rows["hopper"]["presets"]) >= set(ALGOS)
    assert rows["hopper"]["presets"]["ppo"].startswith("RL-Zoo ppo.yml Hopper-v4 (tuned)")
    assert "ppo" in rows["cartpole"]["presets"] and "sac" not in rows["cartpole"]["presets"]
    assert rows["cartpole-swingup"]["presets"].get("ppo") is None
