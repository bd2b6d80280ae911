"""`render` killed at any point leaves the old tree or the new one, never a mix (in place,
per run folder: see also test_incremental_render.py).

Two ways to kill it:
- in a forked copy of this process, `os._exit` at each step of `write_tree` (after N files,
  right after the swap, between the two renames of the portable path): every window, exactly;
- the real command in a subprocess with a large tree, SIGKILLed while its staging folder fills.
After each kill the tree on disk must equal the old or the new tree byte for byte, and the
next run must leave exactly the new tree with no staging leftovers beside it.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from ilab_gitops.emit import output
from ilab_gitops.emit.output import read_tree, write_tree
from tests.security.pods import ROOT
from tests.security.specs import write_runs

OLD = {
    **{
        f"run-{i:02d}/0{s}-step/manifests.yaml": f"old {i} {s}\n"
        for i in range(6)
        for s in range(3)
    },
    "kustomization.yaml": "resources: [old]\n",
}
NEW = {
    **{
        f"run-{i:02d}/0{s}-step/manifests.yaml": f"new {i} {s}\n"
        for i in range(2, 9)
        for s in range(3)
    },
    "kustomization.yaml": "resources: [new]\n",
}
KILLED = 137


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.parent.glob(f".{root.name}.*"))


def crash_in_child(action: Callable[[], None]) -> int:
    """Run `action` in a forked child (patched there only); its exit status."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child ends in os._exit either way
        try:
            action()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def die() -> None:
    os._exit(KILLED)


Setter = Callable[[object, str, object], None]


def on_staged_file(root: Path, hook: Callable[[int], None], assign: Setter = setattr) -> None:
    """Call `hook(n)` before the n-th file is created in `root`'s staging folder, whichever
    API `write_tree` creates files with (`open`, `io.open`/`Path.open`, `os.open`)."""
    marker = f"{os.sep}.{root.name}.new-"
    count = [0]
    for module, name in ((builtins, "open"), (io, "open"), (os, "open")):
        real = getattr(module, name)

        def patched(path: Any, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
            if isinstance(path, str | bytes | os.PathLike) and marker in os.fsdecode(path):
                count[0] += 1
                hook(count[0])
            return _real(path, *args, **kwargs)

        assign(module, name, patched)


def after_files(count: int) -> Callable[[Path], None]:
    """Die when `write_tree` is about to create file number `count + 1`."""

    def install(root: Path) -> None:
        on_staged_file(root, lambda n: die() if n > count else None)

    return install


def after_call(name: str, nth: int = 1, *, before: bool = False) -> Callable[[Path], None]:
    """Die right after (or before) the `nth` call of `output.<name>` (`os.replace` for
    "replace")."""

    def install(root: Path) -> None:
        real: Callable[..., object] = os.replace if name == "replace" else getattr(output, name)
        calls = [0]

        def patched(*args: object) -> object:
            calls[0] += 1
            if before and calls[0] == nth:
                die()
            value = real(*args)
            if calls[0] == nth:
                die()
            return value

        if name == "replace":
            os.replace = patched  # type: ignore[assignment]
        else:
            setattr(output, name, patched)

    return install


def portable(install: Callable[[Path], None]) -> Callable[[Path], None]:
    """The same crash on the two-rename path used where renameat2 is missing."""

    def both(root: Path) -> None:
        output._exchange = lambda a, b: False
        install(root)

    return both


CRASHES: dict[str, Callable[[Path], None]] = {
    "before-any-file": after_files(0),
    "after-one-file": after_files(1),
    "half-way": after_files(len(NEW) // 2),
    "every-file-written": after_call("_exchange", before=True),
    "right-after-the-swap": after_call("_exchange"),
    "portable-old-moved-away": portable(after_call("replace", 1)),
    "portable-new-moved-in": portable(after_call("replace", 2)),
}


@pytest.mark.parametrize("first_render", [False, True], ids=["replace", "first-render"])
@pytest.mark.parametrize("crash", sorted(CRASHES))
def test_write_tree_killed_at_each_step(tmp_path: Path, crash: str, first_render: bool) -> None:
    root = tmp_path / "rendered"
    if not first_render:
        write_tree(root, OLD)
    install = CRASHES[crash]

    def action() -> None:
        install(root)
        write_tree(root, NEW)

    status = crash_in_child(action)
    on_disk = read_tree(root) if root.exists() else None
    if first_render:
        assert on_disk in (None, NEW), crash
    elif crash == "portable-old-moved-away":
        # Between the two renames the old tree sits beside the target; the next run puts it
        # back before anything else (and readers see no tree rather than half of one).
        assert status == KILLED and on_disk is None
        (old,) = root.parent.glob(f".{root.name}.old-*")
        assert read_tree(old) == OLD
    else:
        assert status == KILLED, crash
        assert on_disk in (OLD, NEW), crash
    write_tree(root, NEW)
    assert read_tree(root) == NEW
    assert leftovers(root) == []


def test_failed_write_keeps_the_old_tree_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "rendered"
    write_tree(root, OLD)

    def full_disk(n: int) -> None:
        if n == 3:
            raise OSError(28, "No space left on device")

    on_staged_file(root, full_disk, monkeypatch.setattr)
    with pytest.raises(OSError, match="No space"):
        write_tree(root, NEW)
    assert read_tree(root) == OLD
    assert leftovers(root) == []


def test_stale_staging_and_old_folders_are_cleaned_up(tmp_path: Path) -> None:
    root = tmp_path / "rendered"
    write_tree(root, OLD)
    for stale in (".rendered.new-abc123", ".rendered.old-def456"):
        (tmp_path / stale / "run-00").mkdir(parents=True)
        (tmp_path / stale / "run-00" / "half.yaml").write_text("partial\n")
    (tmp_path / "rendered-other").mkdir()  # not ours: left alone
    write_tree(root, NEW)
    assert read_tree(root) == NEW
    assert leftovers(root) == []
    assert (tmp_path / "rendered-other").is_dir()


# --------------------------------------------------------------------------- concurrent runs

WRITER = """
import json, sys
from pathlib import Path
from ilab_gitops.emit.output import write_tree
write_tree(Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text()))
"""


def test_two_renders_at_once_leave_one_whole_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second `render` (say a pre-commit hook) starts while the first is writing."""
    root = tmp_path / "rendered"
    write_tree(root, OLD)
    other = {f"other-{i:02d}/manifests.yaml": f"other {i}\n" for i in range(5)}
    (tmp_path / "other.json").write_text(json.dumps(other))
    started: list[subprocess.Popen[bytes]] = []

    def race(n: int) -> None:
        if n == len(NEW) // 2:
            command = [sys.executable, "-c", WRITER, str(root), str(tmp_path / "other.json")]
            started.append(subprocess.Popen(command))
            # A writer that waits for ours to finish (a lock) times out here: fine.
            with contextlib.suppress(subprocess.TimeoutExpired):
                started[0].wait(timeout=3)

    on_staged_file(root, race, monkeypatch.setattr)
    write_tree(root, NEW)
    monkeypatch.undo()
    assert started and started[0].wait(timeout=30) == 0
    assert read_tree(root) in (NEW, other)
    assert leftovers(root) == []


# --------------------------------------------------------------------------- the real command


def _command(out: Path, *extra: str) -> list[str]:
    script = Path(sys.executable).with_name("ilab-gitops")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "ilab_gitops.cli"]
    environments = str(ROOT / "environments")
    return [*command, "render", "runs", "--environments", environments, "--out", str(out), *extra]


def _render(repo: Path, out: Path, *extra: str) -> None:
    done = subprocess.run(
        _command(out, *extra), check=False, cwd=repo, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def _start(repo: Path, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        _command(out, *extra), cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _staged_files(out: Path) -> int:
    return sum(
        len(files)
        for staging in out.parent.glob(f".{out.name}.new-*")
        for _, _, files in os.walk(staging)
    )


def _snapshot(out: Path) -> Mapping[str, str]:
    return read_tree(out)


def _units(files: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Files by run folder (`<environment>/<run>`); each loose index file on its own."""
    units: dict[str, dict[str, str]] = {}
    for path, text in files.items():
        parts = path.split("/", 2)
        units.setdefault("/".join(parts[:2]) if len(parts) == 3 else path, {})[path] = text
    return units


def _old_or_new_per_run(
    tree: Mapping[str, str], old: Mapping[str, str], new: Mapping[str, str]
) -> bool:
    got, before, after = _units(tree), _units(old), _units(new)
    return all(
        got.get(unit, {}) in (before.get(unit, {}), after.get(unit, {}))
        for unit in set(got) | set(before) | set(after)
    )


def _staged_runs(out: Path) -> int:
    """How far an in-place update got: its staging folder names each run folder it builds
    1, 2, 3... (gone once swapped in); the highest seen."""
    numbers = [
        int(entry.name)
        for staging in out.parent.glob(f".{out.name}.new-*")
        for entry in _entries(staging)
        if entry.name.isdigit()
    ]
    return max(numbers, default=0)


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        return list(entries)
    return []


@pytest.mark.parametrize("mode", ["in-place", "rebuilt"])
def test_render_sigkilled_while_writing_leaves_each_run_old_or_new(
    tmp_path: Path, mode: str
) -> None:
    """In place, each run folder is swapped on its own: a kill leaves every run old or new
    (and the tree a mix of both). A tree that cannot be updated in place (here it holds a
    symbolic link, which `--prune` removes) is rebuilt beside and swapped whole."""
    repo = tmp_path / "repo"
    write_runs(repo / "runs", 40)
    out = tmp_path / "rendered"
    prune = ["--prune"] if mode == "rebuilt" else []
    _render(repo, out)
    old = _snapshot(out)
    for path in sorted((repo / "runs").glob("*.yaml"))[::2]:  # change half the runs
        data = yaml.safe_load(path.read_text())
        data["spec"]["attempt"] = 1
        path.write_text(yaml.safe_dump(data))
    write_runs(repo / "runs-extra", 5)
    for path in (repo / "runs-extra").glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        data["metadata"]["name"] = data["metadata"]["name"].replace("zq-run", "zq-new")
        (repo / "runs" / f"new-{path.name}").write_text(yaml.safe_dump(data))
    shutil.rmtree(repo / "runs-extra")

    expected = tmp_path / "expected"
    shutil.copytree(out, expected)
    _render(repo, expected, *prune)
    new = _snapshot(expected)
    assert new != old and len(new) > 300

    rng = random.Random(20261124)
    mid_write = mixed = 0
    runs = len(_units(new))
    targets = (1, len(new) // 3, len(new) - 5) if prune else (2, runs // 3, runs // 2)
    for target in (*targets, None, None):
        if prune and not (out / "link.yaml").is_symlink():
            (out / "link.yaml").symlink_to("/etc/hostname")
        process = _start(repo, out, *prune)
        deadline = time.monotonic() + 30
        limit = len(new) if prune else runs // 2
        wait_for = target if target is not None else rng.randint(1, limit)
        staged = 0
        while process.poll() is None and time.monotonic() < deadline:
            staged = _staged_files(out) if prune else _staged_runs(out)
            if staged >= wait_for:
                break
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        mid_write += staged > 0 and process.returncode == -signal.SIGKILL
        tree = _snapshot(out)
        if prune:
            assert tree in (old, new), f"killed after {staged} staged files"
        else:
            assert _old_or_new_per_run(tree, old, new), f"killed after {staged} runs"
            mixed += tree not in (old, new)
    assert mid_write >= 1, "no kill landed while the staging folder was being written"
    assert prune or mixed >= 1, "no kill landed between two run folders"
    _render(repo, out, *prune)
    assert _snapshot(out) == new
    assert not (out / "link.yaml").is_symlink()
    assert leftovers(out) == []


@pytest.mark.parametrize("existing", [False, True], ids=["first", "update"])
@pytest.mark.parametrize("name", [".rendered.old-x", ".rendered.new-x"])
def test_leftovers_that_are_links_are_removed_never_followed(
    tmp_path: Path, name: str, existing: bool
) -> None:
    """A PR can commit `.rendered.old-*` or `.new-*` as a link: recovery removes the link
    itself, never moves it into place or deletes what it points to."""
    repo = tmp_path / "repo"
    write_runs(repo / "runs", 3)
    out = repo / "rendered"
    if existing:
        _render(repo, out)
    outside = tmp_path / "outside"
    (outside / "run-00").mkdir(parents=True)
    (outside / "run-00" / "keep.yaml").write_text("kept: true\n")
    (repo / name).symlink_to(outside, target_is_directory=True)
    done = subprocess.run(
        _command(out), check=False, cwd=repo, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert not out.is_symlink() and (out / "kind-dev" / "zq-run-0000").is_dir()
    assert leftovers(out) == []
    assert sorted(p.relative_to(outside).as_posix() for p in outside.rglob("*")) == [
        "run-00",
        "run-00/keep.yaml",
    ]
    assert (outside / "run-00" / "keep.yaml").read_text() == "kept: true\n"


def test_recovery_removes_a_leftover_file_and_keeps_a_real_old_tree(tmp_path: Path) -> None:
    root = tmp_path / "rendered"
    (tmp_path / ".rendered.new-file").write_text("x\n")
    old = tmp_path / ".rendered.old-abc"
    (old / "run-00").mkdir(parents=True)
    (old / "run-00" / "a.yaml").write_text("a: 1\n")
    output.recover(root)  # the tree was moved aside and not yet replaced: put it back
    assert read_tree(root) == {"run-00/a.yaml": "a: 1\n"}
    assert leftovers(root) == []
