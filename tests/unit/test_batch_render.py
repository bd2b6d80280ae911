"""A large render runs in forked workers (`emit.batch`), first or in place; its result, its
diagnostics and its exit code are exactly those of the serial path, for valid and invalid
batches alike, and nothing is written when anything is wrong."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from ilab_gitops.cli import core
from ilab_gitops.emit import batch, parallel
from ilab_gitops.emit.output import read_tree
from ilab_gitops.load.workspace import find_files
from tests.security.pods import ROOT
from tests.security.specs import write_runs

pytestmark = pytest.mark.skipif(
    "fork" not in parallel._start_methods(), reason="needs the fork start method"
)
COUNT = parallel.PARALLEL_MIN_RUNS + 6


def edit(path: Path, change: Callable[[dict[str, object]], None]) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def rename(name: str) -> Callable[[dict[str, object]], None]:
    def change(data: dict[str, object]) -> None:
        data["metadata"] = {"name": name}

    return change


def set_spec(key: str, value: object) -> Callable[[dict[str, object]], None]:
    def change(data: dict[str, object]) -> None:
        spec = data["spec"]
        assert isinstance(spec, dict)
        spec[key] = value

    return change


def no_change(runs: Path, envs: Path) -> None:
    pass


def duplicate(runs: Path, envs: Path) -> None:
    edit(runs / "zq-run-0007.yaml", rename("zq-run-0003"))


def duplicate_in_another_environment(runs: Path, envs: Path) -> None:
    edit(runs / "zq-run-0008.yaml", set_spec("environment", "multi-node-gpu"))
    edit(runs / "zq-run-0008.yaml", rename("zq-run-0009"))


def unknown_environment(runs: Path, envs: Path) -> None:
    edit(runs / "zq-run-0011.yaml", set_spec("environment", "kind-devv"))


def invalid_run_with_unknown_environment(runs: Path, envs: Path) -> None:
    edit(runs / "zq-run-0012.yaml", set_spec("environment", "nowhere"))
    edit(runs / "zq-run-0012.yaml", set_spec("attempt", "one"))


def invalid_environment(runs: Path, envs: Path) -> None:
    path = envs / "kind-dev.yaml"
    path.write_text(path.read_text().replace("namespace:", "namespace: kube-system\n  x:", 1))


def broken_yaml(runs: Path, envs: Path) -> None:
    (runs / "zq-run-0020.yaml").write_text("spec: [\n")


def environment_among_runs(runs: Path, envs: Path) -> None:
    shutil.copy(envs / "kind-dev.yaml", runs / "aa-environment.yaml")


def changed_attempt(runs: Path, envs: Path) -> None:
    edit(runs / "zq-run-0030.yaml", set_spec("attempt", 2))


CASES = [
    no_change,
    duplicate,
    duplicate_in_another_environment,
    unknown_environment,
    invalid_run_with_unknown_environment,
    invalid_environment,
    broken_yaml,
    environment_among_runs,
    changed_attempt,
]


def _render(
    repo: Path, out: Path, capsys: pytest.CaptureFixture[str], *, prune: bool = False
) -> tuple[int, str]:
    code = core.render(
        [repo / "runs"], repo / "environments", str(out), check=False, prune=prune, fmt="text"
    )
    return code, capsys.readouterr().err.replace(str(out), "OUT")


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    write_runs(repo / "runs", COUNT)
    shutil.copytree(ROOT / "environments", repo / "environments")
    return repo


def _spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[batch.Result | None]:
    """Record what `batch.<name>` returned (None: it left the work to the serial path)."""
    used: list[batch.Result | None] = []
    real = getattr(batch, name)

    def spy(*args: object, **kwargs: object) -> batch.Result | None:
        result: batch.Result | None = real(*args, **kwargs)
        used.append(result)
        return result

    monkeypatch.setattr(batch, name, spy)
    return used


def _workers(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """3 workers: the batch path; 1: the serial path (`batch` declines below 2)."""
    monkeypatch.setattr(parallel, "worker_count", lambda: count)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_parallel_first_render_equals_serial(
    tmp_path: Path,
    case: Callable[[Path, Path], None],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = _repo(tmp_path)
    case(repo / "runs", repo / "environments")
    monkeypatch.chdir(repo)
    used = _spy(monkeypatch, "render")
    _workers(monkeypatch, 3)
    code, err = _render(repo, tmp_path / "parallel", capsys)
    assert len(used) == 1
    assert (used[0] is None) == (case is environment_among_runs)
    _workers(monkeypatch, 1)
    serial_code, serial_err = _render(repo, tmp_path / "serial", capsys)
    assert (code, err) == (serial_code, serial_err)
    if code == core.EXIT_OK:
        assert read_tree(tmp_path / "parallel") == read_tree(tmp_path / "serial")
        assert len(read_tree(tmp_path / "parallel")) > COUNT * 7
    else:
        assert code == core.EXIT_INVALID and "error[" in err
        assert not (tmp_path / "parallel").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) in (
        ["parallel", "repo", "serial"],
        ["repo"],
    )


@pytest.mark.parametrize("prune", [False, True], ids=["keep", "prune"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_parallel_update_in_place_equals_serial(
    tmp_path: Path,
    case: Callable[[Path, Path], None],
    prune: bool,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """From the same existing tree (with a run no spec renders any more), the in-place update
    on workers and the serial one print the same and leave the same tree; on an error the
    tree is as it was."""
    repo = _repo(tmp_path)
    monkeypatch.chdir(repo)
    _workers(monkeypatch, 1)
    for out in ("parallel", "serial"):
        assert _render(repo, tmp_path / out, capsys)[0] == core.EXIT_OK
        stale = tmp_path / out / "kind-dev" / "zq-gone" / "01-prepare"
        stale.mkdir(parents=True)
        (stale / "manifests.yaml").write_text("kind: ConfigMap\n")
    before = read_tree(tmp_path / "serial")
    edit(repo / "runs" / "zq-run-0040.yaml", set_spec("attempt", 5))  # one run changes
    case(repo / "runs", repo / "environments")
    used = _spy(monkeypatch, "update")
    _workers(monkeypatch, 3)
    code, err = _render(repo, tmp_path / "parallel", capsys, prune=prune)
    assert len(used) == 1
    assert (used[0] is None) == (case is environment_among_runs)
    _workers(monkeypatch, 1)
    serial_code, serial_err = _render(repo, tmp_path / "serial", capsys, prune=prune)
    assert (code, err) == (serial_code, serial_err)
    after = read_tree(tmp_path / "parallel")
    assert after == read_tree(tmp_path / "serial")
    if code != core.EXIT_OK:
        assert after == before
    else:
        assert after != before
        assert ("kind-dev/zq-gone/01-prepare/manifests.yaml" in after) is not prune
        assert ("written, " in err and "removed OUT/kind-dev/zq-gone/" in err) or not prune
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parallel", "repo", "serial"]


def test_small_batches_and_existing_trees_take_the_serial_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    write_runs(repo / "runs", 3)
    shutil.copytree(ROOT / "environments", repo / "environments")
    monkeypatch.chdir(repo)
    paths, envs = [repo / "runs"], repo / "environments"
    found = find_files(paths, envs)
    assert not batch.worth_it(found, 4)
    assert batch.render(paths, envs, tmp_path / "out", 4, found) is None
    assert not (tmp_path / "out").exists()
    (tmp_path / "existing").mkdir()
    assert not batch.eligible(tmp_path / "existing")
    assert batch.eligible(tmp_path / "missing")


def test_a_small_render_walks_its_inputs_and_its_output_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The common PR case (a few runs into an existing tree) is not worth workers: the batch
    path must decline before it walks anything, and the serial path walks each folder once."""
    from ilab_gitops.load import treescan

    repo = tmp_path / "repo"
    write_runs(repo / "runs", 3)
    shutil.copytree(ROOT / "environments", repo / "environments")
    monkeypatch.chdir(repo)
    out = tmp_path / "rendered"
    assert _render(repo, out, capsys)[0] == core.EXIT_OK
    walked: list[Path] = []
    real = treescan.walk

    def counting(root: Path) -> treescan.Walk:
        walked.append(Path(root))
        return real(root)

    monkeypatch.setattr(treescan, "walk", counting)
    for module in ("ilab_gitops.load.workspace", "ilab_gitops.emit.output"):
        monkeypatch.setattr(f"{module}.walk", counting)
    _workers(monkeypatch, 3)
    assert _render(repo, out, capsys)[0] == core.EXIT_OK
    assert sorted(walked) == sorted([repo / "runs", repo / "environments", out])


@pytest.mark.parametrize("existing", [False, True], ids=["first", "update"])
def test_too_many_run_files_decline_before_any_worker(
    tmp_path: Path,
    existing: bool,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More run files than `MAX_RUNS`: the batch path declines before forking (nothing is
    compiled or staged) and the serial path reports the limit, as it does alone."""
    from ilab_gitops.load import workspace

    repo = _repo(tmp_path)
    monkeypatch.chdir(repo)
    out = tmp_path / "rendered"
    if existing:
        _workers(monkeypatch, 1)
        assert _render(repo, out, capsys)[0] == core.EXIT_OK
    before = read_tree(out)
    monkeypatch.setattr(workspace, "MAX_RUNS", COUNT - 1)
    forked: list[object] = []

    def no_fork(*args: object) -> list[object]:
        forked.append(args)
        return []

    monkeypatch.setattr(batch, "_run_shares", no_fork)
    _workers(monkeypatch, 3)
    code, err = _render(repo, out, capsys)
    assert code == core.EXIT_INVALID, err
    assert f"{COUNT} runs in one invocation; the limit is {COUNT - 1}" in err
    assert forked == []
    assert read_tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["repo", *(["rendered"] if existing else [])]
    )


@pytest.mark.parametrize("prune", [False, True], ids=["keep", "prune"])
def test_parallel_update_keeps_loose_files_and_refuses_a_file_for_a_run_folder(
    tmp_path: Path,
    prune: bool,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Loose files collide with nothing: the workers update in place and keep them (without
    --prune). A file where a rendered run folder goes: the batch path declines and the
    serial path refuses it (exit 2) or rebuilds the tree (--prune)."""
    repo = _repo(tmp_path)
    monkeypatch.chdir(repo)
    out = tmp_path / "rendered"
    _workers(monkeypatch, 1)
    assert _render(repo, out, capsys)[0] == core.EXIT_OK
    expected = read_tree(out)
    (out / "README.md").write_text("# rendered\n")
    (out / "kind-dev" / "NOTES.md").write_text("notes\n")
    used = _spy(monkeypatch, "update")
    _workers(monkeypatch, 3)
    code, err = _render(repo, out, capsys, prune=prune)
    assert code == core.EXIT_OK, err
    assert used and used[-1] is not None  # rendered by the workers
    loose = {"README.md": "# rendered\n", "kind-dev/NOTES.md": "notes\n"}
    assert read_tree(out) == (expected if prune else {**expected, **loose})
    shutil.rmtree(out / "kind-dev" / "zq-run-0005")
    (out / "kind-dev" / "zq-run-0005").write_text("x: 1\n")
    planted = read_tree(out)
    code, err = _render(repo, out, capsys, prune=prune)
    assert used[-1] is None  # declined after the checks; nothing swapped in
    if prune:
        assert code == core.EXIT_OK, err
        assert read_tree(out) == expected
    else:
        assert code == core.EXIT_INVALID
        assert "OUT/kind-dev/zq-run-0005: in the way of the folders" in err
        assert "README.md" not in err and "NOTES.md" not in err
        assert read_tree(out) == planted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rendered", "repo"]
