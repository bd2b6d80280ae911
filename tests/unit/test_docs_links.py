"""The docs stand on their own: every relative link resolves inside the repository.

A fresh clone has nothing beside it, so a link to `../shared/...` (or to a file that moved)
is a dead end for a reader; external links (http/https/mailto) are not followed here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.specs import ROOT

#: Markdown links and images: [text](target) / ![alt](target); the target up to ")" or space.
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)")
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")


def _documents() -> list[Path]:
    found = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    found += sorted(ROOT.glob("*/README.md")) + sorted(ROOT.glob("tests/data/*/README.md"))
    return [path for path in found if path.is_file()]


def _relative_targets(text: str) -> list[str]:
    text = _CODE_SPAN.sub("", _FENCE.sub("", text))
    targets = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        targets.append(target.split("#", 1)[0])
    return targets


@pytest.mark.parametrize("doc", _documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    assert "../shared" not in text, f"{doc.relative_to(ROOT)} points outside the repository"
    for target in _relative_targets(text):
        resolved = (doc.parent / target).resolve()
        assert resolved.is_relative_to(ROOT), f"{target} leaves the repository"
        assert resolved.exists(), f"{doc.relative_to(ROOT)}: broken link {target}"


def test_the_link_finder_sees_links_and_skips_code_and_urls() -> None:
    text = (
        "see [a](docs/a.md#x) and ![i](img.png) `[d](code.md)`\n"
        "```\n[b](nope.md)\n```\n[c](https://x.y/z)\n"
    )
    assert _relative_targets(text) == ["docs/a.md", "img.png"]
