"""ilab-gitops: compile InstructLab PipelineRun specs into GitOps-ready Kubernetes manifests."""

__version__ = "0.1.0"
