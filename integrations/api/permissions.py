"""Who may do what with an integration they can see.

Seeing is decided by the queryset (``Integration.objects.visible_to``): an integration a user may not
see answers 404, so its existence does not leak. Of what they see, users may read it and operate it
(connect, disconnect, test); only its owner and staff may change or delete it.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from integrations.models import Integration

OPERATE_ACTIONS = frozenset({"connect", "disconnect", "test", "metrics"})


def can_manage(user: Any, integration: Integration) -> bool:
    return bool(user.is_staff or (integration.owner_id is not None and integration.owner_id == user.pk))


class IntegrationPermission(BasePermission):
    message = "Only the integration's owner or staff may change or delete it."

    def has_object_permission(self, request: Request, view: Any, obj: Integration) -> bool:
        if request.method in SAFE_METHODS or getattr(view, "action", None) in OPERATE_ACTIONS:
            return True
        return can_manage(request.user, obj)
