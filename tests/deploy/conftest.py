"""Shared pieces for the deploy tests: small hand-built policies and bundles exported once.

Helpers are handed out as fixtures (not imported from here) so the tests work under any
pytest import mode.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from deploy.contract import Contract, sha256_bytes
from deploy.export import export_bundle

ROOT = Path(__file__).resolve().parents[2]


class PendulumPolicy(nn.Module):
    """MLP with tanh squashing scaled to pendulum's torque bounds [-2, 2]."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(3, 32), nn.Tanh(), nn.Linear(32, 1))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return 2.0 * torch.tanh(self.net(obs))


class CartpolePolicy(nn.Module):
    """Q-network argmax: the action index as a float, [batch, 1]."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.net = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).argmax(-1, keepdim=True).float()


@pytest.fixture
def pendulum_policy() -> PendulumPolicy:
    return PendulumPolicy()


@pytest.fixture
def cartpole_policy() -> CartpolePolicy:
    return CartpolePolicy()


@pytest.fixture(scope="session")
def pendulum_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "pendulum"
    export_bundle(PendulumPolicy(), env="pendulum", out_dir=out, source_run="runs/pendulum-x")
    return out


@pytest.fixture(scope="session")
def pendulum_int8_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pendulum test policy exported with --quantize int8 (do not modify; copy it)."""
    out = tmp_path_factory.mktemp("bundles") / "pendulum-int8"
    export_bundle(PendulumPolicy(), env="pendulum", out_dir=out, quantize="int8")
    return out


@pytest.fixture(scope="session")
def cartpole_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "cartpole"
    export_bundle(CartpolePolicy(), env="cartpole", out_dir=out)
    return out


@pytest.fixture(scope="session")
def trained_cartpole_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PPO cart-pole run trained for a fixed 20k steps (the learning rate anneals to zero;
    seed 0 evaluates at 500 and holds 500 under a one-step action delay, which the two-process
    ROS loop can add), and its bundle at RUN/bundle, exported as `kinema export` does. A run
    stopped at its first evaluation >= 475 is too fragile for the timing of two processes."""
    from agents.runs.evaluation import rollout_observations
    from agents.runs.train import TrainConfig, load_agent, train

    runs = tmp_path_factory.mktemp("runs")
    result = train(TrainConfig(algo="ppo", env="cartpole", steps=20_480, seed=0,
                               eval_every=20_480, runs_dir=str(runs)))
    assert result.loop.last_eval is not None and result.loop.last_eval >= 475, result.loop
    agent, run = load_agent(result.run)
    obs = rollout_observations(lambda o: agent.act(o, deterministic=True).numpy(), "cartpole",
                               steps=300)
    out = run.path / "bundle"
    export_bundle(agent.inference_module(), env="cartpole", out_dir=out, rollout_obs=obs,
                  source_run=run.path.name)
    return out


@pytest.fixture
def bundle_copy(pendulum_bundle: Path, tmp_path: Path) -> Path:
    """A private copy of the pendulum bundle that a test may damage."""
    return Path(shutil.copytree(pendulum_bundle, tmp_path / "bundle"))


GraphBundle = Callable[..., Path]


@pytest.fixture
def graph_bundle(tmp_path: Path) -> GraphBundle:
    """Factory: a bundle at tmp_path/name from `constant_graph` with a pendulum contract.

    graph_bundle(value=nan, name="b", in_name="obs", act_dim=1, **contract_overrides)
    """

    def make(
        value: float = 0.5,
        name: str = "graph",
        in_name: str = "obs",
        act_dim: int = 1,
        **overrides: object,
    ) -> Path:
        blob = constant_graph(3, act_dim, value, in_name=in_name)
        return write_bundle(tmp_path / name, blob, **overrides)

    return make


@pytest.fixture
def contract_for() -> Callable[..., Contract]:
    """Factory: pendulum_contract(blob, **overrides)."""
    return pendulum_contract


def constant_graph(
    obs_dim: int, act_dim: int, value: float, in_name: str = "obs", out_name: str = "action"
) -> bytes:
    """action = obs @ 0 + value: a graph whose output we choose (NaN included)."""
    shape = [obs_dim, act_dim]
    zeros = helper.make_tensor("w", TensorProto.FLOAT, shape, [0.0] * obs_dim * act_dim)
    bias = helper.make_tensor("b", TensorProto.FLOAT, [act_dim], [value] * act_dim)
    graph = helper.make_graph(
        [helper.make_node("MatMul", [in_name, "w"], ["z"]),
         helper.make_node("Add", ["z", "b"], [out_name])],
        "constant",
        [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, ["batch", obs_dim])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["batch", act_dim])],
        initializer=[zeros, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)
    onnx.checker.check_model(model)
    return model.SerializeToString()


@pytest.fixture
def discrete_bundle(tmp_path: Path) -> Callable[..., Path]:
    """Factory: a cart-pole-shaped bundle (4 observations, one action index) from
    `constant_graph`, whose contract has `n_actions` actions (cart-pole has 2).

    discrete_bundle(n_actions=3, value=0.0, name="discrete")
    """

    def make(n_actions: int = 2, value: float = 0.0, name: str = "discrete") -> Path:
        blob = constant_graph(4, 1, value)
        path = tmp_path / name
        path.mkdir(parents=True, exist_ok=True)
        (path / "policy.onnx").write_bytes(blob)
        pendulum_contract(
            blob, env="cartpole", obs_names=("x", "x_dot", "theta", "theta_dot"), obs_dim=4,
            action_names=("push",), discrete=True, n_actions=n_actions, action_low=(0.0,),
            action_high=(float(n_actions - 1),), rate_hz=50.0,
        ).save(path)
        return path

    return make


@pytest.fixture
def exit_code() -> Callable[[list[str]], int]:
    """Factory: the exit status `kinema ARGV` has in-process: main()'s return value, or the
    code of the SystemExit it raised (argument errors: 2; a latched fault stop: 4)."""
    from kinema.cli import main

    def run(argv: list[str]) -> int:
        try:
            return main(argv)
        except SystemExit as e:
            return int(e.code or 0)

    return run


def pendulum_contract(blob: bytes, **overrides: object) -> Contract:
    fields: dict[str, object] = dict(
        env="pendulum", obs_names=("cos", "sin", "omega"), obs_dim=3, action_names=("torque",),
        act_dim=1, discrete=False, n_actions=None, action_low=(-2.0,), action_high=(2.0,),
        rate_hz=20.0, safe_action=(0.0,), source_run=None, policy_sha256=sha256_bytes(blob),
        opset=20, parity_max_abs_error=0.0, parity_samples=1,
    )
    fields.update(overrides)
    return Contract(**fields)  # type: ignore[arg-type]


def write_bundle(path: Path, blob: bytes, **overrides: object) -> Path:
    """A bundle from a hand-built graph, with a pendulum contract."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "policy.onnx").write_bytes(blob)
    pendulum_contract(blob, **overrides).save(path)
    return path


# -- ROS 2 ------------------------------------------------------------------------------------
# rclpy is imported inside the fixtures, so the non-ROS tests run where the `ros` extra is not
# installed; CI installs it, and there the ROS tests must run.

_DOMAINS = iter(range(1000))


@pytest.fixture
def ros_domain(monkeypatch: pytest.MonkeyPatch) -> int:
    """A ROS domain id unique to this test and process, with discovery kept on loopback."""
    pytest.importorskip("rclpy", reason="the ros extra (rclpy) is not installed")
    from deploy.ros import localhost_env

    # 1..100: DDS ports of higher ids can collide with the kernel's ephemeral port range.
    domain = 1 + (os.getpid() * 7 + next(_DOMAINS)) % 100
    for key, value in localhost_env(domain, base={}).items():
        monkeypatch.setenv(key, value)
    return domain


class RosProbe:
    """An in-process node for tests: publishes observations, joint states and e-stops, and
    records every command and status it hears. Spins only when asked, for bounded times."""

    def __init__(self, ctx: Any, topics: Any) -> None:
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Bool, Empty, Float32MultiArray, Float64MultiArray, String

        self._JointState, self._Bool, self._F32, self._Empty = (JointState, Bool,
                                                                Float32MultiArray, Empty)
        import rclpy

        self.node = rclpy.create_node(f"kinema_test_probe_{os.getpid()}", context=ctx)
        reliable = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        self.commands: list[np.ndarray] = []
        self.statuses: list[dict[str, Any]] = []
        self.joint_states: list[Any] = []
        self.resets = 0
        self.node.create_subscription(
            Float64MultiArray, topics.command,
            lambda m: self.commands.append(np.array(m.data, np.float64)), reliable)
        self.node.create_subscription(
            String, topics.status, lambda m: self.statuses.append(json.loads(m.data)), reliable)
        self.node.create_subscription(JointState, topics.joint_states,
                                      self.joint_states.append, reliable)
        self._obs = self.node.create_publisher(Float32MultiArray, topics.observation, reliable)
        self._js = self.node.create_publisher(JointState, topics.joint_states, reliable)
        self._estop = self.node.create_publisher(Bool, topics.estop, reliable)
        self._reset = self.node.create_publisher(Empty, topics.reset, reliable)
        self.node.create_subscription(Empty, topics.reset, self._count_reset, reliable)
        self.executor = SingleThreadedExecutor(context=ctx)
        self.executor.add_node(self.node)

    def add(self, node: Any) -> None:
        """Spin `node` (e.g. an in-process PolicyNode) together with the probe."""
        self.executor.add_node(node)

    def publish_obs(self, obs: Sequence[float]) -> None:
        self._obs.publish(self._F32(data=[float(x) for x in obs]))

    def publish_joint_state(self, names: list[str], **fields: list[float]) -> None:
        self._js.publish(self._JointState(name=names, **fields))

    def estop(self) -> None:
        self._estop.publish(self._Bool(data=True))

    def reset(self) -> None:
        """Announce a new episode on the reset topic."""
        self._reset.publish(self._Empty())

    def _count_reset(self, msg: Any) -> None:
        self.resets += 1

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.005)

    def wait_for(self, done: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not done():
            if time.monotonic() > end:
                return False
            self.executor.spin_once(timeout_sec=0.01)
        return True

    def last_status(self) -> dict[str, Any]:
        return self.statuses[-1] if self.statuses else {}


@pytest.fixture
def ros_probe(ros_domain: int) -> Iterator[RosProbe]:
    """A RosProbe on this test's domain, with the default topics."""
    from deploy.ros import Topics, ros_context

    with ros_context(ros_domain) as ctx:
        probe = RosProbe(ctx, Topics())
        try:
            yield probe
        finally:
            probe.executor.shutdown(timeout_sec=0)
            probe.node.destroy_node()


class Proc:
    """A `python -m kinema ...` subprocess whose stderr lines are collected as they come."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "kinema", *args], cwd=ROOT, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.err_lines: list[str] = []
        self._out: list[str] = []
        # One reader per pipe (communicate() would race the stderr reader for the last lines).
        self._readers = [threading.Thread(target=self._read, args=(pipe, sink), daemon=True)
                         for pipe, sink in ((self.popen.stderr, self.err_lines),
                                            (self.popen.stdout, self._out))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(pipe: Any, sink: list[str]) -> None:
        for line in pipe:
            sink.append(line.rstrip("\n"))

    def sigint(self) -> None:
        self.popen.send_signal(signal.SIGINT)

    def finish(self, timeout: float) -> tuple[int, dict[str, Any]]:
        """Wait for exit; (return code, the JSON object on stdout's last line)."""
        self.popen.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=5)
        lines = [ln for ln in self._out if ln.strip()]
        try:
            return self.popen.returncode, json.loads(lines[-1]) if lines else {}
        except json.JSONDecodeError:
            return self.popen.returncode, {"unparsed": self._out, "stderr": self.err_lines}

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()  # only this process, by its own handle
            self.popen.wait(timeout=10)


@pytest.fixture
def kinema_proc(ros_domain: int) -> Iterator[Callable[..., Proc]]:
    """Factory: kinema_proc("ros", BUNDLE, ...) starts a CLI subprocess on this test's domain;
    any still running at the end of the test is killed."""
    procs: list[Proc] = []

    def start(*args: str) -> Proc:
        from deploy.ros import localhost_env

        env = localhost_env(ros_domain)
        env["PYTHONUNBUFFERED"] = "1"
        procs.append(Proc(list(args), env))
        return procs[-1]

    try:
        yield start
    finally:
        for p in procs:
            p.kill()
