"""Which optional extra provides a missing module, for a one-line exit-2 message.

`diff`, `pr-comment` and `results` need `ilab-gitops[repo]`, `status` needs
`ilab-gitops[cluster]`; on the core install their imports fail with ModuleNotFoundError,
which must read as a usage problem naming the extra to install, not as an internal error.
"""

from __future__ import annotations

#: Top-level module name -> (distribution, extra that installs it).
PROVIDERS: dict[str, tuple[str, str]] = {
    "git": ("GitPython", "repo"),
    "github": ("PyGithub", "repo"),
    "boto3": ("boto3", "repo"),
    "botocore": ("boto3", "repo"),
    "kubernetes": ("kubernetes", "cluster"),
}


def missing_extra(err: ModuleNotFoundError) -> str | None:
    """The message for a missing optional dependency, or None when it is not one of ours."""
    top = (err.name or "").partition(".")[0]
    provider = PROVIDERS.get(top)
    if provider is None:
        return None
    distribution, extra = provider
    return (
        f"this command needs {distribution}, which is not installed; "
        f"install it with: pip install 'ilab-gitops[{extra}]'"
    )
