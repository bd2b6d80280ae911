"""Fuzz the reading edge and the compiler with random and mutated YAML documents.

Usage:  .venv/bin/python bench/fuzz.py [--minutes 10] [--seed N] [--limit-s 1.0]
            [--max-memory-mib 1024] [--cli-every 25] [--keep-going] [--failures DIR]

Each input goes through parse_yaml -> check_document -> (valid run or environment)
check_run_against_environment -> compile_run -> render_run, the way `ilab-gitops render`
does it. Inputs come from the seed corpus (spec/examples, environments, tests/invalid) and:
  - byte-level mutations: flip, insert, delete bytes; splice, duplicate, swap, indent-shift
    lines; insert tabs, anchors, aliases, tags, directives, odd unicode and huge numbers;
  - structure-aware mutations of the valid seeds: values replaced by other types, huge
    numbers, long strings or deep nesting; keys deleted, renamed or added; then re-dumped
    (and sometimes byte-mutated again);
  - random token soup.

A bug is: any exception except `LoadError`; a diagnostic that is not one located line; a
rendered tree that does not read back as the compiled objects or differs between two
compiles; an input taking longer than --limit-s; memory past --max-memory-mib; a traceback,
internal error or unexpected exit code from the CLI (run in-process every --cli-every inputs).
Hypothesis shrinks a failing input, then lines and bytes are dropped while the same failure
reproduces; the minimal input is printed and saved in --failures ($TMPDIR/ilab-gitops-fuzz),
where current-<pid>.yaml always holds the input in progress (for a crash of the interpreter).
--keep-going collects every distinct failure until time is up. Prints inputs per second every
30 s; exits 1 on a failure, 0 otherwise. Not a test: `tests/unit/test_fuzz.py` runs a short
derandomized campaign of the same target.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import re
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import yaml
from hypothesis import HealthCheck, Phase, given, note, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisWarning

from ilab_gitops.diagnostics import Diagnostic, Format, format_diagnostics
from ilab_gitops.emit.render import render_run
from ilab_gitops.load.sources import MAX_DEPTH, MAX_STRING_CHARS, Document, LoadError, parse_yaml
from ilab_gitops.load.validation import check_document, check_run_against_environment
from ilab_gitops.manifests import compile_run
from ilab_gitops.manifests.model import Manifests
from ilab_gitops.spec.environment import Environment
from ilab_gitops.spec.pipeline_run import PipelineRun

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")
INPUT_NAME = "runs/fuzz.yaml"
FORMATS: tuple[Format, ...] = ("text", "github", "json")
_CODE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# --------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class Corpus:
    """Seed files, the valid seeds as data, and the reference runs and environments."""

    seeds: tuple[bytes, ...]
    documents: tuple[dict[str, Any], ...]
    runs: tuple[tuple[Document, PipelineRun], ...]
    environments: tuple[Environment, ...]
    scalars: tuple[Any, ...]  # every scalar of the valid seeds, to move realistic values around
    keys: tuple[str, ...]  # every key of the valid seeds


def _walk(data: Any) -> Iterator[tuple[str | None, Any]]:
    """(key or None, value) for every node below `data`."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(data, list):
        for item in data:
            yield None, item
            yield from _walk(item)


def load_corpus(root: Path = ROOT) -> Corpus:
    valid = sorted((root / "spec" / "examples").glob("*.yaml"))
    valid += sorted((root / "environments").glob("*.yaml"))
    invalid = sorted(p for p in (root / "tests" / "invalid").rglob("*.y*ml") if p.is_file())
    documents: list[dict[str, Any]] = []
    runs: list[tuple[Document, PipelineRun]] = []
    environments: list[Environment] = []
    for path in valid:
        document = parse_yaml(path.read_bytes(), path.name)
        model, diagnostics = check_document(document)
        if model is None:
            raise RuntimeError(f"seed {path} is not valid: {diagnostics}")
        documents.append(document.data)
        if isinstance(model, PipelineRun):
            runs.append((document, model))
        else:
            environments.append(model)
    nodes = [node for document in documents for node in _walk(document)]
    scalars = {json.dumps(v): v for _, v in nodes if not isinstance(v, dict | list)}
    return Corpus(
        seeds=tuple(p.read_bytes() for p in valid + invalid),
        documents=tuple(documents),
        runs=tuple(runs),
        environments=tuple(environments),
        scalars=tuple(scalars[k] for k in sorted(scalars)),
        keys=tuple(sorted({k for k, _ in nodes if k is not None})),
    )


# --------------------------------------------------------------------------- byte mutations


def _alias_bomb(width: int, levels: int) -> bytes:
    lines = [b"l0: &l0 [" + b", ".join([b"x"] * width) + b"]"]
    for level in range(1, levels):
        items = b", ".join([b"*l%d" % (level - 1)] * width)
        lines.append(b"l%d: &l%d [%s]" % (level, level, items))
    return b"\n".join(lines) + b"\n"


# fmt: off
TOKENS: tuple[bytes, ...] = (
    b"\t", b"  ", b"\n", b"\r\n", b"\r", b": ", b"- ", b"? ", b"#", b",", b"{", b"}", b"[",
    b"]", b"{}", b"[]", b"'", b'"', b"\\", b"|", b"|-\n", b">", b"~", b"null", b"true", b"yes",
    b"&a ", b"*a", b"&a [1, 2]", b"&b {x: 1}", b"*b", b"*undefined", b"<<: *a\n", b"<<: *b\n",
    b"!!str ", b"!!int ", b"!!float ", b"!!bool ", b"!!null ", b"!!binary ", b"!!timestamp ",
    b"!!set ", b"!!omap ", b"!!pairs ", b"!!map ", b"!!seq ", b"!!merge ",
    b"!!python/object/apply:os.system ", b"!custom ", b"!<tag:yaml.org,2002:str> ", b"!<!> ",
    b"---\n", b"...\n", b"--- |\n", b"%YAML 1.1\n", b"%YAML 2.0\n", b"%TAG ! tag:x.org,2000:\n",
    b"0x1F", b"0o17", b"0b101", b"017", b"-0", b"+1", b"1_000", b"1e400", b"-1e400", b".inf",
    b".nan", b"2e-5", b"1.", b"2001-12-14", b"12:30:45", b"9" * 40, b"9" * 4301, b"9" * 5000,
    b"1" * 400 + b".0", b"0x" + b"f" * 3600, b"0o" + b"7" * 4800, b"-" + b"9" * 30,
    b'"\\0"', b'"\\x85"', b'"\\u2028"', b'"\\U0001F600"', b'"\\e"', b'"\\N"', b'"\\_"',
    b"\xef\xbb\xbf", b"\xc2\x85", b"\xc2\xa0", b"\xe2\x80\xa8", b"\xe2\x80\xa9", b"\xe2\x80\xae",
    b"\xe2\x80\x8b", b"\xef\xbf\xbe", b"\xef\xbf\xbf", b"\xf0\x9f\x98\x80", b"\xc3\xa9",
    b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x00", b"\x01", b"\x7f",
    b"\x1b[31m", b"a" * 300, b"a" * (MAX_STRING_CHARS + 1), b"a" * MAX_STRING_CHARS,
    b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
    b"{a: " * (MAX_DEPTH + 1) + b"b" + b"}" * (MAX_DEPTH + 1),
    b"[" * 30_000 + b"]" * 30_000, b"[" * 5_000,
    _alias_bomb(9, 9), _alias_bomb(30, 3),
    b"token: hf_" + b"A" * 34, b"key: AKIA" + b"A" * 16, b"url: https://u:p@host/x",
    b"-----BEGIN RSA PRIVATE KEY-----", b"sk-" + b"a" * 40, b"ghp_" + b"a" * 36,
)
# fmt: on

# (operation, a position or index, an amount, a token index, a byte)
ByteOp = tuple[str, int, int, int, int]
BYTE_OPS = (
    "flip", "insert", "insert-token", "delete", "splice-line", "duplicate-line", "swap-lines",
    "indent", "tab", "truncate", "replace-value", "repeat",
)  # fmt: skip


def _lines(raw: bytes) -> list[bytes]:
    return raw.split(b"\n")


def apply_byte_op(raw: bytes, op: ByteOp, corpus: Corpus) -> bytes:
    """One byte-level mutation; positions are taken modulo the input's size."""
    name, a, b, t, byte = op
    token = TOKENS[t % len(TOKENS)]
    size = len(raw) + 1
    at = a % size
    if name == "flip":
        if not raw:
            return bytes([byte])
        at %= len(raw)
        return raw[:at] + bytes([raw[at] ^ (byte or 1)]) + raw[at + 1 :]
    if name == "insert":
        return raw[:at] + bytes([byte]) * (1 + b % 4) + raw[at:]
    if name == "insert-token":
        return raw[:at] + token + raw[at:]
    if name == "delete":
        return raw[:at] + raw[at + 1 + b % 32 :]
    if name == "truncate":
        return raw[:at]
    if name == "repeat":  # a chunk repeated: long lines, many keys, many list items
        chunk = raw[at : at + 1 + b % 64]
        return raw[:at] + chunk * (2 + byte % 200) + raw[at:]
    lines = _lines(raw)
    i = a % len(lines)
    if name == "splice-line":
        donor = _lines(corpus.seeds[t % len(corpus.seeds)])
        lines.insert(i, donor[b % len(donor)])
    elif name == "duplicate-line":
        lines.insert(i, lines[i])
    elif name == "swap-lines":
        j = b % len(lines)
        lines[i], lines[j] = lines[j], lines[i]
    elif name == "indent":
        shift = b % 9 - 4
        lines[i] = b" " * shift + lines[i] if shift > 0 else lines[i][-shift:]
    elif name == "tab":
        lines[i] = b"\t" + lines[i]
    elif name == "replace-value":
        head, sep, _ = lines[i].partition(b": ")
        lines[i] = head + (sep or b": ") + token
    return b"\n".join(lines)


def byte_ops() -> st.SearchStrategy[ByteOp]:
    return st.tuples(
        st.sampled_from(BYTE_OPS),
        st.integers(0, 1 << 20),
        st.integers(0, 1 << 10),
        st.integers(0, len(TOKENS) - 1),
        st.integers(0, 255),
    )


# --------------------------------------------------------------------------- structure mutations

Loc = tuple[str | int, ...]


def _paths(data: Any, prefix: Loc = ()) -> list[Loc]:
    out: list[Loc] = []
    if isinstance(data, dict):
        for key, value in data.items():
            out.append((*prefix, key))
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            out.append((*prefix, index))
            out.extend(_paths(item, (*prefix, index)))
    return out


def _parent(data: Any, path: Loc) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


def _nest(value: Any, depth: int, kind: int) -> Any:
    for level in range(depth):
        value = [value] if (kind + level) % 2 else {"k": value}
    return value


def _scalars() -> st.SearchStrategy[Any]:
    long_text = st.builds(
        lambda char, n: char * n,
        st.sampled_from(["a", "A", "é", "1", " ", "-", "\u2028", "\U0001f600", "a:b", "\\"]),
        st.sampled_from([2, 63, 64, 254, 1025, 4096, MAX_STRING_CHARS, MAX_STRING_CHARS + 1]),
    )
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from([0, -1, 1, 2**31, 2**32, 2**63, -(2**63), 10**30]),
        st.sampled_from([300, 4299]).map(lambda digits: 10**digits),  # 4300: int() limit
        st.floats(),
        st.sampled_from([1e308, -1e308, 5e-324, 1e-320, 0.1, -0.0]),
        st.text(max_size=40),
        st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
        long_text,
        st.sampled_from(["", "auto", "Always", "~", "null", "yes", "0x10", "1e3", "-1", "1Ti"]),
        st.sampled_from(["https://a:b@example.com/x", "hf_" + "x" * 34, "AKIA" + "Q" * 16]),
    )


def _pick(items: tuple[T, ...]) -> st.SearchStrategy[T]:
    """One of `items`, drawn by index: hypothesis never prints the (large) tuple itself."""
    return st.integers(0, len(items) - 1).map(items.__getitem__)


def _values(corpus: Corpus) -> st.SearchStrategy[Any]:
    realistic = _pick(corpus.scalars)
    nested = st.builds(
        _nest, st.one_of(_scalars(), realistic), st.integers(1, MAX_DEPTH + 4), st.integers(0, 1)
    )
    containers = st.one_of(
        st.lists(st.one_of(_scalars(), realistic), max_size=6),
        st.dictionaries(_pick(corpus.keys), realistic, max_size=4),
        st.dictionaries(st.text(max_size=10), _scalars(), max_size=3),
        st.builds(lambda v, n: [v] * n, realistic, st.sampled_from([2, 100, 501, 5000])),
    )
    return st.one_of(realistic, _scalars(), nested, containers)


def _key(corpus: Corpus) -> st.SearchStrategy[str]:
    return st.one_of(
        _pick(corpus.keys),
        _pick(corpus.keys).map(str.upper),
        _pick(corpus.keys).map(lambda k: k[:-1] or "x"),
        st.text(max_size=12),
        st.sampled_from(["<<", "", " ", "~", "1", "kind", "apiVersion", "x" * 2000]),
    )


@st.composite
def structured_input(draw: st.DrawFn, corpus: Corpus) -> bytes:
    """A valid seed, parsed, changed in a few places, dumped back to YAML."""
    data = copy.deepcopy(draw(_pick(corpus.documents)))
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(data)
        if not paths:
            break
        path = paths[draw(st.integers(0, 1 << 16)) % len(paths)]
        parent = _parent(data, path)
        op = draw(st.sampled_from(["replace", "replace", "delete", "rename", "add", "swap"]))
        if op == "replace":
            parent[path[-1]] = draw(_values(corpus))
        elif op == "delete":
            del parent[path[-1]]
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(_key(corpus))] = parent.pop(path[-1])
        elif op == "add":
            target = parent[path[-1]]
            if isinstance(target, dict):
                target[draw(_key(corpus))] = draw(_values(corpus))
            elif isinstance(target, list):
                target.append(draw(_values(corpus)))
        elif op == "swap":
            other = paths[draw(st.integers(0, 1 << 16)) % len(paths)]
            if other[: len(path)] != path and path[: len(other)] != other:
                other_parent = _parent(data, other)
                parent[path[-1]], other_parent[other[-1]] = (
                    copy.deepcopy(other_parent[other[-1]]),
                    copy.deepcopy(parent[path[-1]]),
                )
    flow = draw(st.sampled_from([False, None, True]))
    text = yaml.safe_dump(
        data,
        sort_keys=draw(st.booleans()),
        default_flow_style=flow,
        allow_unicode=draw(st.booleans()),
        width=draw(st.sampled_from([80, 1 << 20])),
        explicit_start=draw(st.booleans()),
    )
    raw = text.encode("utf-8")
    for byte_op in draw(st.lists(byte_ops(), max_size=2)):
        raw = apply_byte_op(raw, byte_op, corpus)
    return raw


@st.composite
def mutated_input(draw: st.DrawFn, corpus: Corpus) -> bytes:
    raw = draw(_pick(corpus.seeds))
    for op in draw(st.lists(byte_ops(), min_size=1, max_size=6)):
        raw = apply_byte_op(raw, op, corpus)
    return raw


def token_soup() -> st.SearchStrategy[bytes]:
    pieces = st.one_of(_pick(TOKENS[:60]), st.sampled_from([b"a", b"kind", b"spec", b"1", b"\n  "]))
    return st.one_of(st.lists(pieces, max_size=40).map(b"".join), st.binary(max_size=200))


def fuzz_inputs(corpus: Corpus) -> st.SearchStrategy[bytes]:
    return st.one_of(mutated_input(corpus), structured_input(corpus), token_soup())


# --------------------------------------------------------------------------- the target


class FuzzFailure(AssertionError):
    """The target misbehaved on an input (beyond raising an unexpected exception)."""


class InputTimeout(FuzzFailure):
    pass


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise `InputTimeout` inside the block after `seconds` (main thread: SIGALRM)."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise InputTimeout(f"input took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_diagnostic(diagnostic: Diagnostic, raw: bytes) -> None:
    """A diagnostic is one located line with a stable code, in every output format."""
    lines = raw.count(b"\n") + raw.count(b"\r") + 2
    problems = []
    if diagnostic.path != INPUT_NAME:
        problems.append("wrong path")
    if not 1 <= diagnostic.line <= lines or diagnostic.column < 1:
        problems.append(f"position {diagnostic.line}:{diagnostic.column} outside the file")
    if not _CODE.match(diagnostic.code):
        problems.append(f"code {diagnostic.code!r}")
    if not diagnostic.message.strip() or any(c in diagnostic.message for c in "\n\r"):
        problems.append("message empty or not one line")
    if problems:
        raise FuzzFailure(f"bad diagnostic ({', '.join(problems)}): {diagnostic!r}")
    for fmt in FORMATS:
        format_diagnostics([diagnostic], fmt)


def _objects(manifests: Manifests) -> list[dict[str, Any]]:
    return [*manifests.objects(), *manifests.flux]


def check_rendered(manifests: Manifests, again: Manifests) -> None:
    """Rendered files read back as exactly the compiled objects, and compiling is stable."""
    files = render_run(manifests)
    if render_run(again) != files:
        raise FuzzFailure("two compiles of the same input render different bytes")
    read_back = [
        doc
        for path, text in files.items()
        if not path.endswith("kustomization.yaml")
        for doc in yaml.load_all(text, Loader=_YAML_LOADER)
    ]
    canonical = sorted(json.dumps(o, sort_keys=True) for o in read_back)
    if canonical != sorted(json.dumps(o, sort_keys=True) for o in _objects(manifests)):
        raise FuzzFailure("rendered YAML does not read back as the compiled objects")
    if any(o.get("kind") == "Secret" for o in read_back):
        raise FuzzFailure("a Secret was rendered")


def exercise(raw: bytes, corpus: Corpus) -> str:
    """Run one input through the pipeline; return its outcome, raise on a bug."""
    try:
        document = parse_yaml(raw, INPUT_NAME)
    except LoadError as err:
        check_diagnostic(err.diagnostic, raw)
        return "load-error"
    model, diagnostics = check_document(document)
    for diagnostic in diagnostics:
        check_diagnostic(diagnostic, raw)
    if model is None:
        if not diagnostics:
            raise FuzzFailure("invalid document without a diagnostic")
        return "invalid"
    if diagnostics and any(d.severity == "error" for d in diagnostics):
        raise FuzzFailure(f"a model was returned despite errors: {diagnostics}")
    if isinstance(model, PipelineRun):
        pairs = [(document, model, env) for env in corpus.environments]
    else:
        pairs = [(run_document, run, model) for run_document, run in corpus.runs]
    checked = False
    for run_document, run, env in pairs:
        problems = check_run_against_environment(run_document, run, env)
        for diagnostic in problems if run_document is document else ():
            check_diagnostic(diagnostic, raw)
        if problems:
            continue
        manifests = compile_run(run, env)
        if not checked:  # the full read-back once per input: it costs more than compiling
            check_rendered(manifests, compile_run(run, env))
            checked = True
        else:
            render_run(manifests)
    return "compiled" if checked else "valid"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def limit_memory(extra_mib: float) -> None:
    """Make allocations past the current address space + `extra_mib` raise MemoryError."""
    status = Path("/proc/self/status")
    match = re.search(r"VmSize:\s+(\d+) kB", status.read_text()) if status.exists() else None
    if match is None:
        return
    soft = int(match.group(1)) * 1024 + int(extra_mib * 2**20)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


# --------------------------------------------------------------------------- the CLI


@dataclass
class CliBox:
    """A scratch runs repo for in-process CLI runs."""

    root: Path

    @classmethod
    def create(cls, root: Path) -> CliBox:
        shutil.copytree(ROOT / "environments", root / "environments")
        (root / "runs").mkdir()
        return cls(root)

    def run(self, raw: bytes, *args: str) -> tuple[int, str]:
        """Exit code and stderr of `ilab-gitops <args>` with `raw` as runs/fuzz.yaml."""
        from ilab_gitops.cli import typer_app as cli

        (self.root / INPUT_NAME).write_bytes(raw)
        argv = [str(self.root / a) if a in ("runs", "environments", "out") else a for a in args]
        err, out = io.StringIO(), io.StringIO()
        saved = sys.argv
        sys.argv = ["ilab-gitops", *argv]
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                cli.main()
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 1
        finally:
            sys.argv = saved
        return code, err.getvalue()


def check_cli(box: CliBox, raw: bytes) -> None:
    """`validate` and `render` exit 0 or 2, with no traceback or internal error."""
    for args in (
        ("validate", "runs", "--environments", "environments", "--format", "github"),
        ("render", "runs", "--environments", "environments", "--out", "out", "--format", "text"),
    ):
        code, stderr = box.run(raw, *args)
        if code not in (0, 2) or "Traceback" in stderr or "internal error" in stderr:
            raise FuzzFailure(f"`ilab-gitops {args[0]}` exited {code}: {stderr[-2000:]}")


# --------------------------------------------------------------------------- campaign


@dataclass
class Stats:
    examples: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    last: bytes = b""
    slowest: float = 0.0


def make_target(
    corpus: Corpus,
    stats: Stats,
    *,
    limit_s: float,
    max_rss_mib: float,
    box: CliBox | None = None,
    cli_every: int = 0,
) -> Callable[[bytes], None]:
    """The per-input check shared by the test and the campaign."""

    def target(raw: bytes) -> None:
        stats.last = raw
        stats.examples += 1
        started = time.perf_counter()
        with time_limit(limit_s):
            outcome = exercise(raw, corpus)
            if box is not None and cli_every and stats.examples % cli_every == 0:
                check_cli(box, raw)
        stats.slowest = max(stats.slowest, time.perf_counter() - started)
        stats.outcomes[outcome] += 1
        if peak_rss_mib() > max_rss_mib:
            raise FuzzFailure(f"peak RSS {peak_rss_mib():.0f} MiB > {max_rss_mib:.0f} MiB")

    return target


def signature(err: BaseException) -> str:
    """What kind of failure this is: the exception type and where it was raised."""
    frames = traceback.extract_tb(err.__traceback__)
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    if isinstance(err, FuzzFailure):
        return f"{type(err).__name__}: {str(err).split(':')[0]}"
    return f"{type(err).__name__} at {where}"


def failure_of(target: Callable[[bytes], None], raw: bytes) -> str | None:
    """The signature of the failure `raw` causes, or None when it passes."""
    try:
        target(raw)
    except Exception as err:
        return signature(err)
    return None


def minimize(
    target: Callable[[bytes], None], raw: bytes, wanted: str, budget_s: float = 60.0
) -> bytes:
    """Drop lines, then shrinking chunks of bytes, while the same failure reproduces."""
    deadline = time.monotonic() + budget_s

    def same(trial: bytes) -> bool:
        return time.monotonic() < deadline and failure_of(target, trial) == wanted

    lines = raw.split(b"\n")
    i = 0
    while i < len(lines) and len(lines) > 1 and time.monotonic() < deadline:
        if same(b"\n".join(lines[:i] + lines[i + 1 :])):
            del lines[i]
        else:
            i += 1
    raw = b"\n".join(lines)
    chunk = max(1, len(raw) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        at = 0
        while at < len(raw) and time.monotonic() < deadline:
            if same(raw[:at] + raw[at + chunk :]):
                raw = raw[:at] + raw[at + chunk :]
            else:
                at += chunk
        chunk //= 2
    return raw


def run_batch(
    target: Callable[[bytes], None], corpus: Corpus, examples: int, batch_seed: int
) -> None:
    @seed(batch_seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(fuzz_inputs(corpus))
    def batch(raw: bytes) -> None:
        note(f"input ({len(raw)} bytes): {raw[:3000]!r}")
        target(raw)

    batch()


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--batch", type=int, default=500, help="examples per hypothesis run")
    parser.add_argument("--limit-s", type=float, default=1.0, help="time limit per input")
    parser.add_argument("--max-memory-mib", type=float, default=1024.0)
    parser.add_argument("--cli-every", type=int, default=25, help="0: never run the CLI")
    parser.add_argument(
        "--keep-going", action="store_true", help="collect distinct failures until time is up"
    )
    parser.add_argument(
        "--failures", type=Path, default=Path(tempfile.gettempdir()) / "ilab-gitops-fuzz"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    warnings.filterwarnings("ignore", category=HypothesisWarning)  # "overly large repr"

    corpus = load_corpus()
    stats = Stats()
    max_rss = peak_rss_mib() + args.max_memory_mib
    limit_memory(args.max_memory_mib * 2)  # a hard stop well past the reported limit
    args.failures.mkdir(parents=True, exist_ok=True)
    current = args.failures / f"current-{os.getpid()}.yaml"  # campaigns may run side by side
    print(
        f"fuzzing for {args.minutes:g} min, seed {args.seed}, {len(corpus.seeds)} seed files; "
        f"should the interpreter itself die, its input is in {current}",
        flush=True,
    )
    deadline = time.monotonic() + args.minutes * 60
    started = time.monotonic()
    report_at = started + 30
    found: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="ilab-fuzz-") as scratch:
        box = CliBox.create(Path(scratch))
        checked = make_target(
            corpus,
            stats,
            limit_s=args.limit_s,
            max_rss_mib=max_rss,
            box=box,
            cli_every=args.cli_every,
        )

        def target(raw: bytes) -> None:
            current.write_bytes(raw)
            try:
                checked(raw)
            except Exception as err:
                if signature(err) not in found:
                    raise
                stats.outcomes["known-failure"] += 1

        batch_seed = args.seed
        while time.monotonic() < deadline:
            try:
                run_batch(target, corpus, args.batch, batch_seed)
            except Exception as err:  # hypothesis re-ran the shrunk example last
                kind = signature(err)
                raw = minimize(checked, stats.last, kind)
                found[kind] = raw
                saved = args.failures / f"failure-{os.getpid()}-{len(found)}.yaml"
                _report_failure(err, kind, raw, saved)
                if not args.keep_going:
                    break
            batch_seed += 1
            if time.monotonic() >= report_at:
                report_at += 30
                _progress(stats, time.monotonic() - started)
    _progress(stats, time.monotonic() - started)
    print(f"{len(found)} distinct failure(s)" if found else "no failures", flush=True)
    return 1 if found else 0


def _report_failure(err: BaseException, kind: str, raw: bytes, saved: Path) -> None:
    saved.write_bytes(raw)
    print(f"\nFAILURE {kind}\n{type(err).__name__}: {str(err)[:1500]}", file=sys.stderr)
    print(f"minimal input ({len(raw)} bytes), saved to {saved}:", file=sys.stderr)
    print(repr(raw[:2000]), file=sys.stderr, flush=True)


def _progress(stats: Stats, elapsed: float) -> None:
    rate = stats.examples / elapsed if elapsed else 0.0
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(stats.outcomes.items()))
    print(
        f"{stats.examples} inputs in {elapsed:.0f} s: {rate:.0f} inputs/s ({outcomes}); "
        f"slowest {stats.slowest * 1000:.0f} ms, peak RSS {peak_rss_mib():.0f} MiB",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
