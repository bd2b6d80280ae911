"""Write pushed image references (`name:tag@sha256:...`) into reference environments.

The images workflow (.github/workflows/images.yml) runs this after pushing the four images:

    python runtime_images/pin_digests.py DIGESTS ENVIRONMENT.yaml...

DIGESTS holds one line per image, `<image> <reference>` (e.g. `train
ghcr.io/org/ilab-gitops/train:0.2.0@sha256:<64 hex>`). Only the values of `spec.images` change;
comments, order and every other byte stay as they were. Standard library only: it runs before
anything is installed. Exit 2, with a message naming the file, on any problem; then no file
is written.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

IMAGES = ("fetch", "train", "eval", "publish", "sdg")
REFERENCE = re.compile(
    r"^[a-z0-9][a-z0-9.:/_-]*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}@sha256:[0-9a-f]{64}$"
)
_BLOCK = re.compile(r"^(?P<indent>[ ]*)images:[ ]*(#.*)?$")
_ENTRY = re.compile(r"^(?P<head>[ ]+(?P<key>[a-z]+):[ ]+)(?P<value>[^ #]+)(?P<tail>[ ]*(#.*)?)$")


class PinError(Exception):
    pass


def read_digests(path: Path) -> dict[str, str]:
    refs: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in IMAGES or not REFERENCE.match(parts[1]):
            raise PinError(f"{path}:{number}: expected '<image> <name>:<tag>@sha256:<digest>'")
        if parts[0] in refs:
            raise PinError(f"{path}:{number}: {parts[0]} given twice")
        refs[parts[0]] = parts[1]
    missing = [image for image in IMAGES if image not in refs]
    if missing:
        raise PinError(f"{path}: no reference for {', '.join(missing)}")
    return refs


def pin(text: str, refs: dict[str, str], where: str) -> str:
    """`text` with the values under its (single) `images:` mapping replaced by `refs`."""
    lines = text.splitlines(keepends=True)
    blocks = [i for i, line in enumerate(lines) if _BLOCK.match(line.rstrip("\n"))]
    if len(blocks) != 1:
        raise PinError(f"{where}: expected one 'images:' mapping, found {len(blocks)}")
    start = blocks[0]
    indent = len(_BLOCK.match(lines[start].rstrip("\n")).group("indent"))  # type: ignore[union-attr]
    seen: set[str] = set()
    for i in range(start + 1, len(lines)):
        line = lines[i].rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if len(line) - len(line.lstrip(" ")) <= indent:
            break  # the mapping ended
        entry = _ENTRY.match(line)
        if entry is None or entry.group("key") not in IMAGES:
            raise PinError(f"{where}:{i + 1}: unexpected line in images: {line.strip()!r}")
        key = entry.group("key")
        seen.add(key)
        ending = lines[i][len(line) :]
        lines[i] = f"{entry.group('head')}{refs[key]}{entry.group('tail')}{ending}"
    missing = [image for image in IMAGES if image not in seen]
    if missing:
        raise PinError(f"{where}: images has no {', '.join(missing)}")
    return "".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: pin_digests.py DIGESTS ENVIRONMENT.yaml...", file=sys.stderr)
        return 2
    try:
        refs = read_digests(Path(argv[0]))
        updated = {Path(p): pin(Path(p).read_text(encoding="utf-8"), refs, p) for p in argv[1:]}
    except (OSError, UnicodeDecodeError, PinError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path, text in updated.items():
        path.write_text(text, encoding="utf-8")
        print(f"pinned {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
