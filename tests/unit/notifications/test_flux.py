"""Flux notification-controller objects: valid against the upstream CRDs; the commit status
context (CEL) and the Alert's exclusion of still-running health-check timeouts checked on the
event shapes kustomize-controller emits."""

from __future__ import annotations

import re

import celpy
import pytest

from ilab_gitops.engines.bootstrap.flux import parent_kustomization
from ilab_gitops.engines.notifications import flux
from ilab_gitops.manifests.flux import CONTEXT_ANNOTATION
from ilab_gitops.manifests.pods import labels
from tests.support.k8s_schemas import crd_errors

REPO = "https://github.com/example-org/ilab-runs"
REV = "main@sha1:4c1e9a7b2d3f5e6a7b8c9d0e1f2a3b4c5d6e7f80"


def test_objects_validate_against_the_upstream_crds() -> None:
    provider, alert = flux.flux_notifications(REPO)
    assert crd_errors(provider) == []
    assert crd_errors(alert) == []
    assert provider["spec"]["type"] == "github"
    assert alert["spec"]["providerRef"]["name"] == provider["metadata"]["name"]


def test_alert_selects_step_kustomizations_only() -> None:
    (source,) = flux.flux_alert()["spec"]["eventSources"]
    assert (source["kind"], source["name"]) == ("Kustomization", "*")
    assert source["matchLabels"].items() <= labels("granite-demo", "prepare").items()
    parent = parent_kustomization("rendered", "flux-system", "ilab-runs", "kind-dev")["metadata"][
        "labels"
    ]
    assert not source["matchLabels"].items() <= parent.items()


def _context(event: dict[str, object]) -> str:
    env = celpy.Environment()
    program = env.program(env.compile(flux.COMMIT_STATUS_EXPR))
    activation = {"event": celpy.json_to_cel(event)}  # type: ignore[attr-defined]
    return str(program.evaluate(activation))


def _event(metadata: dict[str, str] | None) -> dict[str, object]:
    event: dict[str, object] = {
        "involvedObject": {
            "kind": "Kustomization",
            "name": "granite-demo-train-phase-1",
            "namespace": "flux-system",
        },
        "severity": "info",
        "reason": "ReconciliationSucceeded",
        "message": "Reconciliation finished in 1.2s, next run in 10m0s",
        "reportingController": "kustomize-controller",
        "timestamp": "2026-08-03T12:10:40Z",
    }
    if metadata is not None:
        event["metadata"] = metadata
    return event


def test_context_from_the_kustomization_annotation() -> None:
    # notification-controller strips `event.toolkit.fluxcd.io/` from the copied annotations.
    annotations = flux.context_annotations("granite-demo", "train-phase-1")
    key = CONTEXT_ANNOTATION.removeprefix("event.toolkit.fluxcd.io/")
    metadata = {"revision": REV, key: annotations[CONTEXT_ANNOTATION]}
    assert _context(_event(metadata)) == "ilab/granite-demo/train-phase-1"


@pytest.mark.parametrize("metadata", [None, {"revision": REV}])
def test_context_without_the_annotation(metadata: dict[str, str] | None) -> None:
    assert _context(_event(metadata)) == "ilab/granite-demo-train-phase-1"


# Messages of kustomize-controller error events (health check failures wrap fluxcd/pkg/ssa's
# WaitForSet errors: "timeout waiting for" / "failed early due to stalled resources").
MESSAGES = [
    (
        "health check failed after 4m59.98s: timeout waiting for: "
        "[PyTorchJob/ilab/granite-demo-train-phase-1-3f9c2a1b status: 'InProgress']",
        True,
    ),
    (
        "health check failed after 5m0.01s: timeout waiting for: "
        "[Job/ilab/granite-demo-prepare-5e1d0c2a status: 'InProgress']",
        True,
    ),
    (
        "health check failed after 12.4s: failed early due to stalled resources: "
        "[Job/ilab/granite-demo-eval-final-2b3c4d5e status: 'Failed']",
        False,
    ),
    (
        "health check failed after 5m0s: timeout waiting for: "
        "[PyTorchJob/ilab/granite-demo-train-phase-1-3f9c2a1b status: 'Failed']",
        False,
    ),
    ("kustomize build failed: accumulating resources: open /tmp/x: no such file", False),
]


@pytest.mark.parametrize(("message", "dropped"), MESSAGES)
def test_exclusion_list_drops_only_timeouts_of_running_workloads(
    message: str, dropped: bool
) -> None:
    (pattern,) = flux.flux_alert()["spec"]["exclusionList"]
    assert bool(re.search(pattern, message)) is dropped
