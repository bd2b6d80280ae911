"""Step entrypoints run inside the runtime images: `python -m ilab_gitops.steps.<module>`.

Every module here may import the heavy dependencies of its image (boto3, torch,
instructlab-training, instructlab-eval, huggingface_hub); nothing outside `steps/` imports
them, so the CLI stays light. Shared pieces: `runtime` (params, secrets, markers, exit
codes), `s3` (clients and resumable reads), `archive` (safe streaming tar extraction),
`digests` (sha256 of trees).
"""
