"""data.files: atomic writes keep the old bytes on any failure, hashes agree with hashlib, a
published folder replaces the old one only when complete, and nothing here loads torch."""

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from data import files
from data.files import (
    TMP_MARK,
    fsync_path,
    fsync_write,
    publish_dir,
    sha256_bytes,
    sha256_file,
    write_atomic,
)

ROOT = Path(__file__).resolve().parents[2]


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))\n"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(done.stdout.split())


@pytest.mark.parametrize("code", ["import data.files", "import data",
                                  "from data.files import write_atomic, sha256_file",
                                  "from data import manifest"])
def test_import_loads_no_torch(code: str) -> None:
    loaded = _modules_after(code)
    assert not {m for m in loaded if m.split(".")[0] in ("torch", "h5py", "sim")}


def test_lazy_names_still_import() -> None:
    import data
    from data import Dataset, DatasetError, Episode, ReplayBuffer, gae
    from data.dataset import Dataset as D
    from data.replay import ReplayBuffer as R

    assert Dataset is D and ReplayBuffer is R and callable(gae)
    assert issubclass(DatasetError, ValueError) and Episode.__module__ == "data.episode"
    assert set(data.__all__) <= set(dir(data))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        data.nope  # noqa: B018


def test_write_atomic_writes_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    write_atomic(path, b"old")
    write_atomic(path, b"new")
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


def test_write_atomic_mode(tmp_path: Path) -> None:
    path = tmp_path / "f"
    write_atomic(path, b"x", mode=0o640)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    umask = os.umask(0o022)
    os.umask(umask)
    write_atomic(tmp_path / "g", b"x")  # as open() would create it
    assert stat.S_IMODE((tmp_path / "g").stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("fail", ["replace", "fsync", "write"])
def test_failed_write_keeps_old_content_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: str
) -> None:
    path = tmp_path / "LATEST"
    write_atomic(path, b"checkpoints/1\n")

    def boom(*a: object, **k: object) -> None:
        raise OSError("disk gone")

    def half(fd: int) -> None:  # a kill midway: the temp file holds part of the bytes
        os.write(fd, b"checkpoints/")
        raise KeyboardInterrupt

    if fail == "write":
        monkeypatch.setattr(os, "fsync", half)
        with pytest.raises(KeyboardInterrupt):
            write_atomic(path, b"checkpoints/2\n")
    else:
        monkeypatch.setattr(os, fail, boom)
        with pytest.raises(OSError, match="disk gone"):
            write_atomic(path, b"checkpoints/2\n")
    monkeypatch.undo()
    assert path.read_bytes() == b"checkpoints/1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["LATEST"]


def test_temp_names_carry_the_mark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    real = os.replace

    def spy(src: object, dst: object) -> None:
        seen.append(Path(str(src)).name)
        real(src, dst)
    monkeypatch.setattr(os, "replace", spy)
    write_atomic(tmp_path / "m.json", b"{}")
    write_atomic(tmp_path / "m.json", b"{}")
    assert len(set(seen)) == 2 and all(n.startswith(f".m.json{TMP_MARK}") for n in seen)


def test_fsync_helpers(tmp_path: Path) -> None:
    fsync_write(tmp_path / "a", b"abc")
    assert (tmp_path / "a").read_bytes() == b"abc"
    fsync_path(tmp_path / "a")
    fsync_path(tmp_path)  # a folder


@pytest.mark.parametrize("size", [0, 1, (1 << 20) - 1, (1 << 20) + 7, 3 << 20])
def test_sha256_helpers_agree_with_hashlib(tmp_path: Path, size: int) -> None:
    blob = os.urandom(size)
    (tmp_path / "b").write_bytes(blob)
    want = hashlib.sha256(blob).hexdigest()
    assert sha256_bytes(blob) == want == sha256_file(tmp_path / "b")


def _folder(path: Path, text: str) -> Path:
    path.mkdir()
    fsync_write(path / "x.txt", text.encode())
    return path


def test_publish_dir_new_and_replace(tmp_path: Path) -> None:
    final, aside = tmp_path / "out", tmp_path / ".out.old"
    publish_dir(_folder(tmp_path / ".t1", "one"), final, aside)
    assert (final / "x.txt").read_text() == "one"
    publish_dir(_folder(tmp_path / ".t2", "two"), final, aside)
    assert (final / "x.txt").read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_publish_dir_failed_rename_restores_the_old_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    final, aside = tmp_path / "out", tmp_path / ".out.old"
    publish_dir(_folder(tmp_path / ".t1", "one"), final, aside)
    tmp = _folder(tmp_path / ".t2", "two")
    real = os.replace

    def flaky(src: object, dst: object) -> None:
        if Path(str(src)) == tmp:
            raise OSError("killed")
        real(src, dst)
    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(OSError, match="killed"):
        publish_dir(tmp, final, aside)
    monkeypatch.undo()
    assert (final / "x.txt").read_text() == "one" and not aside.exists()
    assert tmp.is_dir()  # the caller removes it


def test_kinema_version_is_a_string() -> None:
    assert isinstance(files.kinema_version(), str) and files.kinema_version()

