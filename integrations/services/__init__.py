"""The one place that turns integration rows into live connectors, and results back into rows and events.

Views, viewsets, admin actions, tasks, consumers, the OAuth views and agent tools call these functions;
the services call none of them (tasks are sent by name). Modules by job, each importing only those
before it:

- ``events``: the one status change (row, event, push), event rows, live pushes, ``EventBatch``.
- ``tokens``: token providers by auth type (OAuth2 over ``integrations.oauth.store``).
- ``availability``: "may this integration be called now?" (the tools and ``run_operation`` ask it).
- ``runtime``: live connectors per process, built from a row; ``run_operation``; metrics.
- ``lifecycle``: create, update (sharing too), delete; the one credential merge.
- ``health``: the connection test, scheduled health checks, the health summary.
- ``operations``: connect / disconnect / test requested, carried out by a worker, followed by id.
- ``uptime``: uptime per window, "down since", "last success" and the state timeline, from status history.

Write-side functions run in the web process and enqueue work after commit (ids only, never credentials);
worker-side functions run where the connector lives. ``from integrations import services`` and
``services.<name>`` reach the public API below.
"""

from integrations.services.availability import Refusal, call_refusal
from integrations.services.events import EventBatch, actor_name, push, record_event, set_status
from integrations.services.health import (
    CHECKED_STATUSES,
    STALE_AFTER_INTERVALS,
    check_is_stale,
    health_check,
    health_check_many,
    health_summary,
    test,
)
from integrations.services.lifecycle import (
    UPDATABLE_FIELDS,
    create_integration,
    delete_integration,
    merge_credentials,
    set_sharing,
    update_integration,
    validate_config,
)
from integrations.services.operations import (
    OPERATION_TASKS,
    OperationNotFound,
    connect,
    disconnect,
    operation_status,
    request_connect,
    request_disconnect,
    request_test,
    wait_for_operation,
)
from integrations.services.runtime import (
    LiveConnectors,
    build_connector,
    close_connector,
    connector_for,
    get_metrics,
    live_connectors,
    run_operation,
)
from integrations.services.tokens import TOKEN_PROVIDERS, forget_token, token_provider_for
from integrations.services.uptime import TIMELINE_RANGES, UPTIME_WINDOWS, availability, availability_many, timeline

__all__ = [
    "CHECKED_STATUSES",
    "OPERATION_TASKS",
    "STALE_AFTER_INTERVALS",
    "TIMELINE_RANGES",
    "TOKEN_PROVIDERS",
    "UPDATABLE_FIELDS",
    "UPTIME_WINDOWS",
    "EventBatch",
    "LiveConnectors",
    "OperationNotFound",
    "Refusal",
    "actor_name",
    "availability",
    "availability_many",
    "build_connector",
    "call_refusal",
    "check_is_stale",
    "close_connector",
    "connect",
    "connector_for",
    "create_integration",
    "delete_integration",
    "disconnect",
    "forget_token",
    "get_metrics",
    "health_check",
    "health_check_many",
    "health_summary",
    "live_connectors",
    "merge_credentials",
    "operation_status",
    "push",
    "record_event",
    "request_connect",
    "request_disconnect",
    "request_test",
    "run_operation",
    "set_sharing",
    "set_status",
    "test",
    "timeline",
    "token_provider_for",
    "update_integration",
    "validate_config",
    "wait_for_operation",
]
