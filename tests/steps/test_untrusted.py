"""Untrusted inputs stay data: a taxonomy repo that tries to run code, model folders whose
links lead out, a HEAD that points outside `.git`."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from ilab_gitops.steps import final_eval, gitsafe, prepare
from ilab_gitops.steps.base_model import copy_pvc
from ilab_gitops.steps.markers import read_marker
from ilab_gitops.steps.runtime import StepError
from ilab_gitops.steps.taxonomy import head_commit
from tests.steps.builders import sdg_members, sha256
from tests.steps.conftest import S3Env
from tests.steps.test_final_eval import git, make_taxonomy
from tests.steps.test_prepare import KEY, leftovers, output_of, params_for, pvc_model, setenv


@pytest.fixture
def sdg(s3: S3Env, monkeypatch: pytest.MonkeyPatch) -> S3Env:
    setenv(monkeypatch, s3.env("SDG"))
    monkeypatch.setenv("ILAB_SDG_DATA_KEY", KEY)
    return s3


# --- a taxonomy whose .git runs commands --------------------------------------------------


def plant(repo: Path, proof: Path) -> dict[str, Path]:
    """Hooks, fsmonitor and a clean/smudge filter, each leaving a file when run; and an
    include (a pager setting, which git would not run here anyway, only removed)."""
    ran = {name: proof / name for name in ("hook", "fsmonitor", "filter")}
    hooks = repo / ".git" / "hooks"
    for hook in ("post-checkout", "pre-commit", "reference-transaction"):
        script = hooks / hook
        script.write_text(f"#!/bin/sh\ntouch '{ran['hook']}'\n")
        script.chmod(0o755)
    included = repo / ".git" / "evil.inc"
    included.write_text(f"[core]\n\tpager = touch '{proof / 'pager'}'\n")
    with (repo / ".git" / "config").open("a") as config:
        config.write(
            f"[core]\n\tfsmonitor = touch '{ran['fsmonitor']}'; false\n"
            f"[filter \"evil\"]\n\tsmudge = touch '{ran['filter']}'; cat\n"
            f"\tclean = touch '{ran['filter']}'; cat\n"
            f"[include]\n\tpath = {included}\n"
        )
    (repo / ".gitattributes").write_text("*.yaml filter=evil\n")
    return ran


def live(repo: Path, ran: dict[str, Path]) -> None:
    """The planted commands do run under a plain git (else the test below proves nothing)."""
    git(repo, "status")
    for path in repo.rglob("qna.yaml"):
        path.unlink()
    git(repo, "checkout", "-q", "--", ".")  # restores them through the smudge filter
    git(repo, "checkout", "-q", "-B", "probe")
    git(repo, "checkout", "-q", "--detach")
    git(repo, "branch", "-q", "-D", "probe")
    assert ran["hook"].exists() and ran["fsmonitor"].exists() and ran["filter"].exists()
    for path in ran.values():
        path.unlink(missing_ok=True)


def sdg_with_repo(repo: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, payload in sdg_members().items():
            if name.startswith("taxonomy/"):
                continue
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        tar.add(repo, arcname="taxonomy")  # keeps the hooks' executable bits
    return buffer.getvalue()


def test_hostile_taxonomy_runs_nothing_in_prepare_or_final_eval(
    tmp_path: Path, sdg: S3Env, tiny_model: Path
) -> None:
    proof = tmp_path / "proof"
    proof.mkdir()
    repo = make_taxonomy(tmp_path / "src")
    ran = plant(repo, proof)
    live(repo, ran)
    data = sdg_with_repo(repo)
    sdg.client.put_object(Bucket=sdg.bucket, Key=KEY, Body=data)
    params = params_for(tmp_path, sha256(data), pvc_model(tiny_model))

    assert prepare.main(["--params", str(params)]) == 0

    taxonomy = output_of(params) / "taxonomy"
    git_dir = taxonomy / ".git"
    assert not (git_dir / "hooks").exists()
    config = (git_dir / "config").read_text()
    assert "fsmonitor" not in config and "filter" not in config and "include" not in config
    marker = read_marker(output_of(params))
    assert marker is not None
    assert marker.files["taxonomy/.git/config"] == sha256(config.encode())

    # Final eval's git calls (checkout -B runs post-checkout; status-like calls fsmonitor).
    work = tmp_path / "work"
    target = final_eval.prepare_taxonomy(taxonomy, work, "main")
    assert final_eval.mmlu_task_files(target, final_eval.CANDIDATE_BRANCH) == {}
    assert sorted(p.name for p in proof.iterdir()) == []


def test_hardened_environment_alone_stops_hooks_and_fsmonitor(tmp_path: Path) -> None:
    """Defence in depth: even on a repo nobody sanitized, git runs none of its commands."""
    proof = tmp_path / "proof"
    proof.mkdir()
    repo = make_taxonomy(tmp_path / "src")
    ran = plant(repo, proof)
    live(repo, ran)
    env = gitsafe.safe_environment(repo)
    for args in (
        ["status"],
        ["checkout", "-q", "-B", "x"],
        ["commit", "-qm", "c", "--allow-empty"],
    ):
        subprocess.run(
            ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e", *args],
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
    assert not ran["hook"].exists() and not ran["fsmonitor"].exists()


@pytest.mark.parametrize("kind", ["gitdir-file", "symlink"])
def test_git_pointing_elsewhere_is_refused(tmp_path: Path, kind: str) -> None:
    elsewhere = make_taxonomy(tmp_path / "elsewhere")
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    if kind == "gitdir-file":
        (checkout / ".git").write_text(f"gitdir: {elsewhere / '.git'}\n")
    else:
        (checkout / ".git").symlink_to(elsewhere / ".git")
    with pytest.raises(StepError, match=r"\.git is not a folder"):
        gitsafe.sanitize_checkout(checkout)


def test_sanitize_removes_what_points_outside_and_keeps_the_format(tmp_path: Path) -> None:
    repo = make_taxonomy(tmp_path / "src")
    info = repo / ".git" / "objects" / "info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "alternates").write_text("/somewhere/else/objects\n")
    (repo / ".git" / "commondir").write_text("../../other\n")
    removed = gitsafe.sanitize_checkout(repo)
    assert {"hooks", "commondir", "objects/info/alternates"} <= set(removed)
    assert (repo / ".git" / "config").read_text() == (
        "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n"
        "\tlogallrefupdates = false\n"
    )
    env = gitsafe.safe_environment(repo)
    log = subprocess.run(
        ["git", "-C", str(repo), "log", "--format=%s", "main"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert log.stdout == "base\n"


def test_base_branch_only_as_a_remote_ref(tmp_path: Path) -> None:
    """The sanitized config names no remotes; origin/<base> is found from the refs."""
    repo = make_taxonomy(tmp_path / "src")
    git(repo, "update-ref", "refs/remotes/origin/release", "main")
    git(repo, "config", "remote.origin.url", "https://example.invalid/taxonomy")
    target = final_eval.prepare_taxonomy(repo, tmp_path / "work", "release")
    heads = subprocess.run(
        ["git", "-C", str(target), "branch", "--format=%(refname:short)"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    assert sorted(heads) == ["ilab-gitops-candidate", "main", "release"]


def test_head_ref_cannot_read_outside_git(tmp_path: Path) -> None:
    repo = tmp_path / "taxonomy"
    (repo / ".git").mkdir(parents=True)
    (tmp_path / "secret").write_text("a" * 40 + "\n")
    (repo / ".git" / "HEAD").write_text("ref: ../../secret\n")
    assert head_commit(repo) is None
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/../../../secret\n")
    assert head_commit(repo) is None
    (repo / ".git" / "refs" / "heads").mkdir(parents=True)
    (repo / ".git" / "refs" / "heads" / "main").write_text("b" * 40 + "\n")
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    assert head_commit(repo) == "b" * 40


# --- a PVC model folder whose links lead out -----------------------------------------------


def model_folder(tmp_path: Path) -> Path:
    source = tmp_path / "claim" / "models" / "granite"
    source.mkdir(parents=True)
    (source / "config.json").write_text("{}")
    (source / "weights").mkdir()
    (source / "weights" / "model.safetensors").write_bytes(b"w" * 1000)
    return source


@pytest.mark.parametrize("how", ["absolute", "relative", "through-a-folder-link"])
def test_pvc_copy_refuses_links_out_of_the_model(tmp_path: Path, how: str) -> None:
    source = model_folder(tmp_path)
    outside = tmp_path / "claim" / "other-team"
    outside.mkdir()
    (outside / "secret.txt").write_text("not part of the model")
    if how == "absolute":
        (source / "tokenizer.json").symlink_to(outside / "secret.txt")
    elif how == "relative":
        (source / "weights" / "extra.bin").symlink_to("../../../other-team/secret.txt")
    else:
        (source / "shared").symlink_to("../../other-team")
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(StepError, match=r"is a symlink to .*outside baseModel\.pvc\.path"):
        copy_pvc(source, dest)
    copied = [p.read_bytes() for p in dest.rglob("*") if p.is_file()]
    assert b"not part of the model" not in copied


def test_pvc_copy_refuses_a_model_path_through_a_link(tmp_path: Path) -> None:
    """`baseModel.pvc.path: models/x` where `models` is a link to `/` on the claim: the copy
    would take the container's files, with every "inside the model" check passing."""
    claim = tmp_path / "claim"
    claim.mkdir()
    (claim / "models").symlink_to("/")
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(StepError, match="passes through a symlink"):
        copy_pvc(claim / "models" / "etc", dest)
    assert list(dest.iterdir()) == []


def test_pvc_copy_of_an_unreadable_file_is_a_clean_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file the pod may not read (tests run as root, who reads anything: the refusal is
    the kernel's, as it would be in the pod)."""
    from ilab_gitops.steps import base_model

    def refused(source: Path, dest: Path) -> None:
        raise PermissionError(13, "Permission denied", str(source))

    monkeypatch.setattr(base_model, "_copy_file", refused)
    source = model_folder(tmp_path)
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(StepError, match="cannot be copied: Permission denied"):
        copy_pvc(source, dest)


def test_pvc_copy_keeps_links_inside_the_model_as_files(tmp_path: Path) -> None:
    source = model_folder(tmp_path)
    (source / "model.safetensors").symlink_to("weights/model.safetensors")
    dest = tmp_path / "dest"
    dest.mkdir()
    assert copy_pvc(source, dest) == 3
    copied = dest / "model.safetensors"
    assert not copied.is_symlink() and copied.read_bytes() == b"w" * 1000
    assert (dest / "weights" / "model.safetensors").read_bytes() == b"w" * 1000


def test_pvc_copy_refuses_special_files(tmp_path: Path) -> None:
    source = model_folder(tmp_path)
    os.mkfifo(source / "pipe")
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(StepError, match="base model file pipe is not a regular file"):
        copy_pvc(source, dest)


def test_prepare_with_a_leaking_pvc_model_fails_cleanly(
    tmp_path: Path, sdg: S3Env, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "claim" / "model"
    source.mkdir(parents=True)
    for path in tiny_model.iterdir():
        (source / path.name).write_bytes(path.read_bytes())
    (tmp_path / "claim" / "passwd").write_text("root:x:0:0\n")
    (source / "extra.txt").symlink_to("../passwd")
    data = tar_of_sdg()
    sdg.client.put_object(Bucket=sdg.bucket, Key=KEY, Body=data)
    params = params_for(tmp_path, None, {"source": "pvc", "path": str(source)})
    assert prepare.main(["--params", str(params)]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        "error: base model file extra.txt is a symlink to '../passwd', outside "
        "baseModel.pvc.path: put the real files in the model folder"
    )
    assert "Traceback" not in err
    assert leftovers(output_of(params)) == []


def tar_of_sdg() -> bytes:
    from tests.steps.builders import tar_bytes

    return tar_bytes(sdg_members())


@pytest.mark.parametrize("junk", [b"\xff\xfe", b"ref: refs/heads/\xff"])
def test_taxonomy_head_that_is_not_utf8_is_no_checkout(tmp_path: Path, junk: bytes) -> None:
    """A tarball's `.git/HEAD` of arbitrary bytes: "not a plain checkout", not a crash."""
    from ilab_gitops.steps.taxonomy import head_commit

    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_bytes(junk)
    assert head_commit(tmp_path) is None


def test_a_taxonomy_git_cannot_use_is_a_clean_error(tmp_path: Path) -> None:
    """HEAD and a branch that name a commit whose objects are missing pass prepare's file
    check; final evaluation then says so in one line (not an internal error)."""
    from ilab_gitops.steps import final_eval

    source = tmp_path / "taxonomy"
    git_dir = source / ".git"
    (git_dir / "refs" / "heads").mkdir(parents=True)
    (git_dir / "objects").mkdir()
    (git_dir / "HEAD").write_text("ref: refs/heads/main\n")
    (git_dir / "refs" / "heads" / "main").write_text("1" * 40 + "\n")
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(StepError, match=r"taxonomy .*: git cannot use it"):
        final_eval.prepare_taxonomy(source, work, "main")


@pytest.mark.parametrize("flaw", ["packed-refs-header", "ref-not-utf8"])
def test_refs_gitpython_cannot_parse_are_a_clean_error(tmp_path: Path, flaw: str) -> None:
    """Refs git itself accepts but GitPython's parser may not (an unknown packed-refs header:
    TypeError; a ref name of non-UTF-8 bytes) stop final evaluation in one line, not with a
    traceback."""
    from ilab_gitops.steps import final_eval

    source = tmp_path / "taxonomy"
    source.mkdir()

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-C", str(source), "-c", "user.name=t", "-c", "user.email=t@t", *args],
            check=True,
            capture_output=True,
        )

    git("init", "-q", "-b", "topic")
    (source / "a.txt").write_text("a\n")
    git("add", "a.txt")
    git("commit", "-q", "-m", "a")
    git("branch", "main")
    if flaw == "packed-refs-header":
        git("pack-refs", "--all")
        packed = source / ".git" / "packed-refs"
        lines = packed.read_text().splitlines()
        body = [line for line in lines if not line.startswith("#")]
        packed.write_text("\n".join(["# pack-refs with: sorted", *body]) + "\n")
    else:
        heads = source / ".git" / "refs" / "heads"
        os.link(os.fsencode(heads / "main"), os.fsencode(heads) + b"/x\xff")
    work = tmp_path / "work"
    work.mkdir()
    # GitPython may decode the name with escapes instead: then it is the plain "no branch".
    with pytest.raises(StepError, match=r"^taxonomy .*(git cannot use it|has no branch)"):
        final_eval.prepare_taxonomy(source, work, "other")
