"""The pure compiler: PipelineRun + Environment -> Kubernetes manifests."""

from ilab_gitops.manifests.compile import compile_run
from ilab_gitops.manifests.hashing import spec_sha256
from ilab_gitops.manifests.model import STEP_IDS, CompiledStep, K8sObject, Manifests

__all__ = ["STEP_IDS", "CompiledStep", "K8sObject", "Manifests", "compile_run", "spec_sha256"]
