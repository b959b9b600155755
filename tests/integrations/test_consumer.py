"""/ws/integrations/: logged-in users only, and each sees only the integrations visible to them.

Runs the real ASGI application (session auth, origin check, routing) in process with the real Redis
channel layer; events are published exactly as workers publish them.
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from integrations import live_events, services
from tests import factories
from tests.runtime_fixtures import session_cookie_for


def event(integration_id: str, kind: str = "status_change") -> dict:
    return {
        "event": kind,
        "integration": integration_id,
        "status": "connected",
        "ok": True,
        "latency_ms": None,
        "message": "",
        "at": "2026-01-01T00:00:00+00:00",
    }


async def open_socket(user=None) -> WebsocketCommunicator:
    from config.asgi import application

    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if user is not None:
        cookie = await sync_to_async(session_cookie_for)(user)
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, "/ws/integrations/", headers=headers)


@pytest.fixture
def people(transactional_db, django_user_model, clean_redis, tmp_path):
    team = factories.group("people-team")
    owner = factories.user("owner")
    teammate = factories.user("teammate", groups=(team,))
    outsider = factories.user("outsider")
    staff = factories.staff("staff")
    shared = factories.database(
        "sqlite", {"path": str(tmp_path / "shared.sqlite3")}, id="shared_db", name="Shared", owner=owner, actor="t"
    )
    shared.shared_with_groups.add(team)
    factories.database(
        "sqlite",
        {"path": str(tmp_path / "private.sqlite3")},  # one file per integration: the owner may change
        id="private_db",
        name="Private",
        owner=owner,
        actor="t",
    )
    return {"owner": owner, "teammate": teammate, "outsider": outsider, "staff": staff}


def test_anonymous_socket_is_refused(people):
    async def scenario() -> None:
        socket = await open_socket()
        connected, _ = await socket.connect()
        assert connected is False

    asyncio.run(scenario())


def test_each_user_receives_only_visible_integrations(people):
    async def scenario() -> None:
        sockets = {}
        for name in ("owner", "teammate", "outsider", "staff"):
            socket = await open_socket(people[name])
            connected, _ = await socket.connect()
            assert connected
            hello = await socket.receive_json_from(timeout=5)
            sockets[name] = (socket, hello["integrations"])
        assert sockets["owner"][1] == ["private_db", "shared_db"]
        assert sockets["teammate"][1] == ["shared_db"]
        assert sockets["outsider"][1] == []

        await sync_to_async(live_events.publish_event)(event("private_db"))
        await sync_to_async(live_events.publish_event)(event("shared_db", "health_check"))
        for name, expected in [
            ("owner", ["private_db", "shared_db"]),
            ("staff", ["private_db", "shared_db"]),
            ("teammate", ["shared_db"]),
        ]:
            socket = sockets[name][0]
            got = [(await socket.receive_json_from(timeout=5))["integration"] for _ in expected]
            assert got == expected, name
            assert await socket.receive_nothing(timeout=0.3)
        assert await sockets["outsider"][0].receive_nothing(timeout=0.5)
        for socket, _ in sockets.values():
            await socket.disconnect()

    asyncio.run(scenario())


def test_sharing_later_is_picked_up_on_the_update_event(people):
    async def scenario() -> None:
        socket = await open_socket(people["outsider"])
        assert (await socket.connect())[0]
        await socket.receive_json_from(timeout=5)  # hello

        def share() -> None:
            from integrations.models import Integration

            private = Integration.objects.get(pk="private_db")
            services.update_integration(private, actor="t", owner=people["outsider"])

        await sync_to_async(share)()  # the service pushes "updated" after commit
        updated = await socket.receive_json_from(timeout=5)
        assert (updated["event"], updated["integration"], updated["fields"]) == ("updated", "private_db", ["owner"])
        await sync_to_async(live_events.publish_event)(event("private_db"))
        assert (await socket.receive_json_from(timeout=5))["event"] == "status_change"
        await socket.disconnect()

    asyncio.run(scenario())
