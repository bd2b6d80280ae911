"""The Kubernetes "restricted" Pod Security Standard (which includes "baseline"), as a checker.

Follows https://kubernetes.io/docs/concepts/security/pod-security-standards/ (policy version
v1.33, unchanged through v1.35): each rule returns a readable violation, so a test can assert
an empty list and show what broke.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tests.security.pods import containers

#: Restricted: the only volume sources allowed.
ALLOWED_VOLUMES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
#: Restricted: the only capability a container may add.
ALLOWED_ADD = frozenset({"NET_BIND_SERVICE"})
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
SECCOMP_OK = frozenset({"RuntimeDefault", "Localhost"})
SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)


def _ctx(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("securityContext") or {}


def _baseline_context(where: str, ctx: Mapping[str, Any]) -> Iterator[str]:
    """Rules that apply to both the pod's and each container's securityContext."""
    if (ctx.get("windowsOptions") or {}).get("hostProcess"):
        yield f"{where}: windowsOptions.hostProcess is set"
    selinux = ctx.get("seLinuxOptions") or {}
    if selinux.get("type", "") not in SELINUX_TYPES:
        yield f"{where}: seLinuxOptions.type {selinux.get('type')!r} is not allowed"
    for field in ("user", "role"):
        if selinux.get(field):
            yield f"{where}: seLinuxOptions.{field} is set"
    apparmor = (ctx.get("appArmorProfile") or {}).get("type")
    if apparmor is not None and apparmor not in SECCOMP_OK:
        yield f"{where}: appArmorProfile.type {apparmor!r} is not allowed"
    seccomp = (ctx.get("seccompProfile") or {}).get("type")
    if seccomp is not None and seccomp not in SECCOMP_OK:
        yield f"{where}: seccompProfile.type {seccomp!r} is not RuntimeDefault or Localhost"
    if ctx.get("runAsUser") == 0:
        yield f"{where}: runAsUser is 0 (root)"


def _pod_level(pod: Mapping[str, Any]) -> Iterator[str]:
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            yield f"pod: {field} is true"
    ctx = _ctx(pod)
    yield from _baseline_context("pod securityContext", ctx)
    for sysctl in ctx.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            yield f"pod: sysctl {sysctl.get('name')!r} is not in the safe set"
    for volume in pod.get("volumes") or []:
        sources = set(volume) - {"name"}
        if not sources or not sources <= ALLOWED_VOLUMES:
            yield f"volume {volume.get('name')!r}: type {sorted(sources)} is not allowed"


def _container_level(pod: Mapping[str, Any]) -> Iterator[str]:
    pod_ctx = _ctx(pod)
    pod_non_root = pod_ctx.get("runAsNonRoot") is True
    pod_seccomp = (pod_ctx.get("seccompProfile") or {}).get("type") in SECCOMP_OK
    for where, container in containers(pod):
        ctx = _ctx(container)
        yield from _baseline_context(where, ctx)
        if ctx.get("privileged"):
            yield f"{where}: privileged is true"
        if ctx.get("procMount", "Default") != "Default":
            yield f"{where}: procMount is {ctx.get('procMount')!r}"
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                yield f"{where}: hostPort {port.get('hostPort')} is set"
        if ctx.get("allowPrivilegeEscalation") is not False:
            yield f"{where}: allowPrivilegeEscalation is not false"
        non_root = ctx.get("runAsNonRoot")
        if non_root is False or (non_root is None and not pod_non_root):
            yield f"{where}: runAsNonRoot is not true (neither here nor on the pod)"
        seccomp = (ctx.get("seccompProfile") or {}).get("type")
        if seccomp is None and not pod_seccomp:
            yield f"{where}: no seccompProfile (neither here nor on the pod)"
        capabilities = ctx.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            yield f"{where}: capabilities.drop does not include ALL"
        added = set(capabilities.get("add") or []) - ALLOWED_ADD
        if added:
            yield f"{where}: capabilities.add {sorted(added)} beyond NET_BIND_SERVICE"


def restricted_violations(
    pod: Mapping[str, Any], annotations: Mapping[str, str] | None = None
) -> list[str]:
    """Every way `pod` (a PodSpec) breaks the restricted Pod Security Standard."""
    found = [*_pod_level(pod), *_container_level(pod)]
    for key, value in (annotations or {}).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
            value == "runtime/default" or value.startswith("localhost/")
        ):
            found.append(f"annotation {key}: {value!r} is not allowed")
    return found
