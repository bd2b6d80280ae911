"""The HTML report in a real browser: headless Chromium (Debian's `chromium` package).

The page must render with no console message at all (a CSP violation, a script error or a
blocked load each log one), every plot must decode (the page's own inline script records
each image's naturalWidth in the DOM, which `--dump-dom` shows), and screenshots at desktop
and phone widths must match the references in docs/ within a tolerance. DNS is mapped to
nothing, so a request to the network would fail and be logged.

Skipped without Chromium, unless ILAB_REQUIRE_CHROMIUM is set (CI sets it): then it fails.
`make update-goldens` rewrites docs/report-desktop.png and docs/report-phone.png.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
from PIL import Image, ImageChops, ImageStat

from ilab_gitops.report.build import build, write
from tests.support.report_data import RUN, write_failed_in_phase_2, write_finished

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs"
SIZES = {"desktop": (1280, 1800), "phone": (390, 1600)}
#: Mean absolute difference per channel (0-255) a screenshot may have from its reference:
#: room for anti-aliasing and font-hinting differences, far below a changed layout.
TOLERANCE = 2.0


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("ILAB_REQUIRE_CHROMIUM"):
            pytest.fail("ILAB_REQUIRE_CHROMIUM is set but chromium is not installed")
        pytest.skip("chromium not installed (Debian package `chromium`)")
    return found


def _run_chromium(page: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        _chromium(),
        "--headless",
        "--disable-gpu",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={tmp / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
        *args,
        page.as_uri(),
    ]
    if os.geteuid() == 0:
        command.insert(1, "--no-sandbox")  # Chromium refuses to sandbox as root
    proc = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=tmp,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp), "LANG": "C.UTF-8"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("report-pages")
    made = {}
    for name, writer in (("finished", write_finished), ("failed", write_failed_in_phase_2)):
        report = build(writer(tmp / name), RUN)
        out = tmp / f"{name}.html"
        write(report, out)
        made[name] = out
    return made


@pytest.mark.parametrize("which", ["finished", "failed"])
def test_page_renders_without_console_messages_and_every_plot_loads(
    pages: dict[str, Path], tmp_path: Path, which: str
) -> None:
    proc = _run_chromium(pages[which], tmp_path, "--dump-dom")
    assert _console(proc.stderr) == []
    dom = proc.stdout
    assert 'data-plots-loaded="3/3"' in dom, dom[:500]
    widths = [int(w) for w in re.findall(r'data-natural-width="(\d+)"', dom)]
    assert widths == [900, 900, 900]


def test_console_check_sees_a_blocked_request(pages: dict[str, Path], tmp_path: Path) -> None:
    """The check can fail: a page loading an image from the network logs a CSP violation."""
    bad = tmp_path / "bad.html"
    html = pages["finished"].read_text(encoding="utf-8")
    bad.write_text(html.replace("<h2>Summary</h2>", '<img src="https://example.com/x.png">', 1))
    proc = _run_chromium(bad, tmp_path, "--dump-dom")
    assert any("Content Security Policy" in line for line in _console(proc.stderr))


def _screenshot(page: Path, tmp: Path, size: tuple[int, int], name: str) -> Path:
    shot = tmp / f"{name}.png"
    _run_chromium(page, tmp, f"--screenshot={shot}", f"--window-size={size[0]},{size[1]}")
    return shot


def _mean_difference(a: Path, b: Path) -> float:
    with Image.open(a) as first, Image.open(b) as second:
        one, two = first.convert("RGB"), second.convert("RGB")
        assert one.size == two.size, f"{a.name} is {one.size}, {b.name} is {two.size}"
        return sum(ImageStat.Stat(ImageChops.difference(one, two)).mean) / 3


@pytest.mark.parametrize("width", sorted(SIZES))
def test_screenshots_match_the_references_in_docs(
    pages: dict[str, Path], tmp_path: Path, width: str, update_goldens: bool
) -> None:
    shot = _screenshot(pages["finished"], tmp_path, SIZES[width], width)
    reference = DOCS / f"report-{width}.png"
    if update_goldens:
        shutil.copyfile(shot, reference)
        return
    assert reference.is_file(), "no reference screenshot: make update-goldens"
    difference = _mean_difference(shot, reference)
    assert difference < TOLERANCE, (
        f"{width} screenshot differs from {reference.relative_to(ROOT)} by {difference:.2f} "
        f"(tolerance {TOLERANCE}); if the change is intended: make update-goldens"
    )


def test_screenshot_comparison_tells_another_page_apart(
    pages: dict[str, Path], tmp_path: Path
) -> None:
    """The tolerance is tight enough to fail: the failed run's page is not the reference."""
    reference = DOCS / "report-desktop.png"
    if not reference.is_file():
        pytest.skip("reference screenshot not made yet")
    shot = _screenshot(pages["failed"], tmp_path, SIZES["desktop"], "failed")
    assert _mean_difference(shot, reference) > TOLERANCE
