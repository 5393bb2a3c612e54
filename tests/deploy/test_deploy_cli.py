"""The deploy commands end to end in-process: `kinema export` options, `kinema run` JSON keys,
and the ROS commands' one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.contract import Contract
from kinema.cli import main

CARTPOLE_MAP = [
    {"joint": "cart", "field": "position"}, {"joint": "cart", "field": "velocity"},
    {"joint": "pole", "field": "position"}, {"joint": "pole", "field": "velocity"},
]


def _last_json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_deploy_cli_export_with_int8_and_joint_state_map(
    trained_cartpole_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = trained_cartpole_bundle.parent
    (tmp_path / "map.json").write_text(json.dumps(CARTPOLE_MAP))
    out = tmp_path / "int8"
    assert main(["export", str(run), "--out", str(out), "--quantize", "int8",
                 "--quantize-bound", "0.5", "--joint-state-map", str(tmp_path / "map.json"),
                 "--json"]) == 0
    assert _last_json(capsys)["bundle"] == str(out)
    c = Contract.load(out)
    assert c.quantization is not None and c.quantization.metric == "action_mismatch_rate"
    assert c.joint_state_map is not None and c.joint_state_map[2].joint == "pole"

    assert main(["run", str(out), "--episodes", "1", "--rate", "0", "--json"]) == 0
    report = _last_json(capsys)
    assert report["episodes"] == 1 and report["stop_reason"] == "completed"
    assert 0 < report["inference_p50_us"] <= report["inference_p99_us"]
    assert report["inference_p50_us"] < report["latency_p50_us"]


def test_deploy_cli_export_refuses_a_bad_joint_state_map(
    trained_cartpole_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "map.json").write_text(json.dumps(CARTPOLE_MAP[:3]))
    code = main(["export", str(trained_cartpole_bundle.parent), "--out", str(tmp_path / "b"),
                 "--joint-state-map", str(tmp_path / "map.json")])
    assert code == 2 and not (tmp_path / "b").exists()
    assert "has 3 entries; the observation has 4" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ros-sim", "cartpol"], "did you mean"),
        (["ros-sim", "cartpole", "--command-topic", "no slash"], "command topic 'no slash'"),
        (["ros-sim", "cartpole", "--joint-state-map", "nowhere.json"], "nowhere.json"),
    ],
)
def test_deploy_cli_ros_errors_are_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("rclpy", reason="the ros extra (rclpy) is not installed")
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"kinema {args[0]}: error:") and message in err
    assert len(err.splitlines()) == 1


def test_deploy_realtime_is_fifo_or_a_clear_refusal(pendulum_bundle: Path) -> None:
    code = ("from deploy.runtime.realtime import use_realtime, scheduling\n"
            "try:\n"
            "    use_realtime(10)\n"
            "except ValueError as e:\n"
            "    print('refused:', e)\n"
            "print(scheduling())\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    # Root or CAP_SYS_NICE (as on the development machine): FIFO; elsewhere a sentence.
    assert out[-1] == "SCHED_FIFO 10" or (
        out[0].startswith("refused: the OS refused SCHED_FIFO") and out[-1] == "SCHED_OTHER")


def test_deploy_cli_realtime_priority_is_checked(
    pendulum_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(pendulum_bundle), "--realtime", "999", "--steps", "1"]) == 2
    assert "real-time priority 999 is outside 1..99" in capsys.readouterr().err
