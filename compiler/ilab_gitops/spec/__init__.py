"""Spec models: the user contract (PipelineRun, Environment)."""

from ilab_gitops.spec.base import API_VERSION, SecretKeyRef, SecretRef
from ilab_gitops.spec.environment import Environment
from ilab_gitops.spec.pipeline_run import PipelineRun

__all__ = ["API_VERSION", "Environment", "PipelineRun", "SecretKeyRef", "SecretRef"]
