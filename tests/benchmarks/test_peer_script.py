"""benchmarks.peer_venv.run_script, the subprocess contract of the peers in their own venvs
(imitation's GAIL/AIRL and MCE-IRL, mbrl-lib's PETS): `python -I SCRIPT ARGS OUT` in a
temporary folder, its JSON back, a failure in one line naming the run."""

import sys

import pytest

from benchmarks.peer_venv import run_script

ECHO = """import json, os, sys
args = json.loads(sys.argv[1])
if args.get("fail"):
    print("progress line", file=sys.stderr)
    raise SystemExit("the peer gave up: " + args["fail"])
with open(sys.argv[2], "w") as f:
    json.dump({"got": args, "cwd": os.getcwd(), "isolated": sys.flags.isolated}, f)
"""


def test_the_peer_gets_its_args_isolated_in_the_folder_and_returns_its_json(tmp_path):
    script = tmp_path / "peer.py"
    script.write_text(ECHO)
    (tmp_path / "run").mkdir()
    out = run_script(sys.executable, script, {"seed": 3, "env": "pendulum"}, tmp_path / "run",
                     "p: pendulum seed 3", timeout=60)
    assert out["got"] == {"seed": 3, "env": "pendulum"} and out["isolated"] == 1
    assert out["cwd"] == str(tmp_path / "run")


def test_a_failing_peer_is_one_line_naming_the_run_and_its_last_words(tmp_path):
    script = tmp_path / "peer.py"
    script.write_text(ECHO)
    with pytest.raises(RuntimeError, match=r"^p: mce-irl seed 0 failed \(exit 1\): the peer "
                                           r"gave up: no model$") as e:
        run_script(sys.executable, script, {"fail": "no model"}, tmp_path, "p: mce-irl seed 0",
                   timeout=60)
    assert "\n" not in str(e.value)
