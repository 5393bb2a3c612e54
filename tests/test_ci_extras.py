"""KINEMA_REQUIRE_EXTRAS (set by .ci/run): a test skipped for a missing extra fails in CI, and
stays a skip with its reason for a user without the extra."""

import os
import subprocess
import sys
from pathlib import Path

CONFTEST = Path(__file__).with_name("conftest.py")
CI = Path(__file__).parents[1] / ".ci" / "run"

IN_TEST = '''
import pytest

def test_needs_a_missing_extra():
    pytest.importorskip("kinema_no_such_extra", reason="the fake extra is not installed")

def test_an_installed_module_is_returned():
    assert pytest.importorskip("json").dumps(1) == "1"
'''
AT_MODULE_LEVEL = '''
import pytest

pytest.importorskip("kinema_no_such_extra", reason="the fake extra is not installed")

def test_never_runs():
    pass
'''


def pytest_in(folder: Path, files: dict[str, str], require: str | None):
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "conftest.py").write_text(CONFTEST.read_text())
    for name, text in files.items():
        (folder / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "KINEMA_REQUIRE_EXTRAS"}
    if require is not None:
        env["KINEMA_REQUIRE_EXTRAS"] = require
    return subprocess.run([sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider",
                           str(folder)], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=300)


def test_without_the_variable_a_missing_extra_is_a_skip_with_its_reason(tmp_path):
    for require in (None, "0"):
        r = pytest_in(tmp_path, {"test_a.py": IN_TEST, "test_b.py": AT_MODULE_LEVEL}, require)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "1 passed, 2 skipped" in r.stdout
        assert r.stdout.count("the fake extra is not installed") == 2


def test_in_ci_a_missing_extra_in_a_test_fails_and_the_rest_runs(tmp_path):
    r = pytest_in(tmp_path, {"test_a.py": IN_TEST}, "1")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "1 failed, 1 passed" in r.stdout and "skipped" not in r.stdout
    assert "the fake extra is not installed (KINEMA_REQUIRE_EXTRAS=1" in r.stdout


def test_in_ci_a_missing_extra_at_module_level_fails_collection(tmp_path):
    r = pytest_in(tmp_path, {"test_b.py": AT_MODULE_LEVEL}, "1")
    assert r.returncode != 0 and "skipped" not in r.stdout, r.stdout + r.stderr
    assert "1 error" in r.stdout and "the fake extra is not installed (KINEMA_REQUIRE_" in r.stdout


def test_ci_requires_every_extra_and_runs_the_readme_test_command():
    lines = [line.strip() for line in CI.read_text().splitlines()]
    tests = lines.index("bash scripts/test.sh")
    assert "export KINEMA_REQUIRE_EXTRAS=1" in lines[:tests]
    assert {".venv/bin/ruff check .", ".venv/bin/mypy"} <= set(lines)
    assert "bash scripts/test.sh" in (CI.parents[1] / "README.md").read_text()
