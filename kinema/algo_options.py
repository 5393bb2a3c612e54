"""An algorithm's options (`kinema train ALGO --lr 1e-3 ...`): tyro parses them against the
algorithm's config dataclass; a refusal becomes one sentence naming the option, the value and
what is accepted.

tyro runs with `console_outputs=False` and `return_unknown_args=True` (its public API): unknown
tokens come back to us, and a refused value ends in SystemExit(2) without tyro's error box.
The sentence is then built from tyro's own converters (`tyro.constructors`, the same ones it
parsed with) and the config's `__post_init__` checks, never from tyro's printed text.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import io
import typing
from typing import Any


def parse_algo_options(cls: type, default: Any, args: list[str], prog: str) -> Any:
    """`cls` from `args` over `default`; ValueError with one line when tyro refuses them."""
    import tyro

    try:
        # tyro 1.0 draws its "Value error" box even with console_outputs=False: it goes nowhere.
        with contextlib.redirect_stderr(io.StringIO()):
            cfg, unknown = tyro.cli(cls, default=default, args=args, prog=prog,
                                    console_outputs=False, return_unknown_args=True)
    except SystemExit:
        raise ValueError(refusal(cls, default, args)) from None
    if unknown:
        raise ValueError(unrecognized(cls, unknown))
    return cfg


def _spellings(cls: type) -> dict[str, tuple[str, bool | None]]:
    """'--num-envs' (and tyro's '--num_envs', '--no-flag') -> (field, value of a bool flag)."""
    hints = typing.get_type_hints(cls)
    out: dict[str, tuple[str, bool | None]] = {}
    for f in dataclasses.fields(cls):
        for delim in "-_":
            name = f.name.replace("_", delim)
            if hints[f.name] is bool:
                out[f"--{name}"] = (f.name, True)
                out[f"--no{delim}{name}"] = (f.name, False)
            else:
                out[f"--{name}"] = (f.name, None)
    return out


def unrecognized(cls: type, tokens: list[str]) -> str:
    """'unrecognized arguments: --hiddne 3 (did you mean --hidden?)'."""
    known = [s for s in _spellings(cls) if "_" not in s]
    options = [t.partition("=")[0] for t in tokens if t.startswith("--")]
    close = difflib.get_close_matches(options[0], known, n=1) if options else []
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unrecognized arguments: {' '.join(tokens)}{hint}"


def refusal(cls: type, default: Any, args: list[str]) -> str:
    """Why tyro refused `args`: the first option whose value tyro's converter for its type
    rejects, else the config's own check (`__post_init__`) on the values given."""
    from tyro.constructors import ConstructorRegistry, PrimitiveConstructorSpec, PrimitiveTypeInfo

    hints = typing.get_type_hints(cls)
    spellings = _spellings(cls)
    given: dict[str, Any] = {}
    i = 0
    while i < len(args):
        opt, eq, inline = args[i].partition("=")
        i += 1
        if opt not in spellings:
            return unrecognized(cls, args[i - 1:])
        name, flag_value = spellings[opt]
        if flag_value is not None:
            given[name] = flag_value
            continue
        spec = ConstructorRegistry.get_primitive_spec(PrimitiveTypeInfo.make(hints[name], set()))
        if not isinstance(spec, PrimitiveConstructorSpec):
            break  # a type tyro parses some other way: the generic sentence below
        counts = spec.nargs if isinstance(spec.nargs, tuple) else (spec.nargs,)
        values = [inline] if eq else []
        while not eq and i < len(args) and not args[i].startswith("--") and (
                "*" in counts or len(values) < max(c for c in counts if c != "*")):
            values.append(args[i])
            i += 1
        accepted = (f"one of {', '.join(spec.choices)}" if spec.choices else spec.metavar)
        if "*" not in counts and len(values) not in counts:
            n = " or ".join(map(str, counts))
            return f"argument {opt}: expected {n} value{'' if n == '1' else 's'} ({accepted})"
        try:
            given[name] = spec.instance_from_str(values)
        except (ValueError, TypeError, IndexError):
            return f"argument {opt}: invalid value {' '.join(values)!r}; expected {accepted}"
    try:
        dataclasses.replace(default, **given)
    except (ValueError, TypeError) as e:
        return " ".join(str(e).split())
    return (f"{cls.__name__} refused the options {' '.join(args)!r} "
            "(kinema train ALGO --help lists them)")


def algo_overrides(run: Any, args: list[str]) -> dict[str, Any]:
    """Algorithm options given with --resume, parsed against the run's saved config: the fields
    that differ from it."""
    if not args:
        return {}
    from agents.runs.run import Run
    from agents.runs.train import saved_configs

    r = Run.open(run)
    _, saved = saved_configs(r, {"device": "cpu"})  # config.json's faults: one line naming it
    asked = parse_algo_options(type(saved), saved, args, "kinema train --resume")
    return {k: v for k, v in dataclasses.asdict(asked).items() if v != getattr(saved, k)}
