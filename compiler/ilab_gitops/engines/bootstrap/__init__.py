"""One-time cluster bootstrap for Argo CD and Flux, and the Argo CD Lua health checks.

Pure: builds plain objects; the only I/O is reading this package's own `lua/*.lua` files.
"""

from __future__ import annotations

from ilab_gitops.engines.bootstrap.argocd import (
    HEALTH_CHECK_KEYS,
    HEALTH_CHECKS,
    argocd_bootstrap,
    health_lua,
)
from ilab_gitops.engines.bootstrap.flux import flux_bootstrap

__all__ = [
    "HEALTH_CHECKS",
    "HEALTH_CHECK_KEYS",
    "argocd_bootstrap",
    "flux_bootstrap",
    "health_lua",
]
