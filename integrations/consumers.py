"""Live integration events for the browser: one WebSocket per logged-in user at /ws/integrations/.

Every worker publishes to one channel-layer group; each consumer forwards only the events of the
integrations its user may see (``Integration.objects.visible_to``), re-reading that set when an
integration is created, changed or deleted, and at least every few seconds (group membership).

When the channel layer (Redis) goes away under a socket, the client is told to reconnect rather than
dropped with 1011 (internal error): a last message ``{"event": "reconnect", "retry_after": 3, "reason"}``,
then the close code 4013: "try again later" (1013 in RFC 6455's registry, which autobahn under Daphne
refuses to send: a server may close with 1000 or 3000-4999 only; Daphne sends no close reason either, so
the time is in the message).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from redis.exceptions import RedisError

from integrations.live_events import EVENTS_GROUP
from integrations.models import Integration

try:  # what Daphne raises for a message sent to a socket the client has just closed
    from autobahn.exception import Disconnected as _Disconnected
except ImportError:  # another ASGI server: the ASGI spec asks for an OSError there
    _Disconnected = OSError  # type: ignore[assignment,misc]

log = logging.getLogger(__name__)

_REFRESH_SECONDS = 10.0
_MEMBERSHIP_EVENTS = {"created", "updated", "deleted"}
RECONNECT_CODE = 4013  # private range: "try again later" (1013 itself cannot be sent through Daphne)
RECONNECT_AFTER = 3  # seconds; Redis restarted in about that (the resilience suite's measure)
_LAYER_DOWN = (RedisError, OSError, asyncio.TimeoutError)


@database_sync_to_async
def visible_ids(user: Any) -> set[str]:
    return set(Integration.objects.visible_to(user).values_list("id", flat=True))


class IntegrationEventsConsumer(AsyncJsonWebsocketConsumer):
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        except _LAYER_DOWN as exc:  # the channel layer's Redis went away: say "try again", not 1011
            log.warning("live events socket closed for a reconnect: channel layer %s", type(exc).__name__)
            reason = f"live events are restarting (Redis unreachable); reconnect in {RECONNECT_AFTER} s"
            message = {"event": "reconnect", "retry_after": RECONNECT_AFTER, "reason": reason}
            with contextlib.suppress(_Disconnected, OSError, RuntimeError):
                await send({"type": "websocket.send", "text": json.dumps(message)})
                await send({"type": "websocket.close", "code": RECONNECT_CODE, "reason": reason})

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)  # before accept: the handshake is refused (HTTP 403)
            return
        self.user = user
        # Staff see every integration (visible_to says so): no per-event lookups, even for rows created a
        # moment ago by a bulk import that pushed no "created" event.
        self.sees_all = bool(user.is_staff)
        self.visible = await visible_ids(user)
        self.visible_at = time.monotonic()
        await self.channel_layer.group_add(EVENTS_GROUP, self.channel_name)
        await self.accept()
        await self.send_json({"event": "hello", "integrations": sorted(self.visible)})

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False) -> None:
        """A client may leave while a reply or an event is on its way (a closed tab, a ping answered
        after the close): there is no one to deliver it to, which is not an error for the log."""
        with contextlib.suppress(_Disconnected, OSError):
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "user"):
            await self.channel_layer.group_discard(EVENTS_GROUP, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        """A frame that is not JSON text gets an error message; it must not crash the consumer (which closed
        the socket with a traceback in the server's log)."""
        if text_data is None:
            await self.send_json({"event": "error", "message": 'send JSON text frames, e.g. {"type": "ping"}'})
            return
        try:
            content = await self.decode_json(text_data)
        except (ValueError, RecursionError):
            await self.send_json({"event": "error", "message": "not valid JSON"})
            return
        await self.receive_json(content, **kwargs)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """The socket is push-only; a ping gets a pong so clients can check it is alive."""
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"event": "pong"})
        else:
            await self.send_json({"event": "error", "message": 'this socket only answers {"type": "ping"}'})

    async def hub_events(self, message: dict[str, Any]) -> None:
        for payload in message["payloads"]:
            await self.hub_event({"payload": payload})

    async def hub_event(self, message: dict[str, Any]) -> None:
        payload = message["payload"]
        if self.sees_all:
            await self.send_json(payload)
            return
        integration_id = payload.get("integration")
        stale = time.monotonic() - self.visible_at > _REFRESH_SECONDS
        if payload.get("event") in _MEMBERSHIP_EVENTS or stale:
            was_visible = integration_id in self.visible
            self.visible = await visible_ids(self.user)
            self.visible_at = time.monotonic()
            if payload.get("event") == "deleted" and was_visible:
                await self.send_json(payload)
                return
        if integration_id in self.visible:
            await self.send_json(payload)
