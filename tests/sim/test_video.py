"""The mp4 recorder works on every backend."""

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
