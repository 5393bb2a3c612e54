"""joint_state_map: strict validation, backwards-compatible contracts, assembly and inverse."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from deploy.contract import BundleError, Contract
from deploy.joint_state_map import (
    JointField,
    JointStateAssembler,
    JointStateMapError,
    joint_state_from_obs,
    parse_joint_state_map,
)

PENDULUM = [
    {"joint": "pole", "field": "position", "transform": "cos"},
    {"joint": "pole", "field": "position", "transform": "sin"},
    {"joint": "pole", "field": "velocity"},
]
CARTPOLE = [
    {"joint": "cart", "field": "position"}, {"joint": "cart", "field": "velocity"},
    {"joint": "pole", "field": "position"}, {"joint": "pole", "field": "velocity"},
]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"joint": "pole"}, "must be a list of 3 entries"),
        (PENDULUM[:2], "has 2 entries; the observation has 3"),
        ([*PENDULUM[:2], {"joint": "pole", "feild": "velocity"}], r"unknown key\(s\) \['feild'\]"),
        ([*PENDULUM[:2], {"joint": "pole"}], "entry 2 is missing field"),
        ([*PENDULUM[:2], {"joint": "pole", "field": "torque"}], "field 'torque' is not one of"),
        ([*PENDULUM[:2], {"joint": "", "field": "velocity"}], "non-empty joint name"),
        ([*PENDULUM[:2], {"joint": "pole", "field": "velocity", "transform": "tan"}],
         "transform 'tan' is not one of"),
        ([*PENDULUM[:2], PENDULUM[0]], "entry 2 repeats pole.position"),
        ([*PENDULUM[:2], "pole.velocity"], "entry 2 is 'pole.velocity'"),
    ],
)
def test_deploy_joint_state_map_is_strict(data: object, message: str) -> None:
    with pytest.raises(JointStateMapError, match=message):
        parse_joint_state_map(data, 3)


def test_deploy_contract_without_the_map_still_loads(bundle_copy: Path) -> None:
    path = bundle_copy / "contract.json"
    data = json.loads(path.read_text())
    for key in ("joint_state_map", "quantization"):  # as written before these fields existed
        data.pop(key, None)
    path.write_text(json.dumps(data))
    c = Contract.load(bundle_copy)
    assert c.joint_state_map is None and c.quantization is None


def test_deploy_contract_map_round_trips_and_is_checked(bundle_copy: Path) -> None:
    path = bundle_copy / "contract.json"
    data = json.loads(path.read_text())
    data["joint_state_map"] = PENDULUM
    path.write_text(json.dumps(data))
    c = Contract.load(bundle_copy)
    assert c.joint_state_map == (JointField("pole", "position", "cos"),
                                 JointField("pole", "position", "sin"),
                                 JointField("pole", "velocity", "identity"))
    c.save(bundle_copy)
    assert Contract.load(bundle_copy) == c
    data["joint_state_map"] = CARTPOLE  # 4 entries for a 3-value observation
    path.write_text(json.dumps(data))
    with pytest.raises(BundleError, match="'joint_state_map' has 4 entries; the observation has 3"):
        Contract.load(bundle_copy)


def test_deploy_contract_constructor_validates_the_map(
    contract_for: Callable[..., Contract],
) -> None:
    with pytest.raises(BundleError, match="joint_state_map has 4 entries"):
        contract_for(b"g", joint_state_map=CARTPOLE)


def test_deploy_assembler_merges_partial_messages_and_reports_the_oldest() -> None:
    fields = parse_joint_state_map(CARTPOLE, 4)
    a = JointStateAssembler(fields)
    a.update(["cart", "wheel"], {"position": [1.5, 9.0], "velocity": [0.5, 9.0]}, stamp=10.0)
    assert not a.complete and a.missing() == ["pole.position", "pole.velocity"]
    a.update(["pole"], {"position": [0.2], "velocity": []}, stamp=11.0)  # velocity left empty
    assert a.missing() == ["pole.velocity"]
    a.update(["pole"], {"position": [0.3], "velocity": [-2.0]}, stamp=12.0)
    obs, stamp = a.observation()
    assert a.complete and obs.dtype == np.float32
    np.testing.assert_allclose(obs, [1.5, 0.5, 0.3, -2.0], rtol=1e-6)
    assert stamp == 10.0  # the cart data is the oldest: a dead cart driver goes stale


def test_deploy_assembler_applies_transforms() -> None:
    a = JointStateAssembler(parse_joint_state_map(PENDULUM, 3))
    a.update(["pole"], {"position": [2.0], "velocity": [3.0]}, stamp=1.0)
    np.testing.assert_allclose(a.observation()[0], [math.cos(2.0), math.sin(2.0), 3.0], rtol=1e-6)


@pytest.mark.parametrize(("data", "obs"), [(PENDULUM, [math.cos(2.5), math.sin(2.5), -1.0]),
                                           (CARTPOLE, [0.1, -0.2, 0.03, 0.4])])
def test_deploy_inverse_map_round_trips(data: list, obs: list[float]) -> None:
    fields = parse_joint_state_map(data, len(obs))
    names, arrays = joint_state_from_obs(fields, np.array(obs))
    assert arrays["effort"] == []  # unmapped fields stay empty, as JointState allows
    a = JointStateAssembler(fields)
    a.update(names, arrays, stamp=0.0)
    np.testing.assert_allclose(a.observation()[0], obs, rtol=1e-6, atol=1e-7)


def test_deploy_inverse_map_refuses_what_it_cannot_recover() -> None:
    fields = parse_joint_state_map([{"joint": "pole", "field": "position", "transform": "cos"}], 1)
    with pytest.raises(JointStateMapError, match="pole.position is observed only as cos"):
        joint_state_from_obs(fields, np.array([0.5]))
