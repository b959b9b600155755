"""The change feed (GET /api/changes, resumable by cursor) and outbound webhooks: each change the mirror
sees is POSTed to subscribers, signed as Standard Webhooks says (verified here with the standardwebhooks
library), retried with backoff when the subscriber fails, then given up and the subscription marked
failing; a delivery can be replayed; subscriber URLs are under the network policy."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from rest_framework.test import APIClient
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from integrations.sync import services as sync
from integrations.sync.models import OutboundDelivery, Subscription
from sandbox.bamboohr import BambooHRSandbox
from tests import factories
from tests.sandbox.test_bamboohr_webhooks import Receiver

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _eager(celery_eager: None) -> None:
    return None


@pytest.fixture
def sandbox() -> Iterator[BambooHRSandbox]:
    with BambooHRSandbox(api_key=os.urandom(20).hex(), employees=4, seed=9) as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    subscriber = Receiver()
    yield subscriber
    subscriber.server.shutdown()


def _setup(sandbox: BambooHRSandbox) -> tuple[Any, APIClient]:
    owner = factories.user("feeder")
    integration = factories.bamboohr(sandbox=sandbox, connect=True, owner=owner)
    client = APIClient()
    client.force_authenticate(owner)
    return integration, client


def test_subscribers_get_each_change_signed_and_the_feed_resumes_by_cursor(
    sandbox: BambooHRSandbox, receiver: Receiver
) -> None:
    integration, client = _setup(sandbox)
    made = client.post("/api/subscriptions", {"integration": integration.id, "url": receiver.url}, format="json")
    assert made.status_code == 201, made.content
    secret = made.json()["secret"]
    assert secret.startswith("whsec_")
    assert "secret" not in client.get(f"/api/subscriptions/{made.json()['id']}").json()

    sync.full_sync(integration.id)  # four employees: four "created" changes
    deliveries = receiver.wait_for(4)
    verifier = Webhook(secret)
    events = [verifier.verify(d["body"], d["headers"]) for d in deliveries]
    assert sorted(e["remote_id"] for e in events) == ["1", "2", "3", "4"]
    assert {e["type"] for e in events} == {"employee.created"}
    with pytest.raises(WebhookVerificationError):  # a body changed on the way does not verify
        verifier.verify(deliveries[0]["body"] + b" ", deliveries[0]["headers"])

    page = client.get("/api/changes", {"cursor": 0, "limit": 3}).json()
    assert [c["action"] for c in page["changes"]] == ["created"] * 3 and page["has_more"] is True
    rest = client.get("/api/changes", {"cursor": page["next_cursor"]}).json()
    assert len(rest["changes"]) == 1 and rest["has_more"] is False

    with httpx.Client(base_url=sandbox.url, auth=(sandbox.api_key, "x"), headers={"Accept": "application/json"}) as hr:
        hr.post("employees/2", json={"preferredName": "Fed"})
    sync.refresh_employees(integration.id, ["2", "3"])  # 3 has not changed: no event for it
    newer = client.get("/api/changes", {"cursor": rest["next_cursor"]}).json()["changes"]
    assert [(c["remote_id"], c["action"]) for c in newer] == [("2", "updated")]
    assert newer[0]["fields"] == ["display_name", "preferred_name"]  # the display name follows
    (update,) = [verifier.verify(d["body"], d["headers"]) for d in receiver.wait_for(5)[4:]]
    assert update["remote_id"] == "2" and update["action"] == "updated"

    # Another user sees neither the feed nor the subscription.
    stranger = APIClient()
    stranger.force_authenticate(factories.user("stranger"))
    assert stranger.get("/api/changes").json()["changes"] == []
    assert stranger.get("/api/subscriptions").json()["results"] == []


def test_a_failing_subscriber_is_retried_then_given_up_and_can_be_replayed(
    sandbox: BambooHRSandbox, receiver: Receiver
) -> None:
    integration, client = _setup(sandbox)
    made = client.post("/api/subscriptions", {"integration": integration.id, "url": receiver.url}, format="json")
    subscription = Subscription.objects.get(pk=made.json()["id"])
    receiver.statuses = [500] * 100  # down for the whole test
    sync.refresh_employees(integration.id, ["1"])
    delivery = OutboundDelivery.objects.get(subscription=subscription)
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("pending", 1, 500)

    # Each retry waits its turn on the schedule (the clock moved, not waited for).
    for retry in range(2, len(sync.RETRY_SCHEDULE) + 2):
        due = delivery.next_attempt_at
        assert sync.deliver_pending(now=due - dt.timedelta(seconds=1)) == {"delivered": 0, "retrying": 0, "failed": 0}
        sync.deliver_pending(now=due)
        delivery.refresh_from_db()
        assert delivery.attempts == retry
        if retry <= len(sync.RETRY_SCHEDULE):
            assert delivery.next_attempt_at - due == dt.timedelta(seconds=sync.RETRY_SCHEDULE[retry - 1])
    assert delivery.state == "failed" and len(receiver.received) == 1 + len(sync.RETRY_SCHEDULE)
    subscription.refresh_from_db()
    assert subscription.failing_since is not None
    log = client.get(f"/api/subscriptions/{subscription.pk}/deliveries").json()
    assert log[0]["state"] == "failed" and log[0]["last_error"] == "HTTP 500"

    receiver.statuses = []  # the subscriber is back; a person replays the delivery
    replayed = client.post(f"/api/subscriptions/{subscription.pk}/deliveries/{delivery.pk}/replay")
    assert replayed.status_code == 202
    delivery.refresh_from_db()
    subscription.refresh_from_db()
    assert delivery.state == "delivered" and subscription.failing_since is None
    body = json.loads(receiver.received[-1]["body"])
    assert body["remote_id"] == "1" and body["action"] == "created"


def test_subscriber_urls_are_under_the_network_policy(sandbox: BambooHRSandbox) -> None:
    integration, client = _setup(sandbox)
    for url in ("http://169.254.169.254/latest/meta-data/", "http://10.0.0.5/hooks", "ftp://example.com/x"):
        answer = client.post("/api/subscriptions", {"integration": integration.id, "url": url}, format="json")
        assert answer.status_code == 400, (url, answer.content)
        assert "url" in answer.json()
    assert not Subscription.objects.exists()
