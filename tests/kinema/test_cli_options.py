"""`kinema train`'s flags come from TrainConfig, and a bad algorithm option is one line, exit 2."""

import argparse
import dataclasses
import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from agents.runs.config import MUTABLE_ON_RESUME, TrainConfig, option
from kinema.args import Parser, add_dataclass_options, field_docs, positive_int
from kinema.cli import build_parser, main


def train_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser("train")._actions
               if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def by_flag(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in parser._actions for s in a.option_strings}


def test_every_train_config_field_but_algo_is_a_flag_helped_by_its_docstring():
    actions = by_flag(train_parser())
    docs = field_docs(TrainConfig)
    assert docs["steps"].startswith("Env-step budget") and "algo" in docs
    for f in dataclasses.fields(TrainConfig):
        name = "--" + f.name.replace("_", "-")
        if f.name == "algo":
            assert name not in actions  # ALGO is the word after `train`
            continue
        action = actions[name]
        assert action.dest == f.name and action.default is None
        assert action.help.startswith(docs[f.name].rstrip("."))
        assert (action.type is positive_int) == bool(f.metadata.get("positive"))
    assert set(actions) - {"--" + f.name.replace("_", "-") for f in dataclasses.fields(TrainConfig)
                           } == {"--resume", "--json", "--no-progress", "-h", "--help"}
    resume_help = actions["--resume"].help
    for name in MUTABLE_ON_RESUME:
        assert "--" + name.replace("_", "-") in resume_help
    assert "--seed" not in resume_help


@dataclass(frozen=True)
class LongerConfig(TrainConfig):
    warmup: int = field(default=5, metadata=option(resume=True, positive=True, metavar="W"))
    """Env steps of random actions before learning."""
    tag: str | None = None
    """A label for the run."""


def test_a_new_field_is_a_new_flag():
    p = Parser(prog="kinema train")
    names = add_dataclass_options(p, LongerConfig, skip=("algo",))
    assert names[-2:] == ["warmup", "tag"]
    assert names[:-2] == [f.name for f in dataclasses.fields(TrainConfig)][1:]
    actions = by_flag(p)
    assert actions["--warmup"].help == "Env steps of random actions before learning (default 5)"
    assert actions["--warmup"].metavar == "W" and actions["--tag"].help == "A label for the run"
    a = p.parse_args(["--warmup", "7", "--tag", "x"])
    assert (a.warmup, a.tag, a.steps, a.env) == (7, "x", None, None)


def test_flags_not_given_stay_none():
    a, rest = build_parser("train").parse_known_args(["train", "--env", "cartpole", "--lr", "1"])
    assert rest == ["--lr", "1"] and a.env == "cartpole"
    assert all(getattr(a, f.name, None) is None for f in dataclasses.fields(TrainConfig)
               if f.name != "env")


def test_steps_zero_is_an_argparse_error_naming_it(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "ppo", "--env", "cartpole", "--steps", "0"])
    assert e.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == ("kinema train: error: argument --steps: 0 is not positive; "
                    "expected a positive integer")


def test_the_runtime_commands_build_no_train_config_flags():
    sub = next(a for a in build_parser("run")._actions
               if isinstance(a, argparse._SubParsersAction))
    assert set(by_flag(sub.choices["train"])) == {"--resume", "--json", "--no-progress", "-h",
                                                 "--help"}


@pytest.mark.parametrize("algo,args,needles", [
    ("ppo", ["--lr", "abc"], ["argument --lr: invalid value 'abc'", "FLOAT"]),
    ("ppo", ["--num-envs", "2.5"], ["--num-envs", "'2.5'", "INT"]),
    ("ppo", ["--target-kl", "x"], ["--target-kl", "'x'", "None", "FLOAT"]),
    ("ppo", ["--hidden", "64", "wide"], ["--hidden", "'64 wide'", "INT"]),
    ("ppo", ["--gamma"], ["argument --gamma: expected 1 value", "FLOAT"]),
    ("ppo", ["--hiddne", "3"], ["unrecognized arguments: --hiddne 3", "did you mean --hidden"]),
    ("dqn", ["--dueling", "3"], ["unrecognized arguments: 3"]),
    ("bc", ["--head", "l1", "--dataset", "x"], ["head 'l1' is not one of mse, nll"]),
])
def test_a_bad_algorithm_option_is_one_line(algo, args, needles, tmp_path, capsys):
    rc = main(["train", algo, "--env", "pendulum" if algo == "bc" else "cartpole",
               "--runs-dir", str(tmp_path), "--no-progress", *args])
    assert rc == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("kinema train: error: ")
    for needle in needles:
        assert needle in line
    assert not any(tmp_path.iterdir())  # refused before a run folder exists


def test_a_bad_algorithm_option_is_one_line_on_stderr_with_exit_2(tmp_path):
    r = subprocess.run([sys.executable, "-m", "kinema", "train", "sac", "--env", "pendulum",
                        "--tau", "fast", "--runs-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "kinema train: error: argument --tau: invalid value 'fast'; expected FLOAT"]
    assert "│" not in r.stderr and "Traceback" not in r.stderr


def test_keep_checkpoints_is_helped_and_mutable_on_resume():
    action = by_flag(train_parser())["--keep-checkpoints"]
    for needle in ("newest N", "older ones are deleted", "0: keep all", "(default 3)"):
        assert needle in action.help
    assert "keep_checkpoints" in MUTABLE_ON_RESUME and TrainConfig("ppo", "x").keep_checkpoints == 3


@pytest.mark.parametrize("text,value", [("1e6", 1_000_000), ("2.5e5", 250_000), ("64", 64)])
def test_integer_flags_take_an_exact_scientific_form(text, value):
    a, _ = build_parser("train").parse_known_args(["train", "--steps", text, "--seed", text])
    assert (a.steps, a.seed) == (value, value)
