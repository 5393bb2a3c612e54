"""The mp4 recorder works on every backend, headless, without third-party notices that read
like our errors."""

import os
import stat
import subprocess
import sys

import imageio_ffmpeg
import numpy as np
import pytest

from sim.video import record_video


@pytest.mark.parametrize("name", ["cartpole", "reacher", "reacher-easy", "bullet-cartpole",
                                  "hopper-bullet"])
def test_record_video_writes_a_playable_mp4(tmp_path, name):
    out = tmp_path / f"{name}.mp4"
    result = record_video(name, out, max_steps=4, size=64)
    assert out.stat().st_size > 0 and result["frames"] == 5
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    w, h = meta["size"]
    frames = [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader]
    assert len(frames) == 5 and frames[0].std() > 0


def test_record_video_uses_the_policy_and_refuses_other_formats(tmp_path):
    calls = []

    def policy(obs):
        calls.append(obs)
        return np.zeros(1, np.float32)

    record_video("pendulum", tmp_path / "p.mp4", policy, max_steps=3)
    assert len(calls) == 3
    with pytest.raises(ValueError, match=r"\.mp4"):
        record_video("pendulum", tmp_path / "p.gif")


def test_headless_runtime_dir_only_when_unset_or_invalid(tmp_path):
    from sim.video import headless_runtime_dir

    for env in ({}, {"XDG_RUNTIME_DIR": "relative"}, {"XDG_RUNTIME_DIR": str(tmp_path / "no")}):
        private = headless_runtime_dir(env)
        assert private is not None and env["XDG_RUNTIME_DIR"] == private
        assert os.path.isdir(private) and stat.S_IMODE(os.stat(private).st_mode) == 0o700
    valid = {"XDG_RUNTIME_DIR": str(tmp_path)}
    assert headless_runtime_dir(valid) is None and valid == {"XDG_RUNTIME_DIR": str(tmp_path)}


def test_recording_classic_control_headless_prints_no_runtime_dir_error(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("XDG_RUNTIME_DIR", "DISPLAY", "WAYLAND_DISPLAY")}
    code = ("from sim.video import record_video; "
            f"record_video('cartpole', {str(tmp_path / 'c.mp4')!r}, max_steps=2)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "XDG_RUNTIME_DIR" not in r.stderr and (tmp_path / "c.mp4").stat().st_size > 0


def test_halfcheetah_builds_without_the_settotalmass_notice_and_passes_other_warnings_on():
    import mujoco

    import sim
    from sim.gymnasium_envs import _quiet_mujoco_compiler

    sim.make("hopper").close()  # mujoco imported and its handlers installed
    got: list[str] = []
    before = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(got.append)
    try:
        sim.make("halfcheetah").close()
        assert not [m for m in got if "settotalmass" in m]
        model = mujoco.MjModel.from_xml_string(
            "<mujoco><worldbody><body><freejoint/><geom size='.1'/></body></worldbody></mujoco>")

        def bad_qpos() -> None:  # MuJoCo warns once per MjData: a fresh one each time
            data = mujoco.MjData(model)
            data.qpos[0] = float("nan")
            mujoco.mj_checkPos(model, data)

        with _quiet_mujoco_compiler():
            bad_qpos()  # a warning nobody filters reaches the handler
        assert sum("QPOS" in m for m in got) == 1
        bad_qpos()  # and the handler from before is back in place
        assert sum("QPOS" in m for m in got) == 2
    finally:
        mujoco.set_mju_user_warning(before)
