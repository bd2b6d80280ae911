"""Turn parsed documents into spec models, or into located, readable diagnostics (the rules
across fields live here; pydantic's own errors are worded in `messages.py`).

Pydantic reports errors by model path; the source map turns each into `file:line:col`, and
the messages are rewritten for people who write YAML, not Python. Conventions:

* a wrong value is reported at the value, an unknown or missing field at the key;
* a rule of a model validator whose message starts with a field path (`maxBatchLen (...)`,
  `images.fetch (...)`) is reported at that field when the file sets it, else at the key of
  the mapping the rule belongs to;
* nothing that looks like a credential is ever echoed back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import ValidationError

from ilab_gitops.diagnostics import Diagnostic, Severity
from ilab_gitops.load.sources import Document, PathKey, quote
from ilab_gitops.spec import capacity, environment
from ilab_gitops.spec.credentials import find_credentials
from ilab_gitops.spec.environment import Environment
from ilab_gitops.spec.pipeline_run import PipelineRun

if TYPE_CHECKING:
    from ilab_gitops.load import messages
else:

    class _Messages:
        """`load.messages`, imported when the first problem is worded: a valid file never
        needs it (and its difflib), which keeps a one-spec `validate` starting fast."""

        def __getattr__(self, name: str) -> object:
            from ilab_gitops.load import messages as loaded

            globals()["messages"] = loaded
            return getattr(loaded, name)

    messages = _Messages()

SpecModel = PipelineRun | Environment
_KINDS: dict[str, type[PipelineRun] | type[Environment]] = {
    "PipelineRun": PipelineRun,
    "Environment": Environment,
}


@dataclass(frozen=True)
class Checked:
    """A document that validated, with its model."""

    document: Document
    model: SpecModel


def credential_diagnostics(
    document: Document, found: list[tuple[PathKey, str]] | None = None
) -> list[Diagnostic]:
    """Errors for credential-looking strings anywhere in the document (`found`: the scan's
    findings when the caller has them already)."""
    out = []
    for path, what in find_credentials(document.data) if found is None else found:
        pos = document.source_map.locate(path)
        out.append(
            Diagnostic(
                document.path,
                pos.line,
                pos.column,
                "inline-credential",
                messages.field_path(path),
                f"looks like {what}; specs must reference a Secret instead of holding values",
            )
        )
    return out


def _environment_rules(document: Document, env: Environment) -> list[Diagnostic]:
    """Rules of a profile that its model does not check yet, and the platform-safety rules.

    A profile decides where every run lands and what it may touch, so a system namespace or a
    toleration of every taint is refused unless the file says so in a field named for it.
    """
    spec = env.spec
    out: list[Diagnostic] = []
    if spec.gpu.perNode and spec.resources.evalGpus > spec.gpu.perNode:
        out.append(
            messages.located(
                document,
                ("spec", "resources", "evalGpus"),
                "invalid-combination",
                f"resources.evalGpus ({spec.resources.evalGpus}) exceeds the "
                f"{spec.gpu.perNode} GPUs per node (gpu.perNode)",
            )
        )
    engine_namespace = "flux" in spec.engines and spec.namespace == spec.flux.namespace
    if (
        environment.is_system_namespace(spec.namespace) or engine_namespace
    ) and not spec.allowSystemNamespace:
        owner = "the GitOps engine" if engine_namespace else "Kubernetes or a cluster add-on"
        out.append(
            messages.located(
                document,
                ("spec", "namespace"),
                "system-namespace",
                f"{quote(spec.namespace)} is a namespace of {owner}; runs applied there sit "
                "beside its service accounts and secrets. Give the runs a namespace of their "
                "own, or opt in with allowSystemNamespace: true",
            )
        )
    if not spec.allowTolerateAllTaints:
        for index, toleration in enumerate(spec.tolerations):
            if toleration.operator == "Exists" and toleration.key is None:
                out.append(
                    messages.located(
                        document,
                        ("spec", "tolerations", index),
                        "tolerates-everything",
                        "operator Exists without a key tolerates every taint, so step pods "
                        "may land on control-plane and reserved nodes; name the taint key, "
                        "or opt in with allowTolerateAllTaints: true",
                    )
                )
    return out


def check_document(document: Document) -> tuple[SpecModel | None, list[Diagnostic]]:
    """Validate one document against the model its `kind` names."""
    found = list(find_credentials(document.data))
    diagnostics = credential_diagnostics(document, found)
    secret_paths = {path for path, _ in found}
    kind = document.data.get("kind")
    model = _KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        if "kind" not in document.data:
            problem = messages.located(
                document,
                ("kind",),
                "missing-field",
                'missing required field "kind" (PipelineRun or Environment)',
            )
        elif isinstance(kind, str):
            problem = messages.located(
                document,
                ("kind",),
                "unknown-kind",
                f"unknown kind {messages.show(kind)}; expected PipelineRun or Environment"
                + messages.suggest(kind, _KINDS),
            )
        else:
            problem = messages.located(
                document,
                ("kind",),
                "wrong-type",
                f"expected PipelineRun or Environment, {messages.got(kind)}",
            )
        return None, [*diagnostics, problem]
    try:
        parsed = model.model_validate(document.data)
    except ValidationError as err:
        return None, diagnostics + messages.diagnose(document, model, err, secret_paths)
    if isinstance(parsed, Environment):
        diagnostics += _environment_rules(document, parsed)
    return (parsed if not diagnostics else None), diagnostics


def unknown_environment(
    document: Document, name: str, known: Iterable[str], searched: str
) -> Diagnostic:
    """The error for a run naming an environment that `searched` does not define."""
    names = sorted(known)
    listed = ", ".join(names) if names else "none found"
    return messages.located(
        document,
        ("spec", "environment"),
        "unknown-environment",
        f"environment {quote(name)} not found in {searched} (known: {listed})"
        + messages.suggest(name, names),
    )


def check_run_against_environment(
    document: Document, run: PipelineRun, environment: Environment
) -> list[Diagnostic]:
    """Rules that need both the run and its cluster profile."""
    out: list[Diagnostic] = []

    def add(path: PathKey, message: str) -> None:
        out.append(messages.located(document, path, "invalid-combination", message))

    training = run.spec.training
    env = environment.spec
    name = environment.metadata.name
    if env.gpu.perNode and training.nprocPerNode > env.gpu.perNode:
        add(
            ("spec", "training", "nprocPerNode"),
            f"nprocPerNode ({training.nprocPerNode}) exceeds the {env.gpu.perNode} GPUs per node "
            f'of environment "{name}"',
        )
    nnodes = training.nodes(env.gpu.nodes)
    if nnodes > env.gpu.nodes:
        add(
            ("spec", "training", "nnodes"),
            f'nnodes ({nnodes}) exceeds the {env.gpu.nodes} node(s) of environment "{name}" '
            "(gpu.nodes); Workers beyond them would never be scheduled",
        )
    elif nnodes > 1 and env.storage.accessMode == "ReadWriteOnce":
        add(
            ("spec", "training", "nnodes"),
            f'nnodes is {nnodes} but environment "{name}" has ReadWriteOnce storage, '
            "which pods on several nodes cannot share",
        )
    out.extend(_disk_estimate(document, run, environment))
    if run.spec.sdgData.generate is not None and env.images.sdg is None:
        add(
            ("spec", "sdgData", "generate"),
            f'environment "{name}" has no images.sdg to run in-cluster SDG with',
        )
    return out


def _disk_estimate(
    document: Document, run: PipelineRun, environment: Environment
) -> list[Diagnostic]:
    """The checkpoints' disk estimate against the workspace volume: an error beyond it, a
    warning beyond 80% of it (logs, data and evaluation outputs need room too)."""
    found = capacity.estimate(run.spec.training)
    if found is None:
        return []
    size_text = environment.spec.storage.size
    size = capacity.quantity_bytes(size_text)
    if found.total <= size * 0.8:
        return []
    policy = run.spec.training.checkpoints.fullState
    message = (
        f"checkpoints need about {capacity.human_bytes(found.total)} with fullState {policy} "
        f"and {run.spec.training.modelParameters} parameters ({found.explain()}), "
    )
    if found.total > size:
        message += (
            f'more than storage.size {size_text} of environment "{environment.metadata.name}"'
        )
        severity: Severity = "error"
    else:
        message += (
            f'over 80% of storage.size {size_text} of environment "{environment.metadata.name}"'
        )
        severity = "warning"
    path: PathKey = ("spec", "training", "checkpoints", "fullState")
    if not messages.lookup(document.data, path)[0]:
        path = ("spec", "training", "modelParameters")
    diagnostic = messages.located(document, path, "disk-estimate", message)
    return [dataclasses.replace(diagnostic, severity=severity)]
