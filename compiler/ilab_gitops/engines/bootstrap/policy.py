"""An admission policy that keeps the GitOps engine's RBAC writes to the progress shape.

With `commitStatusProgress` the engine must be allowed to create Roles and RoleBindings in the
runs namespace (the AppProject lists them), and an engine usually runs as cluster-admin, so a
tampered `rendered/` tree could bind a powerful role to a step pod. This
ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1, Kubernetes 1.30+) applies to
requests, in the runs namespace, of the service accounts of the engine's namespace (its
controller, whatever an operator named it), and admits just what manifests/progress.py emits:
a Role with one rule, `patch` on ConfigMaps named `*-progress`, and a RoleBinding of a
`*-progress` Role to one `*-progress` ServiceAccount of the namespace. People and other
controllers are not affected; an engine that applies as another account (Argo CD sync
impersonation, Flux `serviceAccountName`) needs that account added to `matchConditions`.
`bootstrap` prints it for the platform owner.
"""

from __future__ import annotations

from ilab_gitops.manifests.model import PART_OF, K8sObject

API_VERSION = "admissionregistration.k8s.io/v1"

ROLE_RULE = (
    "request.resource.resource != 'roles' || ("
    "has(object.rules) && size(object.rules) == 1"
    " && object.rules[0].apiGroups == ['']"
    " && object.rules[0].resources == ['configmaps']"
    " && object.rules[0].verbs == ['patch']"
    " && has(object.rules[0].resourceNames) && size(object.rules[0].resourceNames) > 0"
    " && object.rules[0].resourceNames.all(n, n.endsWith('-progress')))"
)
BINDING_RULE = (
    "request.resource.resource != 'rolebindings' || ("
    "object.roleRef.apiGroup == 'rbac.authorization.k8s.io'"
    " && object.roleRef.kind == 'Role' && object.roleRef.name.endsWith('-progress')"
    " && has(object.subjects) && size(object.subjects) == 1"
    " && object.subjects[0].kind == 'ServiceAccount'"
    " && object.subjects[0].name.endsWith('-progress')"
    " && has(object.subjects[0].namespace)"
    " && object.subjects[0].namespace == object.metadata.namespace)"
)


def applier_prefix(engine_namespace: str) -> str:
    """User names of the service accounts in the engine's namespace start with this."""
    return f"system:serviceaccount:{engine_namespace}:"


def progress_rbac_policy(namespace: str, engine: str, engine_namespace: str) -> list[K8sObject]:
    """The policy and its binding to the runs namespace, in apply order; named per engine and
    namespace, so the Argo CD and the Flux bootstrap of one Environment do not overwrite each
    other."""
    name = f"ilab-gitops-progress-rbac-{engine}-{namespace}"
    prefix = applier_prefix(engine_namespace)
    policy: K8sObject = {
        "apiVersion": API_VERSION,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": dict(PART_OF)},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["rbac.authorization.k8s.io"],
                        "apiVersions": ["*"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["roles", "rolebindings"],
                    }
                ]
            },
            "matchConditions": [
                {
                    "name": "applied-by-the-gitops-engine",
                    "expression": f"request.userInfo.username.startsWith('{prefix}')",
                }
            ],
            "validations": [
                {
                    "expression": ROLE_RULE,
                    "message": "a run may only hold a Role that patches its *-progress ConfigMaps",
                },
                {
                    "expression": BINDING_RULE,
                    "message": "a run may only bind a *-progress Role to its *-progress account",
                },
            ],
        },
    }
    binding: K8sObject = {
        "apiVersion": API_VERSION,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name, "labels": dict(PART_OF)},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    return [policy, binding]
