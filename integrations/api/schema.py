"""OpenAPI generation: drf-spectacular's AutoSchema plus the error responses every endpoint can give.

drf-spectacular documents only the success code by default; clients (and schemathesis, which checks
that every status code a server sends is documented) need the 4xx answers too.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": 'Either {"detail": "..."} or field -> list of messages (nested for config/credentials).',
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}

_ERRORS = {
    "400": "Invalid input: field errors, malformed JSON or a bad query parameter.",
    "401": "Not authenticated (send a session cookie or `Authorization: Token <key>`).",
    "403": "Authenticated but not allowed (e.g. changing an integration one does not own, CSRF failure).",
    "404": "No such resource, or not visible to this user.",
    "406": "The Accept header asks for a format the API cannot render.",
    "415": "Unsupported request body media type.",
}


class AutoSchema(openapi.AutoSchema):
    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for code, description in _ERRORS.items():
            # 404: an unknown or invisible id, or a page number past the end of a paginated list.
            if code == "404" and "{" not in self.path and not (self._is_list_view() and self._get_paginator()):
                continue
            if code == "415" and self.method not in ("POST", "PUT", "PATCH"):
                continue
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(response=ERROR_SCHEMA, description=description), code, direction=direction
                )
        return responses
