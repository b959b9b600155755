"""A connect that fails in the worker: `error` reaches the WebSocket client and the operation reports it."""

import pytest

from integrations import services
from integrations.models import Integration
from tests.runtime_fixtures import free_port


@pytest.fixture
def process_env_overrides() -> dict[str, str]:
    return {"CONNECTOR_MAX_RETRIES": "0"}


@pytest.mark.django_db(transaction=True)
def test_connect_unreachable_pushes_error(clean_redis, celery_worker_process, ws_client_factory, staff_user):
    ws = ws_client_factory(staff_user)
    ws.wait_for(lambda m: m["event"] == "hello")
    port = free_port()
    services.create_integration(
        actor=staff_user,
        id="hr_down",
        name="HR down",
        kind="bamboohr",
        auth_type="api_key",
        config={"subdomain": "acme", "base_url": f"http://127.0.0.1:{port}/api/v1/", "allow_insecure_loopback": True},
        credentials={"api_key": "k" * 20},
    )
    op = services.request_connect("hr_down", actor=staff_user)
    ws.wait_for(lambda m: m["event"] == "status_change" and m["status"] == "connecting")
    msg = ws.wait_for(lambda m: m["event"] == "status_change" and m["status"] == "error", timeout=40)
    assert msg["integration"] == "hr_down"
    status = services.wait_for_operation(op, 10)
    assert status["state"] == "failed", status
    assert status["result"]["category"] == "network"
    assert msg["message"].startswith("network")
    assert Integration.objects.get(pk="hr_down").status == "error"
