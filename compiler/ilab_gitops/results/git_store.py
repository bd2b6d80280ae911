"""`RunsRepo` on GitPython: read and commit the runs repo's branch without its work tree.

Commits are built with a temporary index on top of the remote branch's tip and pushed as a
fast-forward; when a concurrent push wins, the tip is fetched again and the update redone on
it. The checkout's work tree, index and local branches are never touched, so running the
sync in a developer's clone cannot disturb their work.
"""

from __future__ import annotations

import os
import tempfile
from functools import partial
from pathlib import Path

import git

from ilab_gitops.results.ports import TreeUpdate
from ilab_gitops.results.sync import RepoError

_REJECTED = ("[rejected]", "non-fast-forward", "fetch first", "stale info", "cannot lock ref")
_FILE_MODE = "100644"


class GitRunsRepo:
    def __init__(
        self,
        path: Path,
        *,
        remote: str = "origin",
        branch: str = "main",
        author: tuple[str, str] = ("ilab-gitops", "ilab-gitops@users.noreply.github.com"),
        attempts: int = 5,
    ) -> None:
        try:
            self._repo = git.Repo(path, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise RepoError(f"{path}: not inside a git repository") from None
        self._remote, self._branch = remote, branch
        self._tracking = f"refs/remotes/{remote}/{branch}"
        name, email = author
        self._identity = {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }
        self._attempts = attempts

    def refresh(self) -> None:
        spec = f"+refs/heads/{self._branch}:{self._tracking}"
        try:
            self._repo.git.fetch("--quiet", "--no-tags", self._remote, spec)
        except git.GitCommandError as err:
            raise RepoError(f"git fetch {self._remote} {self._branch}: {_stderr(err)}") from err

    def _tip(self) -> str | None:
        try:
            return str(
                self._repo.git.rev_parse("--verify", "--quiet", f"{self._tracking}^{{commit}}")
            )
        except git.GitCommandError:
            return None

    def _read_at(self, tip: str | None, path: str) -> bytes | None:
        if tip is None:
            return None
        try:
            blob = self._repo.commit(tip).tree / path
        except KeyError:
            return None
        if blob.type != "blob":
            return None
        data: bytes = blob.data_stream.read()
        return data

    def read(self, path: str) -> bytes | None:
        return self._read_at(self._tip(), path)

    def list_dir(self, path: str) -> list[str]:
        tip = self._tip()
        if tip is None:
            return []
        try:
            tree = self._repo.commit(tip).tree / path
        except KeyError:
            return []
        if tree.type != "tree":
            return []
        return sorted(item.name for item in tree)

    def commit(self, update: TreeUpdate, message: str) -> str | None:
        for attempt in range(self._attempts):
            if attempt:
                self.refresh()
            tip = self._tip()
            files = update(partial(self._read_at, tip))
            changed = {p: data for p, data in files.items() if self._read_at(tip, p) != data}
            if not changed:
                return None
            sha = self._commit_tree(tip, changed, message)
            try:
                self._repo.git.push("--quiet", self._remote, f"{sha}:refs/heads/{self._branch}")
            except git.GitCommandError as err:
                if any(mark in _stderr(err) for mark in _REJECTED):
                    continue
                raise RepoError(f"git push {self._remote} {self._branch}: {_stderr(err)}") from err
            self._repo.git.update_ref(self._tracking, sha)
            return sha
        raise RepoError(f"{self._attempts} pushes to {self._branch} lost to concurrent pushes")

    def _commit_tree(self, tip: str | None, files: dict[str, bytes], message: str) -> str:
        g = self._repo.git
        with tempfile.TemporaryDirectory(prefix="ilab-gitops-") as tmp:
            env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
            if tip is not None:
                g.read_tree(tip, env=env)
            for number, (path, data) in enumerate(sorted(files.items())):
                source = Path(tmp, f"blob-{number}")
                source.write_bytes(data)
                blob = g.hash_object("-w", "--", str(source))
                g.update_index("--add", "--cacheinfo", f"{_FILE_MODE},{blob},{path}", env=env)
            tree = g.write_tree(env=env)
            parents = ["-p", tip] if tip is not None else []
            return str(g.commit_tree(tree, *parents, "-m", message, env=self._identity))


def _stderr(err: git.GitCommandError) -> str:
    text = str(err.stderr or err).strip()
    return " ".join(text.replace("stderr:", "").split())[:500]
