"""Real git repositories for tests: a bare `remote` and a clone of it with runs and
environments, the way the results-sync workflow sees the runs repo."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.specs import ROOT

_ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}

RUN_TEMPLATE = """\
apiVersion: gitops.instructlab.ai/v1alpha1
kind: PipelineRun
metadata:
  name: {name}
spec:
  environment: kind-dev
  baseModel:
    huggingFace:
      repo: ibm-granite/granite-7b-base
      revision: 0c2f2d6a1b7e3c9d4f5a6b7c8d9e0f1a2b3c4d5e
  sdgData:
    secretRef: {{name: sdg-object-store}}
  taxonomy:
    repoUrl: https://github.com/{taxonomy}
    commit: 9f8e7d6c5b4a39281706f5e4d3c2b1a098765432
    pullRequests: [{prs}]
  training:
    nnodes: 1
    nprocPerNode: 1
  evaluation:
    judgeSecretRef: {{name: judge-server}}
  output:
    secretRef: {{name: model-output-store}}
  publish:
    github:
      commentOnPullRequests: {comment}
      createRelease: {release}
"""


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=_ENV, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def run_spec(
    name: str,
    prs: list[int],
    taxonomy: str = "example-org/taxonomy",
    *,
    comment: bool = True,
    release: bool = True,
) -> str:
    return RUN_TEMPLATE.format(
        name=name,
        taxonomy=taxonomy,
        prs=", ".join(map(str, prs)),
        comment=str(comment).lower(),
        release=str(release).lower(),
    )


@dataclass(frozen=True)
class RunsRepoFixture:
    remote: Path
    work: Path

    def show(self, path: str) -> str | None:
        """`path` on the remote's main branch, or None."""
        try:
            return git(self.remote, "show", f"main:{path}")
        except subprocess.CalledProcessError:
            return None

    def head(self) -> str:
        return git(self.remote, "rev-parse", "main")

    def log(self) -> list[str]:
        return git(self.remote, "log", "--format=%s", "main").splitlines()

    def push_runs(self, files: dict[str, str], message: str = "runs") -> None:
        git(self.work, "pull", "--quiet", "--ff-only", "origin", "main")
        for path, text in files.items():
            target = self.work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        git(self.work, "add", "-A")
        git(self.work, "commit", "--quiet", "-m", message)
        git(self.work, "push", "--quiet", "origin", "HEAD:main")


def make_runs_repo(tmp: Path, runs: dict[str, str], *, render: bool = False) -> RunsRepoFixture:
    """A bare remote and a clone holding `runs` (name -> spec) and the kind-dev profile."""
    remote, work = tmp / "remote.git", tmp / "work"
    git(tmp, "init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    git(tmp, "clone", "--quiet", str(remote), str(work))
    git(work, "checkout", "--quiet", "-b", "main")
    (work / "environments").mkdir()
    env = (ROOT / "environments" / "kind-dev.yaml").read_text()
    (work / "environments" / "kind-dev.yaml").write_text(env)
    (work / "runs").mkdir()
    for name, text in runs.items():
        (work / "runs" / f"{name}.yaml").write_text(text)
    if render:  # main holds what the render job commits: rendered/<environment>/<run>/
        subprocess.run(
            [sys.executable, "-m", "ilab_gitops.cli", "render", "runs"],
            cwd=work,
            check=True,
            capture_output=True,
            timeout=600,
        )
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "initial runs")
    git(work, "push", "--quiet", "origin", "main")
    return RunsRepoFixture(remote, work)
