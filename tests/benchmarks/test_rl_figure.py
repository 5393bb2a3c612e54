"""`kinema bench rl --plot`: the time-to-target figure, drawn from a fixed results dict."""

from __future__ import annotations

import struct

import pytest

pytest.importorskip("matplotlib", reason="the sweep extra (matplotlib) is not installed")

from benchmarks import rl  # noqa: E402


def seed(steps: int, train_s: float, solved: bool = True) -> dict:
    return {"solved": solved, "steps": steps, "train_s": train_s, "train_cpu_s": train_s}


STORE = {
    "sac-pendulum": {"kinema": {"0": seed(3000, 21.6), "1": seed(2000, 14.2)},
                     "sb3": {"0": seed(3000, 50.7), "1": seed(3000, 52.7, solved=False)}},
    "ppo-cartpole": {"kinema": {"0": seed(8192, 9.0)}, "sb3": {"0": seed(16384, 20.0)}},
    "dqn-cartpole": {"kinema": {"0": seed(5000, 4.0)}},  # no SB3 run: no panel
    "sac-halfcheetah-speed": {"kinema": {"0": {"steps_per_s": 70.0}}},  # a speed task: none
}


def test_the_time_to_target_figure_is_a_png_of_the_expected_size(tmp_path):
    out = rl.figure(STORE, tmp_path / "figures")
    assert out == tmp_path / "figures" / rl.FIGURE
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1000, 600)


def test_no_task_with_both_libraries_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="nothing to draw"):
        rl.figure({"dqn-cartpole": STORE["dqn-cartpole"]}, tmp_path)
    assert not (tmp_path / rl.FIGURE).exists()
