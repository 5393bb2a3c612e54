"""A progress hook that kills a training run mid-way (a crash at a known step)."""


class Crash(Exception):
    pass


def crash_after(step):
    """on_progress hook: raise Crash at the first progress report at or after `step`."""
    def hook(p):
        if p.step >= step:
            raise Crash

    return hook


def final_checkpoint(run):
    """{file: {name: tensor}} of model.safetensors and optim.safetensors in a run's LATEST."""
    from safetensors.torch import load_file

    latest = (run / "LATEST").read_text().strip()
    folder = run / latest if (run / latest).is_dir() else run / "checkpoints" / latest
    return {f: load_file(str(folder / f)) for f in ("model.safetensors", "optim.safetensors")}


def assert_resumes_bit_exactly(tmp_path, base, crash_at, algo_cfg=None):
    """Train `base` (TrainConfig fields) straight through, and again crashed at step `crash_at`
    then resumed: the final weights and optimizer states must be identical. Returns both
    TrainResults."""
    import pytest
    import torch

    from agents.runs.train import TrainConfig, resume, train

    straight = train(TrainConfig(**base, runs_dir=str(tmp_path / "a")), algo_cfg)
    with pytest.raises(Crash):
        train(TrainConfig(**base, runs_dir=str(tmp_path / "b")), algo_cfg,
              on_progress=crash_after(crash_at))
    (crashed,) = (tmp_path / "b").iterdir()
    resumed = resume(crashed)
    assert resumed.loop.step == straight.loop.step == base["steps"]
    a, b = final_checkpoint(straight.run), final_checkpoint(resumed.run)
    for f in a:
        assert a[f].keys() == b[f].keys() and all(torch.equal(a[f][k], b[f][k]) for k in a[f])
    return straight, resumed
