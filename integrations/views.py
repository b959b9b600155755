"""Dashboard pages: thin, server-rendered adapters over the models and ``integrations.services``.

Every page is readable without JavaScript; ``static/js`` enhances it (live status over the WebSocket,
the add wizard, controls that answer in place). The plain-form actions here are the no-JS path; the
scripts use the REST API for the same operations.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from connectors import registry
from connectors.errors import ConnectorError
from integrations import rules, services
from integrations.api.permissions import can_manage
from integrations.models import AuthType, Integration, IntegrationEvent, Status
from integrations.oauth.views import oauth_details, public_callback_url

logger = logging.getLogger(__name__)

RECENT_EVENTS = 25
# action -> (services function, message shown after the redirect)
ACTIONS = {
    "connect": ("request_connect", "Connect requested."),
    "disconnect": ("request_disconnect", "Disconnect requested."),
    "test": ("request_test", "Connection test requested; the result appears below when the worker is done."),
}


def _visible(request: HttpRequest) -> Any:
    return Integration.objects.visible_to(request.user)


def _metrics(integration_id: str) -> dict[str, Any] | None:
    """Metrics live in Redis; a dashboard that cannot reach it still lists integrations."""
    try:
        return services.get_metrics(integration_id)
    except Exception:  # the page stays useful; the failure is logged, not hidden
        logger.warning("metrics unavailable for %s", integration_id, exc_info=True)
        return None


def _percent(rate: Any) -> str:
    """``success_rate`` is a fraction (0..1); tolerate a percentage too."""
    if rate is None:
        return "—"
    value = float(rate)
    if value <= 1:
        value *= 100
    return f"{value:.0f}%" if value in (0, 100) else f"{value:.1f}%"


def _ms(value: Any) -> str:
    return "—" if value is None else f"{float(value):.0f} ms"


def _metrics_display(metrics: Mapping[str, Any] | None) -> dict[str, str]:
    metrics = metrics or {}
    has_calls = bool(metrics.get("total"))
    return {
        "total": str(metrics.get("total") or 0),
        "failed": str(metrics.get("failed") or 0),
        "success_rate": _percent(metrics.get("success_rate")) if has_calls else "—",
        "avg_latency": _ms(metrics.get("avg_latency_ms")) if has_calls else "—",
        "p95_latency": _ms(metrics.get("p95_latency_ms")) if has_calls else "—",
        "last_error": str(metrics.get("last_error") or ""),
    }


def _uptime(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    value = ratio * 100
    return f"{value:.0f}%" if value in (0, 100) else f"{value:.2f}%"


def _when(iso: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(iso) if iso else None


def _timeline_display(integration: Integration, range_name: str) -> dict[str, Any]:
    """The state timeline as bars whose widths are shares of the whole range (time before the integration
    existed is left blank), with the uptime over it."""
    line = services.timeline(integration, range_name)
    span = services.TIMELINE_RANGES[range_name].total_seconds()
    covered = sum(segment["seconds"] for segment in line["segments"])
    return {
        "range": range_name,
        "ranges": list(services.TIMELINE_RANGES),
        "uptime": _uptime(line["uptime"]),
        "before_share": f"{max(0.0, 100 * (1 - covered / span)):.3f}",
        "segments": [
            segment
            | {
                "percent": f"{100 * segment['seconds'] / span:.3f}",
                "start": _when(segment["from"]),
                "end": _when(segment["to"]),
                "label": Status(segment["status"]).label if segment["status"] in Status.values else segment["status"],
            }
            for segment in line["segments"]
        ],
    }


def _kind_label(kind: str) -> str:
    return dict(registry.choices()).get(kind, kind)


def _oauth_start(integration_id: str) -> str | None:
    for name in ("oauth:start", "oauth_start", "oauth2:start"):
        try:
            return reverse(name, args=[integration_id])
        except NoReverseMatch:
            continue
    return None


def _oauth_start_url(integration: Integration) -> str | None:
    """The OAuth helper's start view, when the integration authenticates with OAuth2."""
    if integration.auth_type != AuthType.OAUTH2:
        return None
    return _oauth_start(integration.id)


# Statuses summed up as "need attention" on the list.
PROBLEM_STATUSES = {Status.DEGRADED, Status.ERROR, Status.RECONNECT_REQUIRED}


def _status_counts(integrations: Any) -> dict[str, int]:
    counts = {"connected": 0, "problem": 0, "disconnected": 0}
    for row in integrations.values("status").annotate(n=Count("id")).order_by():
        if row["status"] == Status.CONNECTED:
            counts["connected"] += row["n"]
        elif row["status"] in PROBLEM_STATUSES:
            counts["problem"] += row["n"]
        elif row["status"] == Status.DISCONNECTED:
            counts["disconnected"] += row["n"]
    return counts


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        yield prefix, ", ".join(str(item) for item in value) if value else "—"
    elif isinstance(value, bool):
        yield prefix, "yes" if value else "no"
    else:
        yield prefix, "—" if value is None or value == {} else value


def _effective_config(integration: Integration) -> list[tuple[str, Any]]:
    """The stored config with the kind's defaults filled in, as ``(dotted name, value)`` rows."""
    try:
        config = registry.validate_config(integration.kind, integration.config).model_dump(mode="json")
    except ConnectorError:
        config = dict(integration.config or {})
    return list(_flatten(config))


@login_required
@require_GET
def integration_list(request: HttpRequest) -> HttpResponse:
    visible = _visible(request)
    total = visible.count()
    integrations = visible
    query = request.GET.get("q", "").strip()
    kind = request.GET.get("kind", "")
    status = request.GET.get("status", "")
    if query:
        integrations = integrations.filter(Q(id__icontains=query) | Q(name__icontains=query))
    if kind in registry.kinds():
        integrations = integrations.filter(kind=kind)
    if status in Status.values:
        integrations = integrations.filter(status=status)
    rows = [
        {
            "integration": integration,
            "kind_label": _kind_label(integration.kind),
            "metrics": _metrics_display(_metrics(integration.id)),
            "stale": services.check_is_stale(
                integration.status, integration.enabled, integration.last_checked_at, integration.health_check_interval
            ),
        }
        for integration in integrations
    ]
    return render(
        request,
        "integrations/list.html",
        {
            "rows": rows,
            "total": total,
            "counts": _status_counts(visible),
            "filtered": bool(query or kind or status),
            "query": query,
            "kind": kind,
            "status": status,
            "kinds": registry.choices(),
            "statuses": Status.choices,
            "status_labels": dict(Status.choices),
        },
    )


@login_required
@require_GET
def integration_new(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind", "")
    return render(
        request,
        "integrations/new.html",
        {
            "kinds": registry.choices(),
            "selected_kind": kind if kind in registry.kinds() else "",
            "auth_type_labels": dict(AuthType.choices),
            # The OAuth start URL of an integration not created yet: the script swaps in the id.
            "oauth_start_template": _oauth_start("__id__"),
            # What a new integration's provider must have registered (its own redirect_uri aside).
            "oauth_redirect_uri": public_callback_url(),
            # Only staff choose exact ids; for others the hub adds a random suffix (integrations.rules).
            "id_suffix": not rules.is_trusted(request.user),
        },
    )


@login_required
@require_GET
def integration_detail(request: HttpRequest, integration_id: str) -> HttpResponse:
    integration = get_object_or_404(_visible(request), pk=integration_id)
    # By the row, not the id: an integration re-created with a deleted one's id starts with its own history.
    events = IntegrationEvent.objects.filter(integration=integration)[:RECENT_EVENTS]
    range_name = request.GET.get("range", "24h")
    if range_name not in services.TIMELINE_RANGES:
        range_name = "24h"
    availability = services.availability(integration)
    return render(
        request,
        "integrations/detail.html",
        {
            "integration": integration,
            "kind_label": _kind_label(integration.kind),
            "config_rows": _effective_config(integration),
            "secrets": sorted(integration.secret_fields_set.items()),
            "metrics": _metrics_display(_metrics(integration.id)),
            "uptime": {window: _uptime(ratio) for window, ratio in availability["uptime"].items()},
            "down_since": _when(availability["down_since"]),
            "last_success": _when(availability["last_success"]),
            "timeline": _timeline_display(integration, range_name),
            "events": events,
            "oauth_start_url": _oauth_start_url(integration),
            "oauth": oauth_details(integration),
            "reconnect_required": integration.status == Status.RECONNECT_REQUIRED,
            "can_manage": can_manage(request.user, integration),
            # The badge's labels when a live event changes the status (read by static/js/hub.js).
            "status_labels": dict(Status.choices),
        },
    )


def _actor(request: HttpRequest) -> str:
    return request.user.get_username()


@login_required
@require_POST
def integration_action(request: HttpRequest, integration_id: str, action: str) -> HttpResponse:
    """The no-JavaScript path of the connect / disconnect / test buttons."""
    if action not in ACTIONS:
        raise Http404("unknown action")
    integration = get_object_or_404(_visible(request), pk=integration_id)
    function_name, done = ACTIONS[action]
    try:
        getattr(services, function_name)(integration.id, actor=_actor(request))
    except ConnectorError as exc:  # e.g. connecting a disabled integration
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return redirect("dashboard:detail", integration.id)


@login_required
@require_http_methods(["GET", "POST"])
def integration_delete(request: HttpRequest, integration_id: str) -> HttpResponse:
    """GET asks for confirmation (the no-JS path; scripts confirm in a dialog); POST deletes."""
    integration = get_object_or_404(_visible(request), pk=integration_id)
    if not can_manage(request.user, integration):
        raise PermissionDenied("Only the integration's owner or staff may delete it.")
    if request.method == "POST":
        services.delete_integration(integration.id, actor=_actor(request))
        messages.success(request, f"Deleted {integration.name} ({integration.id}). Its event history is kept.")
        return redirect("dashboard:list")
    return render(request, "integrations/confirm_delete.html", {"integration": integration})
