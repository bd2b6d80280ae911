"""Shared building blocks of the spec models: one strict base, names, secret references."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

API_VERSION = "gitops.instructlab.ai/v1alpha1"

#: Longest run name such that `<run>-<step>-<hash8>-worker-NN` stays a 63-character DNS label.
MAX_RUN_NAME = 30

DNS1035_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
DNS1123_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class StrictModel(BaseModel):
    """Base of every spec model: unknown fields rejected, no type coercion, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        populate_by_name=False,
        allow_inf_nan=False,
        validate_default=True,
    )


Dns1123Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=63, pattern=DNS1123_PATTERN),
    Field(description="A Kubernetes object name: lowercase letters, digits and '-'."),
]

SecretKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$"),
]


class Metadata(StrictModel):
    """Object metadata; only the name is meaningful."""

    name: Annotated[
        str,
        StringConstraints(min_length=1, max_length=MAX_RUN_NAME, pattern=DNS1035_PATTERN),
    ] = Field(
        description=(
            "DNS-1035 label (lowercase letters, digits, '-'; starts with a letter), at most "
            f"{MAX_RUN_NAME} characters so that every derived object name fits in 63."
        )
    )


class SecretRef(StrictModel):
    """A reference to a Secret in the run's namespace; the value never enters the spec."""

    name: Dns1123Name = Field(description="Name of the Secret in the run's namespace.")


class SecretKeyRef(StrictModel):
    """A reference to one key of a Secret."""

    name: Dns1123Name = Field(description="Name of the Secret in the run's namespace.")
    key: SecretKey = Field(description="Key inside the Secret.")


class ConfigMapKeyRef(StrictModel):
    """A reference to one key of a ConfigMap (for non-secret files such as CA bundles)."""

    name: Dns1123Name = Field(description="Name of the ConfigMap in the run's namespace.")
    key: SecretKey = Field(description="Key inside the ConfigMap.")


Attempt = Annotated[
    int,
    Field(
        ge=0,
        le=1000,
        description="Bump to re-run this step (and every step after it) without other changes.",
    ),
]

Kind = Literal["PipelineRun", "Environment"]
