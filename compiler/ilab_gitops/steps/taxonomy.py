"""Read a taxonomy checkout's HEAD commit without a git binary (the fetch image has none)."""

from __future__ import annotations

import re
from pathlib import Path

_SHA = re.compile(r"^[0-9a-f]{40}$")
# HEAD comes from an untrusted tarball: "ref: ../../../etc/x" must not read outside .git.
_REF = re.compile(r"^refs/[A-Za-z0-9._/-]+$")


def head_commit(repo: Path) -> str | None:
    """The commit HEAD names in `repo/.git`, or None when it is not a plain git checkout."""
    git = repo / ".git"
    try:
        head = (git / "HEAD").read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError):  # untrusted bytes: not a plain checkout
        return None
    if _SHA.match(head):
        return head
    if not head.startswith("ref: "):
        return None
    ref = head[5:].strip()
    if not _REF.match(ref) or ".." in ref.split("/") or "//" in ref:
        return None
    try:
        if (git / ref).is_symlink():
            return None
        value = (git / ref).read_text("utf-8").strip()
        return value if _SHA.match(value) else None
    except (OSError, UnicodeDecodeError):
        pass
    try:
        packed = (git / "packed-refs").read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in packed:
        parts = line.split()
        if len(parts) == 2 and parts[1] == ref and _SHA.match(parts[0]):
            return parts[0]
    return None
