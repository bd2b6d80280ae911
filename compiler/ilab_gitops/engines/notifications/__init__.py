"""Step states as GitHub commit statuses, through the GitOps engines' own notifiers.

`argocd` configures Argo CD Notifications (`argocd-notifications-cm`); `flux` configures the
Flux notification-controller (a github Provider and an Alert). Pure: builds plain objects.
"""

from ilab_gitops.engines.notifications.argocd import (
    SUBSCRIBE_ANNOTATIONS,
    argocd_notifications_cm,
)
from ilab_gitops.engines.notifications.flux import flux_alert, flux_notifications, flux_provider
from ilab_gitops.manifests.flux import status_context

__all__ = [
    "SUBSCRIBE_ANNOTATIONS",
    "argocd_notifications_cm",
    "flux_alert",
    "flux_notifications",
    "flux_provider",
    "status_context",
]
