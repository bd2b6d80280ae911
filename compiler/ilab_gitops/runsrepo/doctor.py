"""`ilab-gitops doctor`: a runs repo's own configuration, checked offline.

What `init` sets up can drift or be left half done: workflows referenced by a tag, a workflow
variable nobody documented, a profile no engine applies, CODEOWNERS still commented out, the
example run copied into `runs/` unchanged. Each check reads files only (no network, no git,
no cluster) and yields `Problem`s; the CLI prints one line per problem and exits 2.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from ilab_gitops.load.sources import LoadError, parse_yaml
from ilab_gitops.load.workspace import load_workspace
from ilab_gitops.runsrepo.scaffold import EXAMPLE_RUN, WORKFLOWS
from ilab_gitops.spec.environment import Environment

_USES = re.compile(r"^\s*-?\s*uses:\s*['\"]?([^'\"\s#]+)", re.M)
_ILAB_REF = re.compile(r"^\s*ilab-ref:\s*['\"]?([^'\"\n]+?)['\"]?\s*$", re.M)
_REFERENCE = re.compile(r"\$\{\{\s*(vars|secrets)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_SHA = re.compile(r"^[0-9a-f]{40}$")
_CODEOWNERS_PLACES = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")
#: Folders CODEOWNERS must give to someone (the platform owners).
MUST_OWN = ("environments/", ".github/")
_README = "README.md"
_EXAMPLE_NAME = "granite-example"
_MAX_BYTES = 1_000_000


@dataclass(frozen=True, order=True)
class Problem:
    """One finding: the file (relative to the repo root) and what to do about it."""

    path: str
    message: str

    def as_text(self) -> str:
        return f"{self.path}: {self.message}"


def _read(path: Path) -> str | None:
    """A regular file's text (never through a symlink), or None."""
    if path.is_symlink() or not path.is_file() or path.stat().st_size > _MAX_BYTES:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _workflow_files(root: Path) -> list[Path]:
    folder = root / ".github" / "workflows"
    if not folder.is_dir() or folder.is_symlink():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".yml", ".yaml"))


def check_workflows(root: Path) -> Iterator[Problem]:
    """The scaffold's workflows exist; every `uses:` and install source is pinned."""
    for name in WORKFLOWS:
        if _read(root / ".github" / "workflows" / name) is None:
            yield Problem(
                f".github/workflows/{name}",
                "missing (or not a regular file); `ilab-gitops init --force` writes it again",
            )
    for path in _workflow_files(root):
        text = _read(path)
        rel = path.relative_to(root).as_posix()
        if text is None:
            continue
        for target in _USES.findall(text):
            if target.startswith(("./", "docker://")):
                continue
            ref = target.rpartition("@")[2] if "@" in target else ""
            if not _SHA.match(ref):
                shown = ref or "no ref"
                yield Problem(
                    rel,
                    f'uses "{target}" at {shown}, which is not pinned; a tag or branch can be '
                    "moved, so use the full 40-character commit SHA",
                )
        for ref in _ILAB_REF.findall(text):
            if not _SHA.match(ref.strip()):
                yield Problem(
                    rel,
                    f'installs ilab-gitops at "{ref.strip()}", which is not pinned; use the '
                    "full 40-character commit SHA (the same as the uses: lines)",
                )


def check_documented(root: Path) -> Iterator[Problem]:
    """Every `${{ vars.X }}` / `${{ secrets.X }}` of the workflows is named in README.md."""
    readme = _read(root / _README) or ""
    seen: set[tuple[str, str, str]] = set()
    for path in _workflow_files(root):
        text = _read(path) or ""
        rel = path.relative_to(root).as_posix()
        for kind, name in _REFERENCE.findall(text):
            if name == "GITHUB_TOKEN" or (rel, kind, name) in seen:
                continue
            seen.add((rel, kind, name))
            if f"`{name}`" not in readme:
                what = "variable" if kind == "vars" else "secret"
                yield Problem(
                    rel,
                    f"uses the {what} {name}, which README.md does not document; add it to "
                    'the table under "GitHub: workflow variables, secrets and tokens"',
                )


def _bootstrap_objects(root: Path, engine: str) -> list[dict[str, object]] | None:
    text = _read(root / "bootstrap" / f"{engine}.yaml")
    if text is None:
        return None
    try:
        return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    except yaml.YAMLError:
        return []


def _argocd_namespaces(objects: list[dict[str, object]]) -> set[str]:
    """Destination namespaces of the AppProject and ApplicationSet."""
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "destination" and isinstance(value, dict):
                    namespace = value.get("namespace")
                    if isinstance(namespace, str):
                        found.add(namespace)
                elif key == "destinations" and isinstance(value, list):
                    for item in value:
                        if isinstance(item, dict) and isinstance(item.get("namespace"), str):
                            found.add(str(item["namespace"]))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for obj in objects:
        if obj.get("kind") in ("AppProject", "ApplicationSet"):
            walk(obj.get("spec"))
    return found


def check_environments(root: Path) -> Iterator[Problem]:
    """Profiles valid; each bootstrap file served by a profile that lists its engine."""
    folder = root / "environments"
    ws = load_workspace([], folder if folder.is_dir() else None)
    for d in ws.diagnostics:
        if d.severity == "error":
            yield Problem(_relative(root, d.path), f"{d.line}:{d.column}: {d.code}: {d.message}")
    if not ws.environments and not ws.diagnostics:
        yield Problem("environments/", "no Environment profile; runs have nowhere to go")
    if not ws.ok:
        return  # the bootstrap is judged against valid profiles only
    yield from _bootstrap_problems(root, [env for _, env in ws.environments.values()])


def _bootstrap_problems(root: Path, envs: list[Environment]) -> Iterator[Problem]:
    argocd = _bootstrap_objects(root, "argocd")
    if argocd is not None:
        served = {e.spec.namespace for e in envs if "argocd" in e.spec.engines}
        if not served:
            yield Problem("bootstrap/argocd.yaml", "no environment lists argocd in spec.engines")
        for namespace in sorted(_argocd_namespaces(argocd) - served if served else ()):
            yield Problem(
                "bootstrap/argocd.yaml",
                f'targets namespace "{namespace}", which no argocd environment uses '
                f"(theirs: {', '.join(sorted(served)) or 'none'}); write it again with "
                "`ilab-gitops bootstrap argocd --environment NAME`",
            )
    flux = _bootstrap_objects(root, "flux")
    if flux is not None:
        served = {e.spec.flux.namespace for e in envs if "flux" in e.spec.engines}
        if not served:
            yield Problem("bootstrap/flux.yaml", "no environment lists flux in spec.engines")
        for obj in flux if served else ():
            meta = obj.get("metadata")
            where = meta.get("namespace") if isinstance(meta, dict) else None
            kind = obj.get("kind")
            if kind == "Kustomization" and isinstance(where, str) and where not in served:
                yield Problem(
                    "bootstrap/flux.yaml",
                    f'its Kustomization is in namespace "{where}", which no flux '
                    f"environment uses (spec.flux.namespace: {', '.join(sorted(served))})",
                )


def _relative(root: Path, shown: str) -> str:
    try:
        return Path(shown).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return shown


def _owned(rules: list[tuple[str, list[str]]], folder: str) -> bool:
    """Whether the last rule matching `folder` (GitHub: the last match wins) has an owner."""
    owners: list[str] = []
    for pattern, who in rules:
        bare = pattern.lstrip("/").rstrip("/")
        if (
            pattern in ("*", "/*", "**", "/**")
            or bare == folder.rstrip("/")
            or (bare in (f"{folder}*", f"{folder}**"))
        ):
            owners = who
    return bool(owners)


def check_codeowners(root: Path) -> Iterator[Problem]:
    """CODEOWNERS exists and gives environments/ and .github/ to someone."""
    found = [(place, _read(root / place)) for place in _CODEOWNERS_PLACES]
    place, text = next(((p, t) for p, t in found if t is not None), (".github/CODEOWNERS", None))
    if text is None:
        yield Problem(place, "missing; `ilab-gitops init --owners @org/team` writes one")
        return
    rules: list[tuple[str, list[str]]] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            pattern, *who = line.split()
            rules.append((pattern, who))
    for folder in MUST_OWN:
        if not _owned(rules, folder):
            yield Problem(
                place,
                f"gives {folder} to nobody; add `/{folder} @org/team` (the platform owners)",
            )


def check_no_live_example(root: Path) -> Iterator[Problem]:
    """The scaffold's example is not in runs/ unchanged (it would start on merge)."""
    example = _read(root / EXAMPLE_RUN)
    folder = root / "runs"
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".yaml", ".yml"):
            continue
        text = _read(path)
        if text is None:
            continue
        rel = path.relative_to(root).as_posix()
        try:  # the project's loader: run files come from pull requests, keep its limits
            data = parse_yaml(text.encode("utf-8"), rel).data
        except LoadError:
            continue  # validate reports it
        meta = data.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        if (example is not None and text == example) or name == _EXAMPLE_NAME:
            yield Problem(
                rel,
                f"is the scaffold's example run ({_EXAMPLE_NAME}): merged, it starts on the "
                "cluster; give it its own name and settings, or delete it",
            )


CHECKS = (
    check_workflows,
    check_documented,
    check_environments,
    check_codeowners,
    check_no_live_example,
)


def doctor(root: Path) -> list[Problem]:
    """Every problem found, sorted by file then message."""
    return sorted({p for check in CHECKS for p in check(root)})
