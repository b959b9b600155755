"""The webhook receiver: no session and no CSRF token; only BambooHR's signature counts."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations.sync import services


@csrf_exempt
@require_POST
def bamboohr_webhook(request: HttpRequest, integration_id: str) -> JsonResponse:
    status, message = services.receive(integration_id, request.headers, request.body)
    return JsonResponse({"ok": status == 200, "message": message}, status=status)
