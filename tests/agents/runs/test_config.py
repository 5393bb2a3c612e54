"""Config checks: typed JSON round trips, finite hyperparameters, layer sizes, replay memory."""

import dataclasses
import math
import types

import pytest
import torch

import agents.runs.config as config
import sim
from agents.model_free.off_policy import check_replay_memory, replay_bytes
from agents.model_free.sac import SACConfig
from agents.runs.config import TrainConfig, config_from_dict, format_bytes
from models.ensemble import ensemble_mlp
from models.mlp import mlp, trunk


def test_config_from_dict_checks_each_value_against_its_field_type():
    saved = dataclasses.asdict(SACConfig(hidden=(32, 32)))
    back = config_from_dict(SACConfig, saved | {"lr": 1})  # a JSON integer for a float field
    assert back.hidden == (32, 32) and back.lr == 1.0 and isinstance(back.lr, float)
    for key, value, message in [
        ("lr", "fast", "lr is 'fast', expected a number"),
        ("hidden", "wide", "hidden is 'wide', expected a list of integers"),
        ("hidden", [32, "x"], "hidden is [32, 'x'], expected a list of integers"),
        ("autotune", 1, "autotune is 1, expected true or false"),
        ("target_entropy", "x", "target_entropy is 'x', expected a number or null"),
        ("buffer_size", 2.5, "buffer_size is 2.5, expected an integer"),
        ("activation", None, "activation is null, expected a string"),
        ("tau", math.nan, "tau must be a number in (0, 1], got nan"),
    ]:
        with pytest.raises(ValueError) as info:
            config_from_dict(SACConfig, saved | {key: value})
        assert str(info.value) == message
    with pytest.raises(ValueError, match="the TrainConfig field 'env' is missing"):
        config_from_dict(TrainConfig, {"algo": "ppo"})
    with pytest.raises(ValueError, match="expected an object of TrainConfig fields, got a list"):
        config_from_dict(TrainConfig, [])  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs,message", [
    (dict(seed=-1), "--seed must be an integer in [0, 4294967295], got -1"),
    (dict(seed=True), "--seed must be an integer"),
    (dict(steps=10**13), "--steps must be at most 1000000000000"),
    (dict(steps="5"), "--steps must be a positive integer, got '5'"),
    (dict(target_return=math.inf), "--target-return must be a finite number, got inf"),
    (dict(keep_checkpoints=-2), "--keep-checkpoints must be an integer >= 0, got -2"),
    (dict(checkpoint_every=1.5), "--checkpoint-every must be an integer >= 0, got 1.5"),
    (dict(threads=2000), "--threads must be at most 1024, got 2000"),
    (dict(env=""), "--env must be a non-empty string, got ''"),
])
def test_train_config_refuses_in_one_line(kwargs, message):
    with pytest.raises(ValueError) as info:
        TrainConfig(**({"algo": "ppo", "env": "cartpole"} | kwargs))
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_require_number_words_the_interval():
    cfg = types.SimpleNamespace(a=math.nan, b=-1.0, c=None, d=2)
    with pytest.raises(ValueError, match=r"^a must be a number in \(0, 1\], got nan$"):
        config.require_number(cfg, "a", low=0.0, high=1.0, low_open=True)
    with pytest.raises(ValueError, match=r"^b must be a finite number >= 0, got -1.0$"):
        config.require_number(cfg, "b", low=0.0)
    config.require_number(cfg, "c", optional=True)
    config.require_number(cfg, "d", low=0.0, high=2.0)
    with pytest.raises(ValueError, match=r"^d must be a number in \[0, 2\), got 2$"):
        config.require_number(cfg, "d", low=0.0, high=2.0, high_open=True)


@pytest.mark.parametrize("build", [
    lambda: mlp(4, (0,), 2), lambda: mlp(4, (64, -1), 2), lambda: mlp(0, (8,), 2),
    lambda: trunk(4, (True,), "relu"), lambda: ensemble_mlp(0, 4, (8,), 1),
    lambda: ensemble_mlp(2, 4, (8, 0), 1),
])
def test_networks_refuse_a_layer_size_below_1(build):
    with pytest.raises(ValueError, match=r"must be (layer sizes that are integers|an integer) >="):
        build()


INFO = sim.spec("pendulum").info  # 3 observation values, 1 action


def test_the_replay_memory_check_uses_the_free_memory_of_the_device(monkeypatch):
    cfg = SACConfig(buffer_size=1000)
    assert replay_bytes(cfg, INFO) == 1000 * (2 * 12 + 4 + 4 + 2)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (30_000, 10**9))
    check_replay_memory(SACConfig(buffer_size=882), INFO, torch.device("cuda"))  # 29,988 bytes
    with pytest.raises(ValueError) as info:
        check_replay_memory(cfg, INFO, torch.device("cuda"))
    assert str(info.value) == ("--buffer-size 1000 needs 33.2 KiB for the replay buffer on cuda, "
                               "but only 29.3 KiB is free there; at most 882 transitions fit")
    monkeypatch.setattr(config, "_meminfo_available", lambda: None)
    monkeypatch.setattr(config, "_cgroup_room", lambda: 5_000)
    monkeypatch.setattr(config.os, "sysconf", lambda name: 4096 if "PAGE" in name else 100)
    assert config.available_memory(torch.device("cpu")) == 5_000  # a container's limit counts
    with pytest.raises(ValueError, match="on cpu, but only 4.9 KiB is free"):
        check_replay_memory(cfg, INFO, torch.device("cpu"))


def test_format_bytes():
    assert [format_bytes(n) for n in (0, 1023, 1536, 3 * 2**40, 2**70)] == [
        "0 B", "1023 B", "1.5 KiB", "3.0 TiB", "1024.0 EiB"]
