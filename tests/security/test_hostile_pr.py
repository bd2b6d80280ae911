"""Hostile pull requests against a runs repo, on real git (a bare remote and clones).

Each case opens a PR that attacks the repo's tree (planted or edited manifests, links, odd
names, binary files, another environment's folder), runs the PR gate as CI does (`validate`,
`diff`, `render --check`), asserts the exit codes and messages, and then "merges" only when
every check passed, as branch protection would, running the render job on main. The last
assertion of every case is that `rendered/` on main is still exactly what the compiler
writes: nothing of the attack reached it.

To add a case: write a function that changes the PR's working tree (`Tree` helps) and call
`attack(...)` with it; assert on the returned `Gate`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import git
import pytest

from tests.security.cli import CliResult, run_main
from tests.unit.repo.gitutil import bare_remote, commit_all, isolated_env, new_clone, push

EXAMPLE = "granite-example"
ENV = "kind-dev"
RUN_FOLDER = f"rendered/{ENV}/{EXAMPLE}"
STEP_FILE = f"{RUN_FOLDER}/02-train-phase-1/manifests.yaml"
PLANTED_JOB = """apiVersion: batch/v1
kind: Job
metadata:
  name: exfiltrate
spec:
  template:
    spec:
      containers:
        - name: x
          image: busybox
          envFrom:
            - secretRef:
                name: output-store
"""


@dataclass(frozen=True)
class Gate:
    """The PR checks' results, as CI runs them in the PR's checkout."""

    validate: CliResult
    diff: CliResult
    check: CliResult

    @property
    def passed(self) -> bool:
        return all(r.returncode == 0 for r in (self.validate, self.diff, self.check))


class Tree:
    """The PR's working tree: helpers to plant what an attacker would."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, rel: str) -> Path:
        return self.root / rel

    def write(self, rel: str, data: str | bytes) -> None:
        target = self.path(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            target.write_text(data)
        else:
            target.write_bytes(data)

    def symlink(self, rel: str, points_to: str | Path) -> None:
        target = self.path(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() or target.is_symlink():
            target.unlink()
        target.symlink_to(points_to)


@dataclass
class Repo:
    """The shared remote (main: scaffold + rendered example run) and the test's tmp dir."""

    remote: Path
    tmp: Path
    baseline: dict[str, bytes]

    def clone(self, name: str) -> git.Repo:
        repo = new_clone(self.remote, self.tmp / name)
        repo.git.fetch("--quiet", "origin")
        repo.git.checkout("--quiet", "-B", "main", "origin/main")
        return repo

    def main_rendered(self) -> dict[str, bytes]:
        """Every blob under rendered/ on the remote's main branch, by path."""
        tree = git.Repo(self.remote).commit("main").tree / "rendered"
        return {
            str(item.path): item.data_stream.read()
            for item in tree.traverse()
            if isinstance(item, git.Blob)
        }


def _gate(root: Path) -> Gate:
    return Gate(
        validate=run_main(["validate", "runs", "environments"], root),
        diff=run_main(["diff", "--base", "origin/main"], root),
        check=run_main(["render", "runs", "--check", "--format", "text"], root),
    )


def attack(repo: Repo, name: str, change: Callable[[Tree], None]) -> Gate:
    """Open a PR whose tree `change` builds, run the gate, merge only if it passed."""
    clone = repo.clone(name)
    root = Path(str(clone.working_tree_dir))
    clone.git.checkout("--quiet", "-b", name)
    change(Tree(root))
    commit_all(clone, f"PR {name}")
    gate = _gate(root)
    if gate.passed:  # what branch protection allows: merge, then the render job on main
        clone.git.checkout("--quiet", "main")
        clone.git.merge("--quiet", "--no-ff", "-m", f"Merge {name}", name)
        done = run_main(["render", "runs", "--prune"], root)
        assert done.returncode == 0, done.stderr
        commit_all(clone, "Render runs")
        push(clone)
    return gate


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    base = tmp_path_factory.mktemp("hostile")
    env = isolated_env(base / "home")
    (base / "home").mkdir()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        remote = base / "remote.git"
        bare_remote(remote)
        work = new_clone(remote, base / "seed")
        code = run_main(["init", ".", "--repo-url", remote.as_uri()], base / "seed")
        assert code.returncode == 0, code.stderr
        # init starts nothing: adopt its example as the repo's first run, rendered as on main.
        shutil.copy(base / "seed" / "examples" / "example.yaml", base / "seed" / "runs")
        code = run_main(["render", "runs"], base / "seed")
        assert code.returncode == 0, code.stderr
        commit_all(work, "Scaffold")
        push(work)
        clean = _gate(base / "seed")
        assert clean.passed, (clean.validate.stderr, clean.diff.stderr, clean.check.stderr)
        yield remote, env
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def repo(
    shared: tuple[Path, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Repo]:
    remote, env = shared
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    copy = tmp_path / "remote.git"
    shutil.copytree(remote, copy)
    made = Repo(copy, tmp_path, {})
    made.baseline = made.main_rendered()
    assert f"{RUN_FOLDER}/01-prepare/manifests.yaml" in made.baseline
    yield made
    assert made.main_rendered() == made.baseline, "the attack reached rendered/ on main"


def _lines(result: CliResult) -> list[str]:
    return result.stderr.splitlines()


def _one_line_each(result: CliResult) -> None:
    """No message line starts a workflow command or carries a raw control character."""
    for line in _lines(result):
        assert not line.startswith("::"), line
        assert not any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in line), repr(line)


# --- rendered/ belongs to the compiler ---------------------------------------------------


def test_a_benign_pr_passes_and_is_rendered_on_main(repo: Repo) -> None:
    """The control case: the gate is not simply always red."""

    def add_run(tree: Tree) -> None:
        text = tree.path("runs/example.yaml").read_text()
        tree.write("runs/second.yaml", text.replace(f"name: {EXAMPLE}", "name: granite-b"))

    gate = attack(repo, "benign", add_run)
    assert gate.validate.returncode == 0, gate.validate.stderr
    assert gate.diff.returncode == 0, gate.diff.stderr
    assert gate.check.returncode == 1  # the new run is not rendered yet: stale, not foreign
    assert f"rendered/{ENV}/granite-b/01-prepare/manifests.yaml: missing" in _lines(gate.check)
    rendered = run_main(["render", "runs"], repo.tmp / "benign")
    assert rendered.returncode == 0, rendered.stderr
    clone = git.Repo(repo.tmp / "benign")
    commit_all(clone, "Render granite-b")
    again = _gate(repo.tmp / "benign")
    assert again.passed, again.check.stderr
    clone.git.checkout("--quiet", "main")
    clone.git.merge("--quiet", "--no-ff", "-m", "Merge benign", "benign")
    push(clone)
    after = repo.main_rendered()
    added = {p for p in after if p not in repo.baseline}
    assert added and all(p.startswith(f"rendered/{ENV}/granite-b/") for p in added), added
    repo.baseline = after


def test_planted_manifest_in_a_new_run_folder(repo: Repo) -> None:
    gate = attack(repo, "plant", lambda t: t.write(f"rendered/{ENV}/evil/job.yaml", PLANTED_JOB))
    assert gate.validate.returncode == 0 and gate.diff.returncode == 0
    assert gate.check.returncode == 2
    assert (
        f"rendered/{ENV}/evil/job.yaml: file not written by the compiler from the specs"
        in _lines(gate.check)
    )


def test_planted_manifest_inside_a_real_run(repo: Repo) -> None:
    planted = f"{RUN_FOLDER}/01-prepare/zz-extra.yaml"
    gate = attack(repo, "plant-in-run", lambda t: t.write(planted, PLANTED_JOB))
    assert gate.check.returncode == 2
    assert f"{planted}: file not written by the compiler from the specs" in _lines(gate.check)


def test_planted_manifest_beside_the_environments(repo: Repo) -> None:
    gate = attack(repo, "plant-root", lambda t: t.write("rendered/job.yaml", PLANTED_JOB))
    assert gate.check.returncode == 2
    assert "rendered/job.yaml: file not written by the compiler from the specs" in _lines(
        gate.check
    )


def test_run_folder_under_another_environment(repo: Repo) -> None:
    def copy_to_other_env(tree: Tree) -> None:
        shutil.copytree(tree.path(RUN_FOLDER), tree.path(f"rendered/multi-node-gpu/{EXAMPLE}"))

    gate = attack(repo, "other-env", copy_to_other_env)
    assert gate.check.returncode == 2
    shown = f"rendered/multi-node-gpu/{EXAMPLE}/01-prepare/manifests.yaml"
    assert f"{shown}: file not written by the compiler from the specs" in _lines(gate.check)


def test_edited_rendered_file_is_out_of_date(repo: Repo) -> None:
    def edit(tree: Tree) -> None:
        text = tree.path(STEP_FILE).read_text()
        tree.write(STEP_FILE, text.replace("runAsNonRoot: true", "runAsNonRoot: false"))

    gate = attack(repo, "edit", edit)
    assert gate.check.returncode == 1
    assert f"{STEP_FILE}: out of date" in _lines(gate.check)


def test_deleted_rendered_file_is_missing(repo: Repo) -> None:
    gate = attack(repo, "delete", lambda t: t.path(STEP_FILE).unlink())
    assert gate.check.returncode == 1
    assert f"{STEP_FILE}: missing" in _lines(gate.check)
    assert "out of date" not in gate.check.stderr


def test_non_utf8_file_fails_the_check_and_prune_removes_it(repo: Repo) -> None:
    junk = f"{RUN_FOLDER}/notes.yaml"
    gate = attack(repo, "non-utf8", lambda t: t.write(junk, b"kind: \xff\xfe\x00job\n"))
    assert gate.check.returncode == 2
    assert f"{junk}: binary or non-UTF-8 file not written by the compiler from the specs" in (
        _lines(gate.check)
    )
    root = repo.tmp / "non-utf8"
    done = run_main(["render", "runs", "--prune"], root)
    assert done.returncode == 0, done.stderr
    assert f"removed {junk}: not written by the compiler" in _lines(done)
    assert not (root / junk).exists()
    assert run_main(["render", "runs", "--check"], root).returncode == 0


def test_binary_content_in_a_rendered_file(repo: Repo) -> None:
    gate = attack(repo, "binary", lambda t: t.write(STEP_FILE, b"\x00\x01\x02ELF"))
    assert gate.check.returncode == 2
    assert f"{STEP_FILE}: binary or non-UTF-8 content" in _lines(gate.check)


def test_symlink_in_rendered_to_a_secret_outside(repo: Repo) -> None:
    secret = repo.tmp / "maintainer-secret.txt"
    secret.write_text("aws_secret_access_key = TOPSECRETVALUE\n")
    link = f"{RUN_FOLDER}/01-prepare/secret.yaml"
    gate = attack(repo, "link-secret", lambda t: t.symlink(link, secret))
    assert gate.check.returncode == 2
    assert f"{link}: not read: it is a symbolic link (commit the file itself)" in _lines(gate.check)
    root = repo.tmp / "link-secret"
    plain = run_main(["render", "runs"], root)
    assert plain.returncode == 2
    assert (root / link).is_symlink()  # nothing written
    pruned = run_main(["render", "runs", "--prune"], root)
    assert pruned.returncode == 0, pruned.stderr
    assert f"removed {link}: it is a symbolic link (commit the file itself)" in _lines(pruned)
    assert not (root / link).exists() and not (root / link).is_symlink()
    for path in (root / "rendered").rglob("*"):
        assert path.is_dir() or b"TOPSECRETVALUE" not in path.read_bytes()


def test_symlinked_rendered_folder(repo: Repo) -> None:
    gate = attack(repo, "link-dir", lambda t: t.symlink(f"rendered/{ENV}/evil", "../../.github"))
    assert gate.check.returncode == 2
    assert f"rendered/{ENV}/evil: not read: it is a symbolic link" in gate.check.stderr


def test_old_layout_is_foreign_and_prune_migrates_it(repo: Repo) -> None:
    def old_layout(tree: Tree) -> None:
        shutil.copytree(tree.path(RUN_FOLDER), tree.path(f"rendered/{EXAMPLE}"))

    gate = attack(repo, "old-layout", old_layout)
    assert gate.check.returncode == 2
    root = repo.tmp / "old-layout"
    done = run_main(["render", "runs", "--prune"], root)
    assert done.returncode == 0, done.stderr
    assert (
        f"removed rendered/{EXAMPLE}/: not the folder of an environment with runs here"
        in _lines(done)
    )
    assert not (root / "rendered" / EXAMPLE).exists()
    assert (root / RUN_FOLDER / "01-prepare" / "manifests.yaml").is_file()


# --- symlinks and odd paths where specs are read ----------------------------------------


def test_symlinked_run_file(repo: Repo) -> None:
    def hide(tree: Tree) -> None:
        tree.write("docs/moved.yaml", tree.path("runs/example.yaml").read_text())
        tree.symlink("runs/example.yaml", "../docs/moved.yaml")

    gate = attack(repo, "link-run", hide)
    for result in (gate.validate, gate.diff, gate.check):
        assert result.returncode == 2
        assert (
            "runs/example.yaml:1:1: error[refused-path] not read: it is a symbolic link "
            "(commit the file itself)"
        ) in _lines(result)


def test_symlinked_environment_folder_entry(repo: Repo) -> None:
    gate = attack(repo, "link-env", lambda t: t.symlink("environments/extra", "/etc"))
    assert gate.validate.returncode == 2
    assert "environments/extra:1:1: error[refused-path] not read: it is a symbolic link" in (
        gate.validate.stderr
    )


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("evil\n::error file=x::forged.yaml", "evil\\x0a:\\x3aerror file=x:\\x3aforged.yaml"),
        ("::add-mask::x.yaml", ":\\x3aadd-mask:\\x3ax.yaml"),
        ("red\x1b[31m.yaml", "red\\x1b[31m.yaml"),
        ("rtl\u202eeliforp.yaml", "rtl\\u202eeliforp.yaml"),
    ],
)
def test_odd_file_names_are_refused_and_escaped(repo: Repo, name: str, shown: str) -> None:
    gate = attack(repo, "odd", lambda t: t.write(f"runs/{name}", "kind: PipelineRun\n"))
    for result in (gate.validate, gate.check):
        assert result.returncode == 2
        assert f"runs/{shown}:1:1: error[refused-path] not read: its name" in result.stderr
        _one_line_each(result)
    assert gate.diff.returncode == 2
    _one_line_each(gate.diff)


def test_odd_name_under_rendered(repo: Repo) -> None:
    gate = attack(repo, "odd-rendered", lambda t: t.write(f"{RUN_FOLDER}/a\nb.yaml", "x: 1\n"))
    assert gate.check.returncode == 2
    assert f"{RUN_FOLDER}/a\\x0ab.yaml: not read: its name holds a control" in gate.check.stderr
    _one_line_each(gate.check)


def test_non_utf8_file_name(repo: Repo) -> None:
    def plant(tree: Tree) -> None:
        (tree.path("runs") / os.fsdecode(b"bad\xff.yaml")).write_text("kind: PipelineRun\n")

    gate = attack(repo, "non-utf8-name", plant)
    assert gate.validate.returncode == 2
    assert "runs/bad\\xff.yaml:1:1: error[refused-path] not read: its name is not valid UTF-8" in (
        gate.validate.stderr
    )


def test_symlink_in_the_base_tree_is_refused(repo: Repo, tmp_path: Path) -> None:
    """A git tree entry of mode 120000 on the base side of `diff` is never read."""
    clone = repo.clone("base-link")
    root = Path(str(clone.working_tree_dir))
    clone.git.checkout("--quiet", "-b", "with-link")
    Tree(root).symlink("runs/linked.yaml", "example.yaml")
    commit_all(clone, "A symlinked run")
    linked = clone.head.commit.hexsha
    assert (clone.head.commit.tree / "runs/linked.yaml").mode == 0o120000
    clone.git.checkout("--quiet", "main")
    done = run_main(["diff", "--base", linked], root)
    assert done.returncode == 2
    assert "runs/linked.yaml:1:1: error[refused-path] not read: it is a symbolic link" in (
        done.stderr
    )
    assert f"(in {linked})" in done.stderr
