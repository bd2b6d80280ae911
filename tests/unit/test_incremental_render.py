"""`render` into an existing tree rewrites only the run folders that change, each swapped whole.

Killed at every file-system call of an update (in a forked copy of this process), each run
folder on disk is its old or its new version and each index file its old or new text; the
next render then leaves exactly the new tree and nothing beside it.
"""

from __future__ import annotations

import copy
import os
import shutil
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from ilab_gitops.cli import core
from ilab_gitops.emit import incremental, output, parallel
from ilab_gitops.emit.output import read_tree, survey, write_tree
from ilab_gitops.emit.parallel import Pair, render_runs
from ilab_gitops.emit.render import INDEX_FILE, merge_rendered, owner_folder
from ilab_gitops.spec.pipeline_run import PipelineRun
from tests.security.pods import ROOT
from tests.security.specs import write_runs
from tests.support.specs import ENVIRONMENTS, EXAMPLES, load_environment, load_run
from tests.unit.test_atomic_render import KILLED, crash_in_child, leftovers

ENVS = [load_environment(p) for p in ENVIRONMENTS]
ENV_NAMES = sorted(e.metadata.name for e in ENVS)


def pairs(names: range, changed: tuple[int, ...] = ()) -> list[Pair]:
    """Runs `run-<i>` of the minimal example; the first of `changed` re-runs every step, the
    others only their publish step."""
    base = load_run(EXAMPLES[0]).model_dump(mode="json")
    out = []
    for i in names:
        data = copy.deepcopy({**base, "metadata": {"name": f"run-{i:02d}"}})
        if changed and i == changed[0]:
            data["spec"]["attempt"] = 1
        elif i in changed:
            data["spec"]["publish"]["attempt"] = 1
        out.append((PipelineRun.model_validate(data), ENVS[i % len(ENVS)]))
    return out


def tree_of(batch: list[Pair]) -> dict[str, str]:
    merged = merge_rendered({}, render_runs(batch), environments=ENV_NAMES, prune=True)
    return {path: text for path, text in merged.items() if isinstance(text, str)}


OLD_PAIRS = pairs(range(6))
#: run-00 and run-01 dropped, run-02 changed in every step and run-03 in its last,
#: run-04 and run-05 as they were, run-06 to run-08 new.
NEW_PAIRS = pairs(range(2, 9), changed=(2, 3))


def update(root: Path, batch: list[Pair], *, prune: bool = True) -> int:
    present = survey(root)
    assert incremental.supported(root, present)
    return core._update(str(root), batch, survey(root), ENV_NAMES, prune=prune)


def by_unit(files: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Files grouped by run folder; each loose file (an index) is a unit of its own."""
    units: dict[str, dict[str, str]] = {}
    for path, text in files.items():
        folder = owner_folder(path)
        units.setdefault(folder or path, {})[path] = text
    return units


def test_only_changed_runs_are_rewritten(tmp_path: Path) -> None:
    root = tmp_path / "rendered"
    write_tree(root, tree_of(OLD_PAIRS))
    before = {p: os.stat(root / p) for p in read_tree(root)}
    assert update(root, NEW_PAIRS) == core.EXIT_OK
    assert read_tree(root) == tree_of(NEW_PAIRS)
    after = {p: os.stat(root / p) for p in read_tree(root)}
    kept = {p for p in after if p in before and after[p].st_ino == before[p].st_ino}
    for path, st in after.items():
        run = path.split("/")[1] if path.count("/") > 1 else ""
        if run in ("run-04", "run-05"):  # unchanged runs: same inode and mtime
            assert path in kept and st.st_mtime_ns == before[path].st_mtime_ns, path
        elif run.startswith("run-0") and run >= "run-06":
            assert path not in before
    # A changed run gets a new folder; its unchanged files are links to the old ones.
    everything = [p for p in after if "/run-02/" in p]
    assert everything and not any(p in kept for p in everything)
    last = sorted(p for p in after if "/run-03/" in p)
    assert [p in kept for p in last if "/flux/" not in p] == [True] * 6 + [False]
    assert not any((root / e / f"run-0{i}").exists() for e in ENV_NAMES for i in (0, 1))
    assert leftovers(root) == []


def test_a_second_render_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "rendered"
    write_tree(root, tree_of(NEW_PAIRS))
    before = {p: os.stat(root / p).st_ino for p in read_tree(root)}
    update(root, NEW_PAIRS)
    assert {p: os.stat(root / p).st_ino for p in read_tree(root)} == before
    assert f"({len(NEW_PAIRS) - len(NEW_PAIRS)} written, {len(NEW_PAIRS)} unchanged)" in (
        capsys.readouterr().err
    )


def test_without_prune_other_run_folders_are_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "rendered"
    old = tree_of(OLD_PAIRS)
    write_tree(root, old)
    foreign = root / ENV_NAMES[0] / "hand-made"
    foreign.mkdir()
    (foreign / "notes.yaml").write_text("kept: true\n")
    inode = os.stat(foreign / "notes.yaml").st_ino
    update(root, NEW_PAIRS[:1], prune=False)
    on_disk = read_tree(root)
    assert on_disk[f"{ENV_NAMES[0]}/hand-made/notes.yaml"] == "kept: true\n"
    assert os.stat(foreign / "notes.yaml").st_ino == inode
    for path, text in old.items():  # runs not rendered this time keep their files
        if "/run-00/" in path or "/run-05/" in path:
            assert on_disk[path] == text


def test_pruning_reports_and_removes_what_no_spec_renders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "rendered"
    write_tree(root, tree_of(OLD_PAIRS))
    env = ENVS[2 % len(ENVS)].metadata.name
    stray = root / env / "run-02" / "stray.yaml"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_text("x: 1\n")
    (root / "old-layout" / "01-step").mkdir(parents=True)
    (root / "old-layout" / "01-step" / "manifests.yaml").write_text("a: 1\n")
    (root / ENV_NAMES[1] / "empty").mkdir(parents=True)
    update(root, NEW_PAIRS)
    assert read_tree(root) == tree_of(NEW_PAIRS)
    assert not (root / "old-layout").exists() and not (root / ENV_NAMES[1] / "empty").exists()
    err = capsys.readouterr().err
    assert f"removed {root}/old-layout/: not the folder of an environment" in err
    assert f"removed {root}/{env}/run-02/stray.yaml: not written by the compiler" in err


def test_without_an_atomic_exchange_the_whole_tree_is_swapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "rendered"
    write_tree(root, tree_of(OLD_PAIRS))
    monkeypatch.setattr(output, "_exchange", lambda a, b: False)
    assert not incremental.supported(root, survey(root))
    assert leftovers(root) == []  # the probe (`.rendered.new-probe-*`) is removed


def test_a_tree_with_links_is_not_updated_in_place(tmp_path: Path) -> None:
    root = tmp_path / "rendered"
    write_tree(root, tree_of(OLD_PAIRS))
    (root / "link.yaml").symlink_to("/etc/hostname")
    assert not incremental.supported(root, survey(root))


# ------------------------------------------------------------------- killed at every call

#: Every call by which an update changes the file system.
CALLS: tuple[tuple[Any, str], ...] = (
    (os, "open"),
    (os, "mkdir"),
    (os, "link"),
    (os, "rename"),
    (os, "replace"),
    (os, "unlink"),
    (os, "rmdir"),
    (output, "exchange"),
    (shutil, "rmtree"),
)


def count_calls(action: Callable[[], object], die_at: int | None) -> int:
    """Run `action` with every call in CALLS counted; die just before call number `die_at`."""
    seen = [0]
    originals = {(module, name): getattr(module, name) for module, name in CALLS}
    for (module, name), real in originals.items():

        def patched(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
            seen[0] += 1
            if seen[0] == die_at:
                os._exit(KILLED)
            return _real(*args, **kwargs)

        setattr(module, name, patched)
    try:
        action()
    finally:
        for (module, name), real in originals.items():
            setattr(module, name, real)
    return seen[0]


def _without_flux(batch: list[Pair]) -> list[Pair]:
    """The same runs after their environment stopped using Flux: runs there drop flux/."""
    out = []
    for run, env in batch:
        changed = env
        if "flux" in env.spec.engines:
            spec = env.spec.model_copy(update={"engines": ["argocd"]})
            changed = env.model_copy(update={"spec": spec})
        out.append((run, changed))
    return out


def indexed_flux_folders_exist(root: Path) -> bool:
    """Every `<run>/flux` an environment's index lists is there (else Flux's parent fails)."""
    for index in root.glob(f"*/{INDEX_FILE}"):
        listed = yaml.safe_load(index.read_text())["resources"]
        if not all((index.parent / entry).is_dir() for entry in listed):
            return False
    return True


@pytest.mark.parametrize("flux", ["kept", "dropped"])
def test_update_killed_at_every_call_leaves_each_run_old_or_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flux: str
) -> None:
    target = NEW_PAIRS if flux == "kept" else _without_flux(NEW_PAIRS)
    old, new = tree_of(OLD_PAIRS), tree_of(target)
    # Compiled once: every round below (and every forked child) writes the same files.
    rendered = render_runs(target)
    monkeypatch.setattr(parallel, "iter_render_runs", lambda batch: iter([rendered]))
    old_units, new_units = by_unit(old), by_unit(new)
    pristine = tmp_path / "pristine"
    write_tree(pristine, old)
    root = tmp_path / "rendered"
    shutil.copytree(pristine, root)
    total = count_calls(lambda: update(root, target), None)
    assert read_tree(root) == new and total > 40, total
    mixed = 0
    for die_at in range(1, total + 1):
        shutil.rmtree(root)
        shutil.copytree(pristine, root)

        def killed(n: int = die_at) -> None:
            count_calls(lambda: update(root, target), n)

        status = crash_in_child(killed)
        assert status == KILLED, die_at
        units = by_unit(read_tree(root))
        for unit in set(old_units) | set(new_units) | set(units):
            got = units.get(unit, {})
            assert got in (old_units.get(unit, {}), new_units.get(unit, {})), (die_at, unit)
        assert indexed_flux_folders_exist(root), die_at
        mixed += units not in (old_units, new_units)
        update(root, target)
        assert read_tree(root) == new, die_at
        assert leftovers(root) == [], die_at
    assert mixed > 0, "no kill landed between two run folders"


def _shapes_repo(tmp_path: Path, count: int) -> tuple[Path, Path]:
    repo = tmp_path / "repo"
    write_runs(repo / "runs", count)
    shutil.copytree(ROOT / "environments", repo / "environments")
    out = tmp_path / "rendered"
    code = core.render(
        [repo / "runs"], repo / "environments", str(out), check=False, prune=False, fmt="text"
    )
    assert code == core.EXIT_OK
    return repo, out


def _file_for_folder(folder: str) -> Callable[[Path], None]:
    def plant(out: Path) -> None:
        shutil.rmtree(out / folder)
        (out / folder).write_text("x: 1\n")

    return plant


def _folder_for_file(file: str) -> Callable[[Path], None]:
    def plant(out: Path) -> None:
        (out / file).unlink()
        (out / file / "x").mkdir(parents=True)

    return plant


#: Hostile shapes planted in a rendered tree (kind-dev/zq-run-0000 is a run folder there).
SHAPES: dict[str, Callable[[Path], None]] = {
    "file-for-environment": _file_for_folder("multi-node-gpu"),
    "file-for-run-folder": _file_for_folder("kind-dev/zq-run-0001"),
    "folder-for-root-index": _folder_for_file(INDEX_FILE),
    "folder-for-environment-index": _folder_for_file(f"kind-dev/{INDEX_FILE}"),
    "file-for-step-folder": _file_for_folder("kind-dev/zq-run-0000/01-prepare"),
    "folder-for-step-file": _folder_for_file("kind-dev/zq-run-0000/01-prepare/manifests.yaml"),
}
#: Shapes in the way of a folder or an index: without --prune, exit 2 and nothing written.
LAYOUT = {
    "file-for-environment",
    "file-for-run-folder",
    "folder-for-root-index",
    "folder-for-environment-index",
}


@pytest.mark.parametrize("prune", [False, True], ids=["keep", "prune"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_hostile_shapes_are_replaced_or_refused_never_a_crash(
    tmp_path: Path, shape: str, prune: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file where the compiler makes a folder, or a folder where it writes a file: with
    --prune the tree is rebuilt exactly; without, a run folder is replaced whole, and
    anything in the way of the layout itself is refused (exit 2), nothing written."""
    repo, out = _shapes_repo(tmp_path, 3)
    expected = read_tree(out)
    SHAPES[shape](out)
    planted = read_tree(out)
    capsys.readouterr()
    code = core.render(
        [repo / "runs"], repo / "environments", str(out), check=False, prune=prune, fmt="text"
    )
    err = capsys.readouterr().err
    if shape in LAYOUT and not prune:
        assert code == core.EXIT_INVALID, err
        assert "in the way of the folders and index files render writes" in err
        assert read_tree(out) == planted
    else:
        assert code == core.EXIT_OK, err
        assert read_tree(out) == expected
        assert (out / "kind-dev" / "zq-run-0000" / "01-prepare" / "manifests.yaml").is_file()
    assert leftovers(out) == []


def test_unchanged_files_with_another_mode_are_rewritten(tmp_path: Path) -> None:
    repo, out = _shapes_repo(tmp_path, 3)
    odd = out / "kind-dev" / "zq-run-0000" / "01-prepare" / "manifests.yaml"
    odd.chmod(0o4755)
    code = core.render(
        [repo / "runs"], repo / "environments", str(out), check=False, prune=False, fmt="text"
    )
    assert code == core.EXIT_OK
    assert stat.S_IMODE(odd.stat().st_mode) == 0o644


def test_loose_files_outside_the_layout_are_kept_without_prune(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A README at the top or notes in an environment folder collide with nothing render
    writes: kept, untouched, exit 0 (only --prune removes them)."""
    repo, out = _shapes_repo(tmp_path, 3)
    readme, notes = out / "README.md", out / "kind-dev" / "NOTES.md"
    readme.write_text("# rendered\n")
    notes.write_text("hand-written\n")
    before = {p: os.stat(p) for p in (readme, notes)}
    expected = read_tree(out)
    capsys.readouterr()
    code = core.render(
        [repo / "runs"], repo / "environments", str(out), check=False, prune=False, fmt="text"
    )
    err = capsys.readouterr().err
    assert code == core.EXIT_OK, err
    assert "in the way" not in err
    assert read_tree(out) == expected
    for path, st in before.items():
        now = os.stat(path)
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns), path
    assert leftovers(out) == []


@pytest.mark.parametrize("mode", [0o664, 0o600, 0o444], ids=oct)
def test_unchanged_files_with_a_group_or_private_mode_are_kept(
    tmp_path: Path, mode: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """A checkout under umask 002 or 077: files without execute or special bits are kept."""
    repo, out = _shapes_repo(tmp_path, 3)
    files = sorted(read_tree(out))
    for path in files:
        (out / path).chmod(mode)
    before = {p: os.stat(out / p) for p in files}
    capsys.readouterr()
    code = core.render(
        [repo / "runs"], repo / "environments", str(out), check=False, prune=False, fmt="text"
    )
    err = capsys.readouterr().err
    assert code == core.EXIT_OK, err
    assert "(0 written, 3 unchanged)" in err
    for path, st in before.items():
        now = os.stat(out / path)
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns), path
        assert stat.S_IMODE(now.st_mode) == mode, path


@pytest.mark.parametrize("mode", [0o755, 0o744, 0o2644, 0o1644], ids=oct)
def test_unchanged_executable_or_special_files_are_rewritten(tmp_path: Path, mode: int) -> None:
    repo, out = _shapes_repo(tmp_path, 3)
    odd = out / "kind-dev" / "zq-run-0000" / "01-prepare" / "manifests.yaml"
    odd.chmod(mode)
    code = core.render(
        [repo / "runs"], repo / "environments", str(out), check=False, prune=False, fmt="text"
    )
    assert code == core.EXIT_OK
    assert stat.S_IMODE(odd.stat().st_mode) == 0o644
