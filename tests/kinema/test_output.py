"""Training progress where stderr is not a terminal: plain lines at an interval, or nothing."""

import io
import subprocess
import sys

from agents.loops.core import Progress
from kinema.output import training_progress


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def plain_progress(total, interval):
    """A non-terminal stream, a fake clock, and the progress context and callback on them."""
    out, clock = io.StringIO(), Clock()
    ctx, update = training_progress(total, stream=out, interval=interval, clock=clock)
    return out, clock, ctx, update


def test_plain_lines_every_interval_with_steps_rate_and_returns():
    out, clock, ctx, update = plain_progress(10_000, 5.0)
    with ctx:
        clock.t += 1.0
        update(Progress(1000, 10_000, 1000.0, None, None))
        assert out.getvalue() == ""  # nothing before the first interval
        clock.t += 4.5
        update(Progress(2048, 10_000, 372.4, 475.0, 312.25))
        first = out.getvalue().splitlines()
        assert first == ["train 2048/10000 steps (20%), 372 steps/s, eval return 475.0, "
                         "episode return 312.2, 0:00:05 elapsed"]
        clock.t += 1.0
        update(Progress(3000, 10_000, 400.0, 475.0, 320.0))
        assert len(out.getvalue().splitlines()) == 1  # the next one waits another interval
        clock.t += 5.0
        update(Progress(5000, 10_000, 410.0, 480.0, 330.0))
        assert len(out.getvalue().splitlines()) == 2
        clock.t += 1.0
        update(Progress(5500, 10_000, 411.0, 480.0, 331.0))
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and lines[-1].startswith("train 5500/10000 steps (55%), 411 steps/s")
    assert lines[-1].endswith("0:00:12 elapsed")


def test_no_last_line_when_nothing_is_new_or_the_block_failed():
    out, clock, ctx, update = plain_progress(100, 1.0)
    with ctx:
        clock.t += 2.0
        update(Progress(50, 100, 10.0, None, None))
    assert out.getvalue().splitlines() == [
        "train 50/100 steps (50%), 10 steps/s, eval return -, episode return -, "
        "0:00:02 elapsed"]
    out2 = io.StringIO()
    ctx, update = training_progress(100, stream=out2, interval=1.0, clock=clock)
    try:
        with ctx:
            update(Progress(10, 100, 10.0, None, None))
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert out2.getvalue() == ""


def test_resume_without_a_step_count_takes_the_total_from_the_loop():
    out, clock, ctx, update = plain_progress(0, 0.0)
    with ctx:
        update(Progress(7, 20, 1.0, None, None))
    assert out.getvalue().startswith("train 7/20 steps (35%)")


def test_disabled_progress_writes_nothing():
    out = io.StringIO()
    ctx, update = training_progress(100, enabled=False, stream=out, interval=0.0)
    with ctx:
        update(Progress(10, 100, 10.0, 1.0, 1.0))
    assert out.getvalue() == ""


def test_kinema_train_reports_progress_on_a_pipe(tmp_path):
    args = [sys.executable, "-m", "kinema", "train", "ppo", "--env", "cartpole", "--steps",
            "512", "--eval-every", "512", "--runs-dir", str(tmp_path)]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("train ")]
    assert lines and lines[-1].startswith("train 512/512 steps (100%), ")
    assert "eval return " in lines[-1] and "eval return -" not in lines[-1]
    quiet = subprocess.run(args + ["--json"], capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0 and "train " not in quiet.stderr
