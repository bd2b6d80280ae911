"""Flux notification-controller: a github Provider and an Alert on the step Kustomizations.

What the user sees on the commit (the Kustomization's source revision at the time):
- `success` ("reconciliation succeeded") once a step's Kustomization is Ready, i.e. its
  workload passed the health check (kustomize-controller marks these events as commit status
  updates).
- `failure` for any error event of the Kustomization: a failed workload ("health check failed
  after ...: failed early due to stalled resources: [... status: 'Failed']"), a build or apply
  error. The health-check timeouts of a workload that is still running or queued (the step
  Kustomizations use a short `timeout` by design, GITOPS.md fact 9) are dropped by the Alert's
  `exclusionList`, so a long training run does not show as failed.
- no `pending`: Flux's github notifier maps only info -> success and error -> failure and
  skips Progressing events, so waiting, queued and running are not posted under Flux
  (`ilab-gitops status` shows them).

Context: `ilab/<run>/<step>` (as under Argo CD) when the step Kustomization carries the
annotation `event.toolkit.fluxcd.io/ilab-context: ilab/<run>/<step>` (`context_annotations`;
the controller copies `event.toolkit.fluxcd.io/*` annotations into the event metadata),
else `ilab/<kustomization name>` = `ilab/<run>-<step>`, chosen by the Provider's
`commitStatusExpr` (CEL, notification-controller v1.6+; without it Flux would post
`kustomization/<name>/<first 8 hex of the Provider's UID>`).

The commit: the revision in the event, i.e. the runs repo revision the Kustomization last
applied. Every commit to the runs repo is a new revision for every step Kustomization, so a
finished step is re-posted as `success` on later commits too (the notifier skips a status
identical to the commit's latest one with the same context).

Credentials: the Secret named in `secretRef` (namespace of the Provider) with either `token`,
a fine-grained personal access token limited to the runs repo with the repository permission
"Commit statuses: Read and write" only, or a GitHub App with that same single permission:
`githubAppID`, `githubAppInstallationID`, `githubAppPrivateKey`.
"""

from __future__ import annotations

from ilab_gitops.manifests.flux import CONTEXT_ANNOTATION, status_context
from ilab_gitops.manifests.model import PART_OF, K8sObject

API_VERSION = "notification.toolkit.fluxcd.io/v1beta3"
NAME = "ilab-github"
ALERT_NAME = "ilab-steps"
CONTEXT_KEY = CONTEXT_ANNOTATION.rsplit("/", 1)[1]
#: Labels every step Kustomization has (manifests.pods.labels) and the parent one has not.
STEP_LABELS = {
    "app.kubernetes.io/name": "instructlab-pipeline",
    "app.kubernetes.io/managed-by": "ilab-gitops",
}
#: A workload still running or queued when the short health-check timeout ends.
STILL_IN_PROGRESS = r"timeout waiting for: \[[^\]]*status: 'InProgress'[^\]]*\]"
COMMIT_STATUS_EXPR = (
    f"has(event.metadata) && '{CONTEXT_KEY}' in event.metadata"
    f" ? event.metadata['{CONTEXT_KEY}']"
    " : 'ilab/' + event.involvedObject.name"
)


def context_annotations(run: str, step: str) -> dict[str, str]:
    """Annotations for a step Kustomization so Flux posts under `ilab/<run>/<step>`."""
    return {CONTEXT_ANNOTATION: status_context(run, step)}


def flux_provider(
    repo_url: str, namespace: str = "flux-system", secret_name: str = NAME
) -> K8sObject:
    """The github Provider posting commit statuses to the runs repo."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Provider",
        "metadata": {"name": NAME, "namespace": namespace, "labels": dict(PART_OF)},
        "spec": {
            "type": "github",
            "address": repo_url,
            "secretRef": {"name": secret_name},
            "commitStatusExpr": COMMIT_STATUS_EXPR,
        },
    }


def flux_alert(namespace: str = "flux-system") -> K8sObject:
    """One Alert for every run: the step Kustomizations, selected by label."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Alert",
        "metadata": {"name": ALERT_NAME, "namespace": namespace, "labels": dict(PART_OF)},
        "spec": {
            "providerRef": {"name": NAME},
            "eventSeverity": "info",
            "eventSources": [
                {
                    "kind": "Kustomization",
                    "name": "*",
                    "namespace": namespace,
                    "matchLabels": dict(STEP_LABELS),
                }
            ],
            "exclusionList": [STILL_IN_PROGRESS],
        },
    }


def flux_notifications(
    repo_url: str, namespace: str = "flux-system", secret_name: str = NAME
) -> list[K8sObject]:
    """Provider and Alert, in apply order (the Secret is created by the operator)."""
    return [flux_provider(repo_url, namespace, secret_name), flux_alert(namespace)]
