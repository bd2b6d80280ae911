"""Git on untrusted repositories (the SDG tarball's `taxonomy/.git`) without running its code.

A repository's own files can make git execute commands: hooks (`post-checkout` runs on the
`checkout -B` final eval does), `core.fsmonitor` (runs on every index refresh), filter,
diff and merge drivers, `core.sshCommand`, credential helpers, `include.path` pulling in
more of the same. The eval pod holds the judge token, so none of that may run. Two layers:

1. `sanitize_checkout` rewrites the extracted `.git` so it holds data only: `hooks/` is
   removed, `config` is replaced by a minimal one (only the repository format survives),
   and files that point git outside the folder (`commondir`, `objects/info/alternates`,
   `config.worktree`) are removed; a `.git` that is a file (`gitdir: ...`) or a link is
   refused.
2. `hardened_environment` makes every git process of this step (ours and those GitPython runs
   inside instructlab-eval) ignore system and global config and apply command-line-scope
   overrides (`GIT_CONFIG_COUNT`, which outranks the repository's config) that switch off
   hooks, fsmonitor, credential helpers and every transport protocol. Drivers (filter, diff,
   merge) cannot be switched off this way without breaking plain diffs; layer 1 removes
   their definitions, and no system or global config can add them back.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from ilab_gitops.steps.runtime import StepError

log = logging.getLogger(__name__)

#: Command-line-scope settings for every git call on an untrusted repository.
SAFE_CONFIG: tuple[tuple[str, str], ...] = (
    ("core.hooksPath", os.devnull),
    ("core.fsmonitor", "false"),
    ("core.untrackedCache", "false"),
    ("core.sshCommand", "false"),
    ("core.pager", "cat"),
    ("core.askPass", ""),
    ("credential.helper", ""),
    ("protocol.allow", "never"),
)

#: Environment variables that would make git run a program or read other config.
_UNSET = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_COMMON_DIR",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_EXTERNAL_DIFF",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "GIT_EDITOR",
    "GIT_PAGER",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_EXEC_PATH",
    "GIT_TEMPLATE_DIR",
)

_FORMAT_KEYS = {"objectformat": {"sha1", "sha256"}, "refstorage": {"files", "reftable"}}


def safe_environment(repo: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with the git hardening applied."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in _UNSET}
    settings = (*SAFE_CONFIG, ("safe.directory", str(repo)))
    env.update(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_PROTOCOL_FROM_USER": "0",
            "GIT_ALLOW_PROTOCOL": "",
            "GIT_PAGER": "cat",
            "GIT_CONFIG_COUNT": str(len(settings)),
        }
    )
    for index, (key, value) in enumerate(settings):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


@contextmanager
def hardened_environment(repo: Path) -> Iterator[None]:
    """`safe_environment` for this process while the block runs (every git child inherits
    it, including those GitPython starts inside libraries); restored afterwards."""
    saved = dict(os.environ)
    hardened = safe_environment(repo)
    try:
        for name in _UNSET:
            os.environ.pop(name, None)
        os.environ.update(hardened)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _minimal_config(old: str) -> str:
    """The repository-format part of `old`, nothing else (no includes, no commands)."""
    extensions: dict[str, str] = {}
    section = ""
    for raw in old.splitlines():
        line = raw.strip()
        if header := re.fullmatch(r"\[\s*([A-Za-z0-9.-]+)\s*\]", line):
            section = header.group(1).lower()
            continue
        pair = re.fullmatch(r"([A-Za-z0-9-]+)\s*=\s*([A-Za-z0-9]+)", line)
        if section == "extensions" and pair:
            key, value = pair.group(1).lower(), pair.group(2).lower()
            if value in _FORMAT_KEYS.get(key, set()):
                extensions[key] = value
    lines = [
        "[core]",
        f"\trepositoryformatversion = {1 if extensions else 0}",
        "\tfilemode = true",
        "\tbare = false",
        "\tlogallrefupdates = false",
    ]
    if extensions:
        lines.append("[extensions]")
        lines.extend(f"\t{key} = {value}" for key, value in sorted(extensions.items()))
    return "\n".join(lines) + "\n"


def _remove(path: Path) -> bool:
    if path.is_symlink() or path.is_file():
        path.unlink()
        return True
    if path.is_dir():
        shutil.rmtree(path)
        return True
    return False


def sanitize_checkout(checkout: Path) -> list[str]:
    """Strip `checkout/.git` of everything that executes or points outside; returns what went.

    A checkout without `.git` is left alone (final eval reports that itself).
    """
    git = checkout / ".git"
    if not git.exists() and not git.is_symlink():
        return []
    if git.is_symlink() or not git.is_dir():
        raise StepError(
            f"{git} is not a folder (a link or a 'gitdir:' file would point git outside "
            "the taxonomy): pack the taxonomy with its own .git folder"
        )
    removed: list[str] = []
    for rel in (
        "hooks",
        "commondir",
        "config.worktree",
        "objects/info/alternates",
        "objects/info/http-alternates",
        "info/attributes",
        "modules",
        "worktrees",
    ):
        if _remove(git / rel):
            removed.append(rel)
    config = git / "config"
    old = ""
    if config.is_file() and not config.is_symlink():
        old = config.read_text("utf-8", errors="replace")[: 1024 * 1024]
    fresh = _minimal_config(old)
    if old != fresh:
        removed.append("config (replaced by a minimal one)")
    _remove(config)  # never write through a link or into a hard-linked file
    config.write_text(fresh, "utf-8")
    if removed:
        log.info("%s: removed %s", git, ", ".join(removed))
    return removed
