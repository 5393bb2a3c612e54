"""What an exported graph must not carry: the exporting machine's paths and source code.

torch's dynamo exporter annotates every node (`pkg.torch.onnx.stack_trace`: the file paths
and source lines of the checkout it ran in, the fx node, the module class hierarchy) and the
graph (the ExportedProgram's signature); quantizers and other tools add doc strings of their
own. None of it changes what the graph computes, and all of it would ship to every robot and
into the bundle's hash. Export therefore strips every `doc_string` and `metadata_props` in the
model (model, graphs and subgraphs, nodes, functions, values, tensors) before the hash is taken.
No torch here: deploy.quantize uses this too.
"""

from __future__ import annotations

import onnx
from google.protobuf.message import Message

STRIPPED_FIELDS = ("doc_string", "metadata_props")


def strip_metadata(model: onnx.ModelProto) -> onnx.ModelProto:
    """Clear every doc string and metadata property in `model`, in place; returns it."""
    _strip(model)
    return model


def _strip(msg: Message) -> None:
    for field, value in msg.ListFields():
        if field.name in STRIPPED_FIELDS:
            msg.ClearField(field.name)
        elif field.message_type is not None:  # a message, or a repeated one: walk into it
            for child in ([value] if isinstance(value, Message) else value):
                _strip(child)


def metadata_left(model: onnx.ModelProto) -> list[str]:
    """Where `model` still carries a doc string or metadata (empty once stripped), for tests
    and for checking a bundle made elsewhere."""
    found: list[str] = []
    _find(model, type(model).__name__, found)
    return found


def _find(msg: Message, where: str, found: list[str]) -> None:
    for field, value in msg.ListFields():
        if field.name in STRIPPED_FIELDS:
            found.append(f"{where}.{field.name}")
        elif field.message_type is not None:
            children = [value] if isinstance(value, Message) else list(value)
            for i, child in enumerate(children):
                _find(child, f"{where}.{field.name}[{i}]", found)
