"""What the optional sdg step will do, for the PR preview (notes under the run's details).

A reviewer of a run with `sdgData.generate` sees which taxonomy changes feed the teacher,
which teacher Secret, how much it generates, and that changing any of it re-runs SDG and
every step after it. The exact qna.yaml list needs the taxonomy repository, which the
preview does not clone: it names the commit, base branch and pull requests, and the step
logs the files and records them in its done marker.
"""

from __future__ import annotations

from collections.abc import Sequence

from ilab_gitops.manifests.model import SDG_STEP
from ilab_gitops.runsrepo.stepdiff import StepDiff
from ilab_gitops.spec.pipeline_run import PipelineRun

_SHOWN_PRS = 20


def sdg_notes(run: PipelineRun, steps: Sequence[StepDiff] = ()) -> list[str]:
    """Plain-text lines (the comment escapes them); none for runs with an SDG tarball."""
    gen = run.spec.sdgData.generate
    if gen is None:
        return []
    taxonomy = run.spec.taxonomy
    prs = [f"#{n}" for n in taxonomy.pullRequests[:_SHOWN_PRS]]
    if len(taxonomy.pullRequests) > _SHOWN_PRS:
        prs.append(f"and {len(taxonomy.pullRequests) - _SHOWN_PRS} more")
    from_prs = f" (taxonomy pull requests {', '.join(prs)})" if prs else ""
    ca = f", CA bundle from ConfigMap {gen.caBundle.name}" if gen.caBundle is not None else ""
    step = next((s for s in steps if s.step_id == SDG_STEP), None)
    action = {"run": "runs", "rerun": "re-runs", "untouched": "does not re-run"}.get(
        step.action if step is not None else "run", "runs"
    )
    return [
        f"SDG in the cluster: step {SDG_STEP} {action} before prepare, generating from the "
        f"qna.yaml files that taxonomy commit {taxonomy.commit[:12]} changes against branch "
        f"{gen.taxonomyBaseBranch}{from_prs} of {taxonomy.repoUrl}",
        f"SDG teacher: the endpoint and model_name in Secret {gen.teacherSecretRef.name}{ca}; "
        f"pipeline {gen.pipeline}, {gen.numInstructions} instructions per seed example, "
        f"batch size {gen.batchSize}, {gen.numWorkers} workers",
        "A change to sdgData, the taxonomy commit or the base branch re-runs SDG and every "
        "step after it (prepare, training, evaluation, upload, publish)",
    ]
