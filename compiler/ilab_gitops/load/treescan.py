"""Walk a runs repo's folders without trusting them: no symlink is followed, no odd name passes.

`runs/`, `environments/` and `rendered/` arrive in pull requests. A symlink there can hide a
file's real content from review (or point at a secret outside the repo), and a file name with
a newline or `::` can forge a line of output that GitHub Actions reads as a workflow command.
This module finds such entries without ever reading through a link, and prints paths escaped
so that no untrusted byte reaches a terminal or a log raw.
"""

from __future__ import annotations

import os
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

#: Most entries one walk visits; a runs repo of 20,000 runs has ~200,000.
MAX_ENTRIES = 500_000

_ODD_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def _odd_char(ch: str) -> bool:
    if 0xDC80 <= ord(ch) <= 0xDCFF:  # a byte that is not UTF-8 (surrogateescape)
        return True
    return unicodedata.category(ch) in _ODD_CATEGORIES


def odd_name(name: str) -> str | None:
    """Why a path (or one name of it) is refused, or None when it is fine."""
    for ch in name:
        if 0xDC80 <= ord(ch) <= 0xDCFF:
            return "its name is not valid UTF-8"
        if _odd_char(ch):
            return "its name holds a control or invisible character"
    if "::" in name:
        return 'its name holds "::" (GitHub Actions reads it as a workflow command)'
    return None


def escape(text: str) -> str:
    """`text` safe for one line of output: odd characters as `\\xNN`/`\\uNNNN`, `::` broken."""
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch == "\\":
            out.append("\\\\")
        elif _odd_char(ch):
            if code < 0x100:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out).replace("::", ":\\x3a")


@dataclass(frozen=True)
class Refused:
    """An entry the CLI does not read: `path` is relative to the walk's root (raw)."""

    path: str
    reason: str


@dataclass
class Walk:
    """Regular files (relative posix paths, sorted), refused entries and empty folders."""

    files: list[str] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    empty_dirs: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)


def entry_problem(path: Path) -> str | None:
    """Why a path named on the command line is refused (a symlink, an odd name), or None."""
    for part in path.parts:
        reason = odd_name(part)
        if reason:
            return reason
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None  # missing: the caller reports it
    if stat.S_ISLNK(mode):
        return "it is a symbolic link (commit the file itself)"
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        return "it is not a regular file or folder"
    return None


def walk(root: Path) -> Walk:
    """Every entry below the folder `root`, never following a link.

    Refused: symlinks (to files or folders), odd names (not descended into), anything but
    regular files and folders, and everything past `MAX_ENTRIES`.
    """
    found = Walk()
    stack = [""]
    seen = 0
    while stack:
        rel = stack.pop()
        try:
            with os.scandir(os.path.join(root, rel) if rel else root) as entries:
                children = sorted(entries, key=lambda e: e.name)
        except OSError as err:
            found.refused.append(Refused(rel or ".", f"it cannot be read ({err.strerror})"))
            continue
        if not children and rel:
            found.empty_dirs.append(rel)
        for entry in children:
            seen += 1
            path = f"{rel}/{entry.name}" if rel else entry.name
            if seen > MAX_ENTRIES:
                found.refused.append(Refused(rel or ".", f"more than {MAX_ENTRIES} entries"))
                stack.clear()
                break
            reason = odd_name(entry.name)
            if reason is None and entry.is_symlink():
                reason = "it is a symbolic link (commit the file itself)"
            if reason is not None:
                found.refused.append(Refused(path, reason))
            elif entry.is_dir(follow_symlinks=False):
                stack.append(path)
            elif entry.is_file(follow_symlinks=False):
                found.files.append(path)
                found.sizes[path] = entry.stat(follow_symlinks=False).st_size
            else:
                found.refused.append(Refused(path, "it is not a regular file or folder"))
    found.files.sort()
    found.refused.sort(key=lambda r: r.path)
    found.empty_dirs.sort()
    return found
