"""Argo CD Notifications: one GitHub commit status per step, `ilab/<run>/<step>`.

Argo CD Notifications evaluates triggers per Application, and our Application is the whole
run, so each step is one condition of the trigger `ilab-step-status`, keyed on the step's
workload in `status.resources` (found by name, `<run>-<step>-<hash>`; Job, PyTorchJob or
TrainJob; not one waiting to be pruned). A condition sends once per `oncePer` value, the
synced revision plus the workload's health, so every health a step reaches at a commit is
posted once, to that commit:

    Argo CD health   GitHub state   description
    Missing          pending        waiting: ...
    Suspended        pending        queued: ...     (Kueue holds the workload)
    Progressing      pending        running: ...    (restarting: ... while a replica restarts)
    Healthy          success        succeeded: ...
    Degraded         failure        failed: ...

With the Environment's `commitStatusProgress`, a running step's description is its progress,
"running: epoch 3/7, 41 %": the health message of the step's progress ConfigMap
(`<run>-<step>-<hash>-progress`, manifests/progress.py, judged by the bootstrap's ConfigMap
Lua check; one awaiting pruning, from an earlier attempt, is not the step's), and `oncePer`
carries that text too, so each new progress is posted once. Argo CD keeps the last 100
`oncePer` values per Application (notifications-engine `notifiedHistoryMaxSize`); the steps
update progress at most every 15 minutes, so a long run may see an earlier state of a step
re-posted when its entry is dropped.

The commit is `status.operationState.syncResult.revision`: the revision the run's last sync
applied, i.e. the commit that added or changed the run (auto-sync runs only when the
Application is out of sync, so unrelated commits to the runs repo do not move it).

Requirements on the Argo CD side:
- per-resource health in the Application: Argo CD 3 no longer writes it by default; set
  `controller.resource.health.persist: "true"` in `argocd-cmd-params-cm` (restart the
  application controller). Without it the trigger never fires (the conditions need health).
- the Lua health checks from `bootstrap argocd` (PyTorchJob, TrainJob, the batch Job override).
- a GitHub App (Argo CD's github service supports no other credential) installed on the runs
  repo with the repository permission "Commit statuses: Read and write" only (GitHub adds
  "Metadata: Read" to every App). Its id, installation id and private key go into the Secret
  `argocd-notifications-secret` under the keys `github-appID`, `github-installationID` and
  `github-privateKey`.
- the subscription annotation(s) `SUBSCRIBE_ANNOTATIONS` on each run's Application (set by
  the ApplicationSet template).
"""

from __future__ import annotations

from typing import Any

from ilab_gitops.emit import yaml_emit
from ilab_gitops.manifests.flux import status_context
from ilab_gitops.manifests.model import ALL_STEP_IDS, K8sObject

TRIGGER = "ilab-step-status"
#: A named instance of the github service, so an existing `service.github` is left alone.
SERVICE = "ilab-github"
SECRET_KEYS = ("github-appID", "github-installationID", "github-privateKey")
SUBSCRIBE_ANNOTATIONS: dict[str, str] = {
    f"notifications.argoproj.io/subscribe.{TRIGGER}.{SERVICE}": ""
}
WORKLOAD_KINDS = ("Job", "PyTorchJob", "TrainJob")


def template_name(step: str) -> str:
    return f"ilab-step-{step}"


# ------------------------------------------------------------ trigger (expr-lang expressions)


def _is_step_expr(step: str) -> str:
    """expr-lang predicate inside a closure over `app.status.resources`."""
    kinds = ", ".join(f'"{k}"' for k in WORKLOAD_KINDS)
    return (
        f'.kind in [{kinds}] && .name startsWith (app.metadata.name + "-{step}-") '
        "&& .requiresPruning != true && .health != nil"
    )


def when_expr(step: str) -> str:
    """True once Argo CD has synced a revision and reports the step workload's health."""
    return (
        "app.status != nil && app.status.operationState != nil "
        "&& app.status.operationState.syncResult != nil && app.status.resources != nil "
        f"&& any(app.status.resources, {{{_is_step_expr(step)}}})"
    )


def once_per_expr(step: str) -> str:
    """`<revision>/<health>`: each health of the step is posted once per synced commit
    (`Missing` while the run has no such step, e.g. sdg of a run that brings its tarball);
    while it runs and reports progress, `<revision>/Progressing/<progress>`."""
    found = f"filter(app.status.resources, {{{_is_step_expr(step)}}})"
    progress = (
        "filter(app.status.resources, "
        f'{{.kind == "ConfigMap" && .name startsWith (app.metadata.name + "-{step}-") '
        '&& .name endsWith "-progress" && .requiresPruning != true && .health != nil})'
    )
    text = (
        f'(len({progress}) == 0 ? "" : ({progress}[0].health.message == nil ? "" : '
        f'"/" + {progress}[0].health.message))'
    )
    return (
        'app.status.operationState.syncResult.revision + "/" + '
        f'(len({found}) > 0 ? {found}[0].health.status : "Missing") + '
        f'(len({found}) > 0 && {found}[0].health.status == "Progressing" ? {text} : "")'
    )


def trigger() -> list[K8sObject]:
    return [
        {
            "description": f"the {step} step changed state",
            "when": when_expr(step),
            "oncePer": once_per_expr(step),
            "send": [template_name(step)],
        }
        for step in ALL_STEP_IDS
    ]


# ------------------------------------------------------- templates (Go text/template + sprig)


def _health_vars(step: str) -> str:
    """Go template prelude: `$h` and `$m`, the step workload's health status and message;
    `$p`, the health message of the step's progress ConfigMap (empty without one)."""
    kinds = " ".join(f'"{k}"' for k in WORKLOAD_KINDS)
    return (
        '{{- $h := "" -}}{{- $m := "" -}}{{- $p := "" -}}'
        '{{- range (dig "status" "resources" (list) .app) -}}'
        f"{{{{- if and (has .kind (list {kinds})) "
        f'(hasPrefix (printf "%s-{step}-" $.app.metadata.name) .name) '
        '(not (dig "requiresPruning" false .)) -}}'
        '{{- $h = dig "health" "status" "" . -}}{{- $m = dig "health" "message" "" . -}}'
        "{{- end -}}"
        f'{{{{- if and (eq .kind "ConfigMap") (hasPrefix (printf "%s-{step}-" $.app.metadata.name) '
        '.name) (hasSuffix "-progress" .name) (not (dig "requiresPruning" false .)) -}}'
        '{{- $p = dig "health" "message" "" . -}}'
        "{{- end -}}{{- end -}}"
    )


STATE_TEMPLATE = (
    '{{- if eq $h "Healthy" -}}success'
    '{{- else if eq $h "Degraded" -}}failure'
    "{{- else -}}pending{{- end -}}"
)
DESCRIPTION_TEMPLATE = (
    '{{- if eq $h "Healthy" -}}succeeded'
    '{{- else if eq $h "Degraded" -}}failed'
    '{{- else if eq $h "Suspended" -}}queued'
    '{{- else if and (eq $h "Progressing") (hasPrefix "Restarting" $m) -}}restarting'
    '{{- else if and (eq $h "Progressing") $p -}}running{{- $m = $p -}}'
    '{{- else if eq $h "Progressing" -}}running'
    "{{- else -}}waiting{{- end -}}"
    '{{- with $m -}}: {{ trimPrefix "Restarting: " . }}{{- end -}}'
)


def _target_url(argocd_url: str | None) -> str:
    if argocd_url:
        base = argocd_url.rstrip("/")
        return f"{base}/applications/{{{{ .app.metadata.namespace }}}}/{{{{ .app.metadata.name }}}}"
    # Argo CD's own `context.argocdUrl` (argocd-notifications-cm key `context`), when set.
    return (
        "{{- with .context.argocdUrl -}}{{ . }}/applications/"
        "{{ $.app.metadata.namespace }}/{{ $.app.metadata.name }}{{- end -}}"
    )


def template(step: str, argocd_url: str | None = None) -> K8sObject:
    """The notification template of one step: a github commit status (the description is the
    template's message; Argo CD cuts it to GitHub's 140 characters)."""
    prelude = _health_vars(step)
    return {
        "message": prelude + DESCRIPTION_TEMPLATE,
        "github": {
            "status": {
                "state": prelude + STATE_TEMPLATE,
                "label": status_context("{{ .app.metadata.name }}", step),
                "targetURL": _target_url(argocd_url),
            }
        },
    }


def _yaml(value: dict[str, Any] | list[Any]) -> str:
    """ConfigMap values are YAML text: written by the project's deterministic emitter, whose
    bytes do not depend on whether libyaml is installed."""
    return yaml_emit.dump(value)


def github_service() -> str:
    """`service.github.<name>`: GitHub App credentials read from argocd-notifications-secret."""
    app_id, installation_id, private_key = SECRET_KEYS
    return _yaml(
        {
            "appID": f"${app_id}",
            "installationID": f"${installation_id}",
            "privateKey": f"${private_key}",
        }
    )


def argocd_notifications_cm(
    argocd_namespace: str = "argocd", argocd_url: str | None = None
) -> K8sObject:
    """The `argocd-notifications-cm` fragment: github service, trigger, one template per step.

    Apply it like the argocd-cm fragment, with server-side apply and its own field manager, so
    these keys merge into the ConfigMap the Argo CD install created."""
    data = {f"service.github.{SERVICE}": github_service(), f"trigger.{TRIGGER}": _yaml(trigger())}
    for step in ALL_STEP_IDS:
        data[f"template.{template_name(step)}"] = _yaml(template(step, argocd_url))
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "argocd-notifications-cm",
            "namespace": argocd_namespace,
            "labels": {
                "app.kubernetes.io/name": "argocd-notifications-cm",
                "app.kubernetes.io/part-of": "argocd",
            },
        },
        "data": data,
    }


def argocd_cmd_params_cm(argocd_namespace: str = "argocd") -> K8sObject:
    """The `argocd-cmd-params-cm` fragment that puts per-resource health back into the
    Application, which the trigger reads (Argo CD 3 defaults it to off)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "argocd-cmd-params-cm",
            "namespace": argocd_namespace,
            "labels": {
                "app.kubernetes.io/name": "argocd-cmd-params-cm",
                "app.kubernetes.io/part-of": "argocd",
            },
        },
        "data": {"controller.resource.health.persist": "true"},
    }
