"""Generate the spec reference (Markdown) from the models, so docs cannot drift from code."""

from __future__ import annotations

import json
import types
import typing
from typing import Any, Literal, Union

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from ilab_gitops.spec.environment import Environment
from ilab_gitops.spec.pipeline_run import PipelineRun

_HEADER = """# Spec reference

Generated from the models by `make docs` (`python -m ilab_gitops.spec.reference > spec/README.md`);
a test fails when this file is out of date. Both kinds use
`apiVersion: gitops.instructlab.ai/v1alpha1`. JSON Schemas for editors are in
[`schema/`](schema/). Annotated examples are in [`examples/`](examples/).

Rules checked beyond the tables: exactly one base model source; `maxBatchLen >= maxSeqLen`;
`cpuOffload.params` only with `fsdp`; `nprocPerNode` at most the environment's GPUs per node;
`nnodes` at most the environment's `gpu.nodes` (its default); `nnodes > 1` needs ReadWriteMany
storage; with `modelParameters` set, the checkpoints' disk estimate (12 bytes per parameter
per full state kept, 2 per model copy) is an error above `storage.size` and a warning above
80% of it; `podLabels`/`podAnnotations` may not use the keys ilab-gitops sets; images pinned
by digest unless `allowTagImages`;
`evaluationKind: Job` is refused with Kueue under Flux; no credential-looking value anywhere
(AWS key ids, `hf_`/`ghp_`/`github_pat_` tokens, private keys, passwords in URLs).
"""


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is Literal:
        return " \\| ".join(f"`{json.dumps(a)}`" for a in args)
    if origin in (Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " \\| ".join(names) + (" (optional)" if type(None) in args else "")
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"map of {_type_name(args[0])} to {_type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    scalars: dict[object, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
    return scalars.get(annotation) or str(getattr(annotation, "__name__", annotation))


def _constraints(info: FieldInfo) -> str:
    parts = []
    for meta in info.metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(meta, attr, None)
            if value is not None:
                parts.append(f"{sign} {value}")
        for attr, label in (("max_length", "max length"), ("pattern", "pattern")):
            value = getattr(meta, attr, None)
            if value is not None:
                parts.append(f"{label} `{value}`" if attr == "pattern" else f"{label} {value}")
    return ", ".join(parts)


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "**required**"
    if info.default_factory is not None:
        made = info.default_factory()  # type: ignore[call-arg]
        if isinstance(made, BaseModel):
            return "see type"
        return f"`{json.dumps(made)}`"
    if info.default is PydanticUndefined:
        return ""
    return f"`{json.dumps(info.default)}`"


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in seen:
                seen.append(annotation)
                for info in annotation.model_fields.values():
                    visit(info.annotation)
            return
        for arg in typing.get_args(annotation):
            visit(arg)

    visit(root)
    return seen


def _model_doc(annotation: Any) -> str:
    """First docstring line of the model a field holds (for fields without a description)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return next(iter((annotation.__doc__ or "").strip().splitlines()), "")
    for arg in typing.get_args(annotation):
        found = _model_doc(arg)
        if found:
            return found
    return ""


def _section(model: type[BaseModel]) -> str:
    doc = _model_doc(model)
    lines = [
        f"### {model.__name__}",
        "",
        doc,
        "",
        "| field | type | default | description |",
        "| --- | --- | --- | --- |",
    ]
    for name, info in model.model_fields.items():
        description = (info.description or _model_doc(info.annotation)).replace("\n", " ")
        description = description.replace("|", "\\|")
        extra = _constraints(info)
        typ = _type_name(info.annotation) + (f" ({extra})" if extra else "")
        typ = typ.replace("|", "\\|").replace("\\\\|", "\\|")
        lines.append(f"| `{name}` | {typ} | {_default(info)} | {description} |")
    return "\n".join(lines) + "\n"


def reference_markdown() -> str:
    parts = [_HEADER]
    for title, root in (("PipelineRun kind", PipelineRun), ("Environment kind", Environment)):
        parts.append(f"## {title}\n")
        parts.extend(_section(model) for model in _models(root))
    return "\n".join(parts)


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.stdout.write(reference_markdown())
