"""Hypothesis strategies: valid `PipelineRun` specs, each paired with a reference environment.

Every generated spec passes `PipelineRun.model_validate` and the run-against-environment
rules (`nprocPerNode <= gpu.perNode` when the nodes have GPUs, one node on ReadWriteOnce
storage), so property tests exercise the compiler, not the validator. Optional fields are
sometimes left out, so defaults are covered too.

Strategies are built once (`functools.cache`): building them is what makes a draw slow.
"""

from __future__ import annotations

import functools
import string
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from ilab_gitops.spec.base import MAX_RUN_NAME
from ilab_gitops.spec.environment import Environment
from ilab_gitops.spec.pipeline_run import PipelineRun
from tests.support.specs import ENVIRONMENTS, load_environment

Spec = dict[str, Any]
Strategy = st.SearchStrategy

#: The one settings profile of the property tests: same examples on every run and machine.
DERANDOMIZED = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=200,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow],
)
#: For properties that compile a run per example (a few ms each).
COMPILER = settings(DERANDOMIZED, max_examples=50)

_LOWER = string.ascii_lowercase
_ALNUM = _LOWER + string.digits
_HEX = "0123456789abcdef"
_REPO_CHARS = string.ascii_letters + string.digits + "-_."
_KEY_CHARS = string.ascii_letters + string.digits + "-._"
_QUANTITY_SUFFIXES = ("", "m", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti")


@functools.cache
def reference_environments() -> tuple[Environment, ...]:
    """The profiles in environments/*.yaml, loaded once."""
    return tuple(load_environment(path) for path in ENVIRONMENTS)


def environment(name: str) -> Environment:
    return next(env for env in reference_environments() if env.metadata.name == name)


# --------------------------------------------------------------------------- small values


@functools.cache
def dns_label(max_size: int = 63, *, letter_first: bool = False) -> Strategy[str]:
    """A DNS-1123 label (DNS-1035 with `letter_first`), often at its longest."""
    first = st.sampled_from(_LOWER if letter_first else _ALNUM)
    middle = st.one_of(
        st.text(alphabet=_ALNUM + "-", max_size=max_size - 2),
        st.text(alphabet=_ALNUM + "-", min_size=max_size - 2, max_size=max_size - 2),
    )
    longer = st.builds(lambda a, m, z: a + m + z, first, middle, st.sampled_from(_ALNUM))
    return st.one_of(first, longer)


def run_names() -> Strategy[str]:
    return dns_label(MAX_RUN_NAME, letter_first=True)


@functools.cache
def _hex(size: int) -> Strategy[str]:
    return st.text(alphabet=_HEX, min_size=size, max_size=size)


@functools.cache
def _non_blank(max_size: int) -> Strategy[str]:
    """Text without white space or control characters, not starting with "/" (object keys,
    relative paths): unicode, quotes and YAML indicators included."""
    chars = st.characters(exclude_categories=("Z", "C"))
    return st.text(alphabet=chars, min_size=1, max_size=max_size).filter(
        lambda s: not s.startswith("/")
    )


@functools.cache
def _word(alphabet: str, max_size: int) -> Strategy[str]:
    return st.text(alphabet=alphabet, min_size=1, max_size=max_size)


def _branches() -> Strategy[str]:
    """Branch names as `BranchName` takes them: parts of letters, digits, '_' and '-' with
    single inner dots, none starting with '-' or '.', joined by '/'."""
    head = string.ascii_letters + string.digits + "_"
    part = st.builds(
        lambda first, rest: first + ".".join(rest),
        st.sampled_from(head),
        st.lists(_word(head + "-", 6), max_size=3).map(lambda r: r or [""]),
    )
    return st.lists(part, min_size=1, max_size=3).map("/".join)


@functools.cache
def _repo_ids() -> Strategy[str]:
    owner = st.builds(
        lambda a, b: a + b,
        st.sampled_from(string.ascii_letters + string.digits),
        st.text(alphabet=_REPO_CHARS, max_size=15),
    )
    return st.builds(lambda o, n: f"{o}/{n}", owner, _word(_REPO_CHARS, 20))


@functools.cache
def _quantities() -> Strategy[str]:
    number = st.one_of(
        st.integers(0, 10**6).map(str),
        st.builds(lambda a, b: f"{a}.{b}", st.integers(0, 999), st.integers(0, 999)),
    )
    return st.builds(lambda n, s: n + s, number, st.sampled_from(_QUANTITY_SUFFIXES))


@functools.cache
def secret_ref() -> Strategy[Spec]:
    return st.fixed_dictionaries({"name": dns_label()})


@functools.cache
def key_refs() -> Strategy[Spec]:
    """A Secret or ConfigMap key reference."""
    return st.fixed_dictionaries({"name": dns_label(), "key": _word(_KEY_CHARS, 40)})


@functools.cache
def _attempts() -> Strategy[int]:
    return st.one_of(st.just(0), st.integers(0, 1000))


@functools.cache
def _auto_or_int() -> Strategy[str | int]:
    return st.one_of(st.just("auto"), st.integers(1, 4096))


@functools.cache
def pull_requests() -> Strategy[list[int]]:
    return st.lists(st.integers(1, 10**6), unique=True, max_size=8)


def _opt(
    required: dict[str, Strategy[Any]] | None = None, **optional: Strategy[Any]
) -> Strategy[Spec]:
    """Mappings with every required key and a drawn subset of the optional ones."""
    return st.fixed_dictionaries(required or {}, optional=optional)


# --------------------------------------------------------------------------- spec sections


@functools.cache
def base_models() -> Strategy[Spec]:
    s3 = _opt({"secretRef": secret_ref(), "prefix": _non_blank(60)})
    hugging_face = _opt({"repo": _repo_ids(), "revision": _hex(40)}, tokenSecretRef=key_refs())
    pvc = _opt({"claimName": dns_label(), "path": _non_blank(60)})
    return st.one_of(
        s3.map(lambda v: {"s3": v}),
        hugging_face.map(lambda v: {"huggingFace": v}),
        pvc.map(lambda v: {"pvc": v}),
    )


@functools.cache
def phases() -> Strategy[Spec]:
    return _opt(
        {
            "epochs": st.integers(1, 100),
            "effectiveBatchSize": st.integers(1, 1_000_000),
            "learningRate": st.floats(min_value=0.0, max_value=1.0, exclude_min=True),
        },
        warmupSteps=st.integers(0, 1_000_000),
        attempt=_attempts(),
    )


@functools.cache
def _cpu_offloads() -> Strategy[tuple[str, Spec]]:
    """(backend, cpuOffload): fsdp only while `backend: deepspeed` is refused (no DeepSpeed in
    the train image)."""
    fsdp = _opt(optimizer=st.booleans(), params=st.booleans())
    return st.tuples(st.just("fsdp"), fsdp)


@functools.cache
def _training_settings() -> Strategy[Spec]:
    """Training settings that do not depend on the environment."""
    return _opt(
        resources=_opt(cpu=_quantities(), memory=_quantities()),
        seed=st.integers(0, 2**32 - 1),
        saveSamples=st.integers(0, 10**9),
        checkpointAtEpoch=st.booleans(),
        flashAttention=st.sampled_from(["auto", "on", "off"]),
        checkpoints=_opt(fullState=st.sampled_from(["none", "last", "everyEpoch"])),
        knowledge=phases(),
        skills=phases(),
    )


@st.composite
def _trainings(draw: st.DrawFn, gpus: int, single_node: bool, nodes: int) -> Spec:
    out: Spec = {"nprocPerNode": draw(st.integers(1, gpus if gpus > 0 else 16))}
    if draw(st.booleans()):  # else the environment's gpu.nodes
        out["nnodes"] = 1 if single_node else draw(st.integers(1, nodes))
    backend, offload = draw(_cpu_offloads())
    if draw(st.booleans()):
        out["backend"] = backend
    if draw(st.booleans()):
        out["cpuOffload"] = offload
    # maxBatchLen (default 5000) must stay >= maxSeqLen (default 4096).
    max_seq = draw(st.one_of(st.none(), st.integers(128, 1_048_576)))
    max_batch = draw(st.one_of(st.none(), st.integers(max_seq or 4096, 10_000_000)))
    if max_batch is None and (max_seq or 0) > 5000:
        max_batch = max_seq
    if max_seq is not None:
        out["maxSeqLen"] = max_seq
    if max_batch is not None:
        out["maxBatchLen"] = max_batch
    out.update(draw(_training_settings()))
    return out


@functools.cache
def trainings(env_name: str) -> Strategy[Spec]:
    """Training settings that fit the environment (GPUs per node, storage access mode)."""
    env = environment(env_name)
    return _trainings(
        env.spec.gpu.perNode, env.spec.storage.accessMode == "ReadWriteOnce", env.spec.gpu.nodes
    )


@functools.cache
def evaluations() -> Strategy[Spec]:
    return _opt(
        {"judgeSecretRef": secret_ref()},
        caBundle=key_refs(),
        mtBench=_opt(
            maxWorkers=_auto_or_int(), mergeSystemUserMessage=st.booleans(), attempt=_attempts()
        ),
        final=_opt(
            maxWorkers=_auto_or_int(),
            mergeSystemUserMessage=st.booleans(),
            fewShots=st.integers(0, 25),
            batchSize=_auto_or_int(),
            taxonomyBaseBranch=_branches(),
            attempt=_attempts(),
        ),
    )


@functools.cache
def publishes() -> Strategy[Spec]:
    revision = st.builds(
        lambda a, b: a + b,
        st.sampled_from(string.ascii_letters + string.digits + "_"),
        st.text(alphabet=string.ascii_letters + string.digits + "_.-", max_size=30),
    )
    return _opt(
        huggingFace=_opt(
            {"repo": _repo_ids(), "revision": revision, "tokenSecretRef": key_refs()},
            private=st.booleans(),
        ),
        github=_opt(commentOnPullRequests=st.booleans(), createRelease=st.booleans()),
        attempt=_attempts(),
    )


@functools.cache
def run_specs(env_name: str) -> Strategy[Spec]:
    """Valid PipelineRun documents (plain data, as read from YAML) for one environment."""
    env = environment(env_name)
    taxonomy = _opt(
        {
            "repoUrl": _word(_REPO_CHARS + "/", 40).map(lambda p: f"https://{p}"),
            "commit": _hex(40),
        },
        pullRequests=pull_requests(),
        credentialsSecretRef=secret_ref(),
    )
    required = {
        "environment": st.just(env_name),
        "baseModel": base_models(),
        "sdgData": _opt({"secretRef": secret_ref()}, sha256=_hex(64), attempt=_attempts()),
        "taxonomy": taxonomy,
        "evaluation": evaluations(),
        "output": _opt({"secretRef": secret_ref()}, prefix=_non_blank(40), attempt=_attempts()),
    }
    optional = {"attempt": _attempts(), "publish": publishes()}
    # The default topology (gpu.nodes nodes x 2 processes) fits only some environments.
    gpus = env.spec.gpu.perNode
    fits_nodes = env.spec.storage.accessMode == "ReadWriteMany" or env.spec.gpu.nodes == 1
    if fits_nodes and (gpus == 0 or gpus >= 2):
        optional["training"] = trainings(env_name)
    else:
        required["training"] = trainings(env_name)
    return st.builds(
        lambda name, spec: {
            "apiVersion": "gitops.instructlab.ai/v1alpha1",
            "kind": "PipelineRun",
            "metadata": {"name": name},
            "spec": spec,
        },
        run_names(),
        _opt(required, **optional),
    )


@functools.cache
def specs_and_environments() -> Strategy[tuple[Spec, Environment]]:
    """A spec document and the reference environment it names."""
    pairs = [
        st.tuples(run_specs(env.metadata.name), st.just(env)) for env in reference_environments()
    ]
    return st.one_of(pairs)


@functools.cache
def runs_and_environments() -> Strategy[tuple[PipelineRun, Environment]]:
    """A validated run and its environment."""
    return specs_and_environments().map(lambda p: (PipelineRun.model_validate(p[0]), p[1]))


# --------------------------------------------------------------------------- editing specs


def set_path(data: Spec, path: tuple[str, ...], value: Any, complete: Spec) -> Spec:
    """A deep copy of `data` with `value` at `path`.

    A mapping on the way that `data` leaves out (defaults) is copied from `complete`, the
    same spec with every default spelled out (`model_dump(mode="json")`).
    """
    out: Spec = _deep_copy(data)
    node, full = out, complete
    for key in path[:-1]:
        full = full[key]
        if key not in node:
            node[key] = _deep_copy(full)
        node = node[key]
    node[path[-1]] = value
    return out


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def reversed_keys(value: Any) -> Any:
    """`value` with every mapping's keys in reverse insertion order (same content)."""
    if isinstance(value, dict):
        return {k: reversed_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_keys(v) for v in value]
    return value
