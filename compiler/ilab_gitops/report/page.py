"""One self-contained HTML page per run: what a model developer reads after (or during) a run.

Everything is inline: the plots as data: URIs, the CSS, and one small script (allowed by its
hash in a strict Content-Security-Policy; nothing loads from the network, no fonts are
fetched). Every string from the run's data is HTML-escaped, and links are only made from
https URLs. The page says plainly what is missing. Same data, same bytes.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from datetime import datetime
from html import escape

from ilab_gitops.manifests.model import STEP_IDS
from ilab_gitops.report.inputs import ReportData
from ilab_gitops.report.plots import Plot

#: Marks each plot with whether it decoded (naturalWidth > 0), for tests and readers' tools.
SCRIPT = (
    'window.addEventListener("load",function(){'
    'var ok=0,imgs=document.querySelectorAll("img.plot");'
    "for(var i=0;i<imgs.length;i++){var w=imgs[i].naturalWidth;"
    'imgs[i].setAttribute("data-natural-width",String(w));if(w>0){ok++;}}'
    'document.body.setAttribute("data-plots-loaded",ok+"/"+imgs.length);});'
)
SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{SCRIPT_HASH}'; base-uri 'none'; form-action 'none'"
)

CSS = """
:root { color-scheme: light; }
body { font-family: "DejaVu Sans", Verdana, sans-serif; margin: 0 auto; max-width: 62rem;
  padding: 1rem; color: #1d1d1d; line-height: 1.45; }
h1 { font-size: 1.5rem; margin: .2rem 0 .6rem; overflow-wrap: anywhere; }
h2 { font-size: 1.15rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; margin-top: 1.6rem; }
.state { display: inline-block; padding: .1rem .5rem; border-radius: .3rem; font-weight: bold; }
.state.ok { background: #e3f1e3; color: #1e5a1e; }
.state.partial { background: #fbeed5; color: #7a4b00; }
.missing { background: #fff8e6; border-left: .3rem solid #d98b00; padding: .5rem .8rem; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0; font-size: .92rem; }
th, td { border: 1px solid #ddd; padding: .25rem .45rem; text-align: left; vertical-align: top;
  overflow-wrap: anywhere; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.up { color: #1e6a1e; } .down { color: #a11d1d; }
.scroll { overflow-x: auto; }
figure { margin: .8rem 0; } figcaption { font-size: .85rem; color: #555; }
img.plot { max-width: 100%; height: auto; border: 1px solid #eee; }
pre { background: #f6f6f6; padding: .6rem; overflow-x: auto; font-size: .8rem;
  white-space: pre-wrap; overflow-wrap: anywhere; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem .8rem; }
dt { font-weight: bold; } dd { margin: 0; overflow-wrap: anywhere; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: .88em; }
@media (max-width: 40rem) { dl { grid-template-columns: 1fr; } dd { margin-bottom: .3rem; } }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  a { color: inherit; text-decoration: none; }
  a[href]::after { content: " (" attr(href) ")"; font-size: 8pt; color: #555; }
  figure, table, pre { break-inside: avoid; }
  pre { white-space: pre-wrap; }
  h2 { break-after: avoid; }
}
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _link(url: str | None, label: str) -> str:
    """A link only for https URLs (never javascript: or data:); plain text otherwise."""
    if url and url.startswith("https://") and not any(c.isspace() for c in url):
        return f'<a href="{_e(url)}" rel="noopener noreferrer">{_e(label)}</a>'
    return _e(label)


def _score(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _delta(base: float | None, candidate: float | None, digits: int = 2) -> str:
    if base is None or candidate is None:
        return "—"
    change = candidate - base
    if round(change, digits) == 0:
        return f"±{0:.{digits}f}"
    css = "up" if change > 0 else "down"
    return f'<span class="{css}">{change:+.{digits}f}</span>'


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: str) -> str:
    """`numeric` has n (number) or t (text) per column; cells are already escaped HTML."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{cell}</td>' if kind == "n" else f"<td>{cell}</td>"
            for cell, kind in zip(row, numeric, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


def _pr_url(repo: str | None, pr: int) -> str | None:
    if repo and repo.startswith("https://github.com/"):
        return f"{repo.rstrip('/').removesuffix('.git')}/pull/{pr}"
    return None


def _summary(data: ReportData) -> str:
    r = data.results
    rows: list[tuple[str, str]] = []
    if r is not None:
        rows += [
            ("Finished", _e(r.finishedAt)),
            ("Cluster", f"<code>{_e(r.cluster)}</code> / <code>{_e(r.namespace)}</code>"),
            ("Base model", f"<code>{_e(r.baseModel)}</code>"),
            ("Candidate", f"<code>{_e(r.candidateCheckpoint)}</code>"),
            ("S3 prefix", f"<code>{_e(r.model.s3Uri)}</code>"),
        ]
        hf = r.model
        if hf.huggingFaceRepo:
            label = f"{hf.huggingFaceRepo}@{hf.huggingFaceRevision or 'main'}"
            rows.append(("Hugging Face", _link(hf.huggingFaceUrl, label)))
        rows.append(("Spec sha256", f"<code>{_e(r.specSha256)}</code>"))
    if data.taxonomy_repo:
        rows.append(("Taxonomy", _link(data.taxonomy_repo, data.taxonomy_repo)))
    if data.pull_requests:
        links = ", ".join(
            _link(_pr_url(data.taxonomy_repo, pr), f"#{pr}") for pr in data.pull_requests
        )
        rows.append(("Pull requests", links))
    if not rows:
        return "<p>No run details: neither results.json nor the spec is present.</p>"
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _duration(seconds: float) -> str:
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {sec:02d} s"


def _timeline(data: ReportData) -> str:
    rows: list[list[str]] = []
    previous: datetime | None = None
    steps = [*STEP_IDS, *sorted(set(data.markers) - set(STEP_IDS))]
    for step in steps:
        marker = data.markers.get(step)
        if marker is None:
            rows.append([_e(step), "not finished", "—", "—"])
            previous = None
            continue
        finished = _parse_time(marker.finishedAt)
        took = (
            _duration((finished - previous).total_seconds())
            if finished and previous and finished >= previous
            else "—"
        )
        rows.append([_e(step), "finished", _e(marker.finishedAt), took])
        previous = finished
    note = (
        "<p>“Since previous” is the time between this step's finish and the previous "
        "step's finish (queueing included).</p>"
    )
    return _table(["step", "state", "finished at", "since previous"], rows, "ttnn") + note


def _scores(data: ReportData) -> str:
    parts: list[str] = []
    mt = data.mt_bench
    if mt is not None:
        rows = [
            [
                _e(c.checkpoint) + (" ★ chosen" if c.checkpoint == mt.bestCheckpoint else ""),
                f"{c.samples:,}",
                _score(c.score),
                f"{c.errorRate:.1%}",
            ]
            for c in sorted(mt.checkpoints, key=lambda c: c.samples)
        ]
        parts.append("<h3>MT-Bench per checkpoint</h3>")
        parts.append(_table(["checkpoint", "samples", "score", "judge errors"], rows, "tnnn"))
    overall = [
        [_e(name), _score(b.base), _score(b.candidate), _delta(b.base, b.candidate)]
        for name, b in (
            ("MT-Bench-Branch", data.mt_bench_branch),
            ("MMLU-Branch", data.mmlu_branch),
        )
        if b is not None
    ]
    if overall:
        parts.append("<h3>Candidate against base</h3>")
        parts.append(_table(["benchmark", "base", "candidate", "change"], overall, "tnnn"))
    if data.qna_files:
        rows = [
            [
                f"<code>{_e(q.path)}</code>",
                _score(q.mtBenchBranchBase),
                _score(q.mtBenchBranchCandidate),
                _delta(q.mtBenchBranchBase, q.mtBenchBranchCandidate),
                _score(q.mmluBranchBase, 3),
                _score(q.mmluBranchCandidate, 3),
                _delta(q.mmluBranchBase, q.mmluBranchCandidate, 3),
            ]
            for q in data.qna_files
        ]
        parts.append("<h3>Per task (qna.yaml)</h3>")
        header = ["task", "MT-B-B base", "cand.", "change", "MMLU-B base", "cand.", "change"]
        parts.append(_table(header, rows, "tnnnnnn"))
    return "".join(parts) or "<p>No scores yet.</p>"


def _plots(plots: Sequence[Plot]) -> str:
    out = []
    for plot in plots:
        uri = "data:image/png;base64," + base64.b64encode(plot.png).decode()
        out.append(
            f'<figure><img class="plot" src="{uri}" alt="{_e(plot.alt)}">'
            f"<figcaption><strong>{_e(plot.title)}.</strong> {_e(plot.alt)}</figcaption></figure>"
        )
    return "".join(out)


def render_page(data: ReportData, plots: Sequence[Plot]) -> str:
    """The report as one HTML document (text; write it as UTF-8)."""
    state = (
        '<span class="state ok">finished</span>'
        if data.finished
        else '<span class="state partial">incomplete</span>'
    )
    missing = (
        '<div class="missing"><strong>Missing data.</strong><ul>'
        + "".join(f"<li>{_e(note)}</li>" for note in data.notes)
        + "</ul></div>"
        if data.notes
        else ""
    )
    spec = (
        f"<pre>{_e(data.spec_text)}</pre>"
        if data.spec_text is not None
        else "<p>The spec is not in the results folder.</p>"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>Run {_e(data.run)}: ilab-gitops report</title>"
        f"<style>{CSS}</style></head>\n<body>"
        f"<h1>Run <code>{_e(data.run)}</code> {state}</h1>{missing}"
        f"<h2>Summary</h2>{_summary(data)}"
        f"<h2>Plots</h2>{_plots(plots)}"
        f"<h2>Scores</h2>{_scores(data)}"
        f"<h2>Step timeline</h2>{_timeline(data)}"
        f"<h2>The spec</h2>{spec}"
        "<p><small>Made by ilab-gitops report from the run's results folder.</small></p>"
        f"<script>{SCRIPT}</script>"
        "</body></html>\n"
    )
