"""Pickle-free codec between a training-state tree and JSON plus named tensors.

A checkpoint holds nets, optimizers, counters, RNG states and normalizers: a nested tree of
dicts, lists and tuples whose leaves are tensors or JSON scalars. Pickle would carry all of it,
but loading a pickle runs code, so tensors go to safetensors and the rest to strict JSON.
JSON lacks a few things a training state needs, so they are tagged as single-key objects:

    {"$tensor": {"file": F, "key": K}}   a tensor stored under key K in safetensors file F
    {"$float": "nan" | "inf" | "-inf"}   non-finite floats (strict JSON has no NaN/Infinity)
    {"$tuple": [...]}                    tuples come back as tuples, never as lists
    {"$dict": [[key, value], ...]}       dicts with int keys (optimizer "state" uses parameter
                                         indices) or with str keys starting with "$"

Every other dict is a plain JSON object, so state.json stays readable. Finite floats round-trip
exactly (json writes the shortest repr), ints of any size are JSON integers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

Path_ = tuple[str | int, ...]  # location of a node in the tree, used in names and messages
_NON_FINITE = {"nan", "inf", "-inf"}


class TreeError(ValueError):
    """A JSON tree that does not decode; the caller adds the file name."""


def encode(
    tree: Any, route: Callable[[Path_], str]
) -> tuple[Any, dict[str, dict[str, torch.Tensor]]]:
    """(JSON-ready tree, {file: {key: tensor}}); `route(path)` picks each tensor's file.

    Tensors are returned as contiguous CPU tensors that share no storage with one another,
    which safetensors requires. A CPU tensor that already is such is used as is: replay
    buffers can be large, and saving is synchronous, so a second copy would only cost memory.
    """
    enc = _Encoder(route)
    return enc.node(tree, ()), enc.tensors


class _Encoder:
    """One encoding pass: the tensors found so far, by file, and the storages they use."""

    def __init__(self, route: Callable[[Path_], str]) -> None:
        self.route = route
        self.tensors: dict[str, dict[str, torch.Tensor]] = {}
        self.storages: set[int] = set()

    def node(self, node: Any, path: Path_) -> Any:
        if isinstance(node, torch.Tensor):
            return self.leaf(node, path)
        if node is None or isinstance(node, bool | int | str):
            return node
        if isinstance(node, float):
            return node if math.isfinite(node) else {"$float": repr(node)}
        if isinstance(node, list):
            return [self.node(v, (*path, i)) for i, v in enumerate(node)]
        if isinstance(node, tuple):
            return {"$tuple": [self.node(v, (*path, i)) for i, v in enumerate(node)]}
        if isinstance(node, dict):
            return self.mapping(node, path)
        raise TypeError(f"cannot checkpoint the {type(node).__name__} at {_show(path)}; leaves "
                        "must be torch tensors or JSON values (int, float, bool, str, None)")

    def mapping(self, node: dict, path: Path_) -> Any:
        if all(isinstance(k, str) and not k.startswith("$") for k in node):
            return {k: self.node(v, (*path, k)) for k, v in node.items()}
        for k in node:
            if not isinstance(k, str | int):
                raise TypeError(f"cannot checkpoint the {type(k).__name__} key {k!r} at "
                                f"{_show(path)}; keys must be str or int")
        return {"$dict": [[k, self.node(v, (*path, k))] for k, v in node.items()]}

    def leaf(self, t: torch.Tensor, path: Path_) -> dict[str, Any]:
        if t.layout != torch.strided:
            raise TypeError(f"cannot checkpoint the {t.layout} tensor at {_show(path)}; "
                            "make it dense first")
        t = t.detach()
        ptr = t.untyped_storage().data_ptr()
        whole = t.storage_offset() == 0 and t.untyped_storage().nbytes() == t.nbytes
        if not (t.device.type == "cpu" and t.is_contiguous() and whole and ptr
                and ptr not in self.storages):
            t = t.to("cpu", copy=True, memory_format=torch.contiguous_format)
        self.storages.add(t.untyped_storage().data_ptr())
        file = self.route(path)
        names = self.tensors.setdefault(file, {})
        key = base = "/".join(str(p) for p in path)
        n = 1
        while key in names:  # "a.b" and ("a", "b") may join to the same name
            n += 1
            key = f"{base}#{n}"
        names[key] = t
        return {"$tensor": {"file": file, "key": key}}


def decode(obj: Any, tensors: dict[str, dict[str, torch.Tensor]]) -> Any:
    """Inverse of `encode`, given the tensors loaded from each file."""

    def dec(node: Any, path: Path_) -> Any:
        if isinstance(node, list):
            return [dec(v, (*path, i)) for i, v in enumerate(node)]
        if not isinstance(node, dict):
            return node
        tags = [k for k in node if k.startswith("$")]
        if not tags:
            return {k: dec(v, (*path, k)) for k, v in node.items()}
        if len(node) != 1:
            raise TreeError(f"the node at {_show(path)} mixes the tag {tags[0]!r} with other keys")
        tag, value = next(iter(node.items()))
        if tag == "$tensor" and isinstance(value, dict):
            try:
                return tensors[value["file"]][value["key"]]
            except (KeyError, TypeError):
                raise TreeError(f"the tensor {value!r} at {_show(path)} is not in the "
                                "checkpoint's safetensors files") from None
        if tag == "$float" and value in _NON_FINITE:
            return float(value)
        if tag == "$tuple" and isinstance(value, list):
            return tuple(dec(v, (*path, i)) for i, v in enumerate(value))
        if tag == "$dict" and isinstance(value, list):
            pairs = [p for p in value if isinstance(p, list) and len(p) == 2
                     and isinstance(p[0], str | int)]
            if len(pairs) == len(value):
                return {k: dec(v, (*path, k)) for k, v in pairs}
        raise TreeError(f"the node at {_show(path)} has a malformed or unknown tag {tag!r}")

    return dec(obj, ())


def _show(path: Path_) -> str:
    """A path as Python indexing, e.g. state["optim"]["state"][0]."""
    return "state" + "".join(f"[{p!r}]" for p in path)
