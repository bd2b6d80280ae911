"""A short, derandomized fuzzing campaign over loader + validator + compiler + renderer.

The target and the mutators live in `bench/fuzz.py`, whose long run is
`.venv/bin/python bench/fuzz.py --minutes 10`. Here: a fixed set of mutated and random
inputs, hostile inputs found before, and checks that the checks themselves can fail.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from bench.fuzz import (
    INPUT_NAME,
    ROOT,
    CliBox,
    FuzzFailure,
    InputTimeout,
    Stats,
    check_cli,
    check_diagnostic,
    exercise,
    fuzz_inputs,
    load_corpus,
    make_target,
    peak_rss_mib,
    time_limit,
)
from hypothesis import HealthCheck, Phase, given, note, settings

from ilab_gitops.diagnostics import Diagnostic
from ilab_gitops.load.sources import MAX_DEPTH, MAX_STRING_CHARS

#: Seconds one small input may take through the whole pipeline (a hang, otherwise).
LIMIT_S = 1.0
CORPUS = load_corpus()
STATS = Stats()
TARGET = make_target(CORPUS, STATS, limit_s=LIMIT_S, max_rss_mib=peak_rss_mib() + 512)
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,  # the per-input limit above is the hang check
    suppress_health_check=list(HealthCheck),
    phases=[Phase.generate, Phase.shrink],
)


@settings(FUZZ, max_examples=700)
@given(fuzz_inputs(CORPUS))
def _campaign(raw: bytes) -> None:
    note(f"input ({len(raw)} bytes): {raw[:3000]!r}")
    TARGET(raw)


def test_pipeline_survives_mutated_and_random_documents() -> None:
    """The fixed campaign, then its non-vacuity: it produced load errors, invalid specs and
    compiled runs (checked here, so no test order or `-k` can skip the check)."""
    _campaign()
    assert STATS.examples >= 700, STATS.examples
    assert {"load-error", "invalid", "compiled"} <= set(STATS.outcomes), STATS.outcomes


@pytest.mark.parametrize("index", range(len(CORPUS.seeds)))
def test_every_seed_file_goes_through_cleanly(index: int) -> None:
    TARGET(CORPUS.seeds[index])


def test_command_line_never_crashes_on_mutated_documents(tmp_path: Path) -> None:
    box = CliBox.create(tmp_path)

    @settings(FUZZ, max_examples=25)
    @given(fuzz_inputs(CORPUS))
    def run(raw: bytes) -> None:
        note(f"input ({len(raw)} bytes): {raw[:3000]!r}")
        with time_limit(10 * LIMIT_S):
            check_cli(box, raw)

    run()


# --------------------------------------------------------------------------- hostile inputs

#: Inputs that once crashed, hung or were mis-reported (found by fuzzing or by hand). A new
#: one is added here, marked xfail(strict) while its fix is open; once fixed it also gets a
#: case in tests/invalid/ (e.g. hex-number-too-large, huge-number).
HOSTILE: dict[str, bytes] = {
    "control-character-first": b"\x03",
    "python-tag": b"a: !!python/object/apply:os.system [echo]\n",
    "bad-float-tag": b"a: !!float abc\n",
    "bad-timestamp-tag": b"a: !!timestamp abc\n",
    "deep-flow-nesting": b"a: " + b"[" * 30_000 + b"]" * 30_000 + b"\n",
    "unclosed-deep-nesting": b"a: " + b"[" * 60_000 + b"\n",
    "deep-block-nesting": b"".join(b" " * i + b"a:\n" for i in range(MAX_DEPTH + 5)),
    "alias-bomb": b"\n".join(
        [b"a: &a [" + b"x, " * 99 + b"x]"]
        + [b"%c: &%c [%s]" % (c, c, b", ".join([b"*%c" % (c - 1)] * 100)) for c in b"bcdef"]
    ),
    "string-at-limit": "a: {}\n".format("é" * MAX_STRING_CHARS).encode(),
    "decimal-int-4301-digits": b"n: " + b"9" * 4301 + b"\n",
    "hex-int-past-repr-limit": b"apiVersion: 0x" + b"f" * 3600 + b"\nkind: PipelineRun\n",
    "hex-int-in-a-valid-run": (ROOT / "spec" / "examples" / "minimal.yaml")
    .read_bytes()
    .replace(b"nprocPerNode: 1\n", b"nprocPerNode: 1\n    saveSamples: 0x" + b"f" * 3600 + b"\n"),
    "long-lowercase-strings": b"kind: PipelineRun\nspec:\n"
    + b"".join(b"  k%d: %s\n" % (i, b"a" * MAX_STRING_CHARS) for i in range(4)),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_input_gets_a_located_diagnostic_quickly(case: str) -> None:
    TARGET(HOSTILE[case])


# --------------------------------------------------------------------------- the checks can fail


def test_time_limit_interrupts_a_hang() -> None:
    started = time.perf_counter()
    with pytest.raises(InputTimeout), time_limit(0.05):
        while True:
            pass
    assert time.perf_counter() - started < 1


@pytest.mark.parametrize(
    ("line", "column", "code", "message"),
    [
        (0, 1, "yaml-syntax", "x"),
        (99, 1, "yaml-syntax", "x"),
        (1, 0, "yaml-syntax", "x"),
        (1, 1, "Bad Code", "x"),
        (1, 1, "yaml-syntax", "two\nlines"),
        (1, 1, "yaml-syntax", " "),
    ],
)
def test_a_malformed_diagnostic_is_a_failure(
    line: int, column: int, code: str, message: str
) -> None:
    diagnostic = Diagnostic(INPUT_NAME, line, column, code, "", message)
    with pytest.raises(FuzzFailure):
        check_diagnostic(diagnostic, b"a: 1\n")


def test_every_valid_seed_is_compiled() -> None:
    valid = sorted((ROOT / "spec" / "examples").glob("*.yaml"))
    valid += sorted((ROOT / "environments").glob("*.yaml"))
    assert valid
    for path in valid:
        assert exercise(path.read_bytes(), CORPUS) == "compiled", path
