"""Every pod the compiler emits meets the "restricted" Pod Security Standard and needs no API.

Checked on every golden tree and on runs that use every optional feature (each base-model
source, CA bundles, tokens) against every reference environment. The checker itself is tested
against one broken pod per rule, so a green run means something.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from ilab_gitops.manifests.progress import PROGRESS_STEPS, TOKEN_DIR
from tests.security.pods import (
    all_pod_specs,
    containers,
    documents,
    golden_objects,
    golden_trees,
    tree_files,
)
from tests.security.pss import restricted_violations
from tests.security.specs import rendered_variants

PodSpec = dict[str, Any]
GOLDEN_PODS = all_pod_specs(golden_objects())
VARIANT_PODS = [
    (f"{label} {where}", pod)
    for label, files in rendered_variants()
    for where, pod in all_pod_specs(documents(files))
]
ALL_PODS = GOLDEN_PODS + VARIANT_PODS


def test_every_golden_tree_has_a_pod_per_step() -> None:
    for tree in golden_trees():
        docs = list(documents(tree_files(tree)))
        pods = all_pod_specs(docs)
        # A TrainJob's pods come from its runtime (tests/unit/test_trainjob.py checks them).
        trainjobs = sum(obj.get("kind") == "TrainJob" for _, obj in docs)
        assert len(pods) + trainjobs >= 7, f"{tree.name}: found only {len(pods)} pod templates"
    assert len(VARIANT_PODS) >= 9 * 7


@pytest.mark.parametrize(("where", "pod"), ALL_PODS, ids=[w for w, _ in ALL_PODS])
def test_pod_meets_restricted_pod_security_standard(where: str, pod: PodSpec) -> None:
    assert restricted_violations(pod) == []


@pytest.mark.parametrize(("where", "pod"), ALL_PODS, ids=[w for w, _ in ALL_PODS])
def test_step_pod_needs_no_kubernetes_api_and_writes_no_root_filesystem(
    where: str, pod: PodSpec
) -> None:
    assert pod.get("automountServiceAccountToken") is False
    assert "serviceAccount" not in pod
    tokens = _token_volumes(pod)
    if "serviceAccountName" in pod:
        # commitStatusProgress: the run's progress account, its token as the one volume.
        assert pod["serviceAccountName"].endswith("-progress"), where
        assert [v["name"] for v in tokens] == ["progress-token"], where
        assert any(s in where for s in PROGRESS_STEPS), where
    else:
        assert tokens == [], where
    assert pod.get("enableServiceLinks") is False
    for name, container in containers(pod):
        ctx = container.get("securityContext") or {}
        assert ctx.get("readOnlyRootFilesystem") is True, name
        assert ctx.get("privileged") is False, name


def _token_volumes(pod: PodSpec) -> list[dict[str, Any]]:
    """Volumes that project a service-account token."""
    return [
        volume
        for volume in pod.get("volumes") or []
        if any(
            "serviceAccountToken" in s for s in (volume.get("projected") or {}).get("sources", [])
        )
    ]


def test_progress_token_reaches_only_the_reporting_steps() -> None:
    """The reference environment with commitStatusProgress gives the token to the training
    and MT-Bench pods, read-only at its own path, and to no other step."""
    with_token = [where for where, pod in ALL_PODS if "serviceAccountName" in pod]
    assert with_token and all(any(s in w for s in PROGRESS_STEPS) for w in with_token)
    for _where, pod in ALL_PODS:
        if "serviceAccountName" not in pod:
            continue
        mounts = [m for _, c in containers(pod) for m in c.get("volumeMounts") or []]
        (mount,) = [m for m in mounts if m["name"] == "progress-token"]
        assert mount == {"name": "progress-token", "mountPath": TOKEN_DIR, "readOnly": True}


# --------------------------------------------------------------------------- the checker


def _set(path: str, value: Any) -> Callable[[PodSpec], None]:
    """Mutator setting a dotted path; `c0` is the first container, `init` adds one."""

    def apply(pod: PodSpec) -> None:
        node: Any = pod
        parts = path.split(".")
        for part in parts[:-1]:
            node = node["containers"][0] if part == "c0" else node.setdefault(part, {})
        node[parts[-1]] = value

    return apply


def _drop(path: str) -> Callable[[PodSpec], None]:
    def apply(pod: PodSpec) -> None:
        node: Any = pod
        parts = path.split(".")
        for part in parts[:-1]:
            node = node["containers"][0] if part == "c0" else node[part]
        node.pop(parts[-1], None)

    return apply


def _add_volume(volume: dict[str, Any]) -> Callable[[PodSpec], None]:
    return lambda pod: pod["volumes"].append(volume)


def _add_init(security: dict[str, Any]) -> Callable[[PodSpec], None]:
    def apply(pod: PodSpec) -> None:
        init = copy.deepcopy(pod["containers"][0])
        init["name"] = "init"
        init["securityContext"].update(security)
        pod["initContainers"] = [init]

    return apply


def _both(*mutators: Callable[[PodSpec], None]) -> Callable[[PodSpec], None]:
    def apply(pod: PodSpec) -> None:
        for mutate in mutators:
            mutate(pod)

    return apply


BROKEN: dict[str, tuple[Callable[[PodSpec], None], str]] = {
    "host-network": (_set("hostNetwork", True), "hostNetwork"),
    "host-pid": (_set("hostPID", True), "hostPID"),
    "host-ipc": (_set("hostIPC", True), "hostIPC"),
    "privileged": (_set("c0.securityContext.privileged", True), "privileged"),
    "privileged-init": (_add_init({"privileged": True}), "initContainers[init]: privileged"),
    "escalation": (_set("c0.securityContext.allowPrivilegeEscalation", True), "Escalation"),
    "escalation-unset": (_drop("c0.securityContext.allowPrivilegeEscalation"), "Escalation"),
    "root-container": (_set("c0.securityContext.runAsNonRoot", False), "runAsNonRoot"),
    "root-unset": (
        _both(_drop("securityContext.runAsNonRoot"), _drop("c0.securityContext.runAsNonRoot")),
        "runAsNonRoot",
    ),
    "uid-0-pod": (_set("securityContext.runAsUser", 0), "runAsUser is 0"),
    "uid-0-container": (_set("c0.securityContext.runAsUser", 0), "runAsUser is 0"),
    "seccomp-unconfined": (
        _set("securityContext.seccompProfile", {"type": "Unconfined"}),
        "seccompProfile",
    ),
    "seccomp-unset": (_drop("securityContext.seccompProfile"), "seccompProfile"),
    "caps-not-dropped": (_set("c0.securityContext.capabilities", {"drop": ["NET_RAW"]}), "ALL"),
    "caps-added": (
        _set("c0.securityContext.capabilities", {"drop": ["ALL"], "add": ["SYS_ADMIN"]}),
        "SYS_ADMIN",
    ),
    "host-path": (_add_volume({"name": "h", "hostPath": {"path": "/"}}), "hostPath"),
    "nfs-volume": (_add_volume({"name": "n", "nfs": {"server": "x", "path": "/"}}), "nfs"),
    "host-port": (_set("c0.ports", [{"containerPort": 80, "hostPort": 80}]), "hostPort"),
    "proc-mount": (_set("c0.securityContext.procMount", "Unmasked"), "procMount"),
    "sysctl": (
        _set("securityContext.sysctls", [{"name": "kernel.msgmax", "value": "1"}]),
        "sysctl",
    ),
    "selinux": (_set("securityContext.seLinuxOptions", {"type": "spc_t"}), "seLinuxOptions"),
    "apparmor": (_set("c0.securityContext.appArmorProfile", {"type": "Unconfined"}), "appArmor"),
    "host-process": (
        _set("securityContext.windowsOptions", {"hostProcess": True}),
        "hostProcess",
    ),
}


def _compliant_pod() -> PodSpec:
    where, pod = GOLDEN_PODS[0]
    assert restricted_violations(pod) == [], where
    return copy.deepcopy(pod)


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_checker_reports_each_broken_rule(case: str) -> None:
    mutate, expected = BROKEN[case]
    pod = _compliant_pod()
    mutate(pod)
    found = restricted_violations(pod)
    assert any(expected in violation for violation in found), found


def test_checker_accepts_what_restricted_allows() -> None:
    pod = _compliant_pod()
    ctx = pod["containers"][0]["securityContext"]
    ctx["capabilities"] = {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    ctx["seccompProfile"] = {"type": "Localhost", "localhostProfile": "ilab.json"}
    pod["volumes"].append({"name": "s", "secret": {"secretName": "x"}})
    pod["volumes"].append({"name": "p", "projected": {"sources": []}})
    pod["securityContext"]["sysctls"] = [{"name": "net.ipv4.tcp_syncookies", "value": "1"}]
    assert restricted_violations(pod) == []
    assert restricted_violations(pod, {"container.apparmor.security.beta.kubernetes.io/a": "x"})
