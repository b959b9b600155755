"""The dashboard and admin logins lock a user name at one address after 5 failures (django-axes)."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

LOGIN_PAGES = ["/accounts/login/", "/admin/login/"]
LOCKED = "Too many failed logins"


def attempt(client: Client, page: str, username: str, password: str, address: str = "127.0.0.1") -> Any:
    return client.post(page, {"username": username, "password": password}, REMOTE_ADDR=address)


def logged_in(client: Client) -> bool:
    return client.get("/api/integrations").status_code == 200


def lock_out(client: Client, page: str, username: str, address: str = "127.0.0.1") -> None:
    for _ in range(4):
        refused = attempt(client, page, username, "wrong-password", address)
        assert refused.status_code == 200 and LOCKED not in refused.content.decode()  # the form, with its error
    fifth = attempt(client, page, username, "wrong-password", address)
    assert fifth.status_code == 429 and LOCKED in fifth.content.decode()  # the failure that locks says so


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_five_failures_lock_the_login_even_with_the_right_password(page: str, alice: User) -> None:
    client = Client()
    lock_out(client, page, "alice")
    sixth = attempt(client, page, "alice", "pw-alice-123")
    assert sixth.status_code == 429
    text = sixth.content.decode()
    assert LOCKED in text and "after 5 failed login attempts" in text and "Try again in 15 minutes" in text
    assert not logged_in(client)


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_the_lock_is_per_user_and_address(page: str, alice: User, bob: User) -> None:
    lock_out(Client(), page, "alice")
    bob_here = Client()
    assert attempt(bob_here, page, "bob", "pw-bob-123").status_code == 302 and logged_in(bob_here)
    alice_elsewhere = Client()
    assert attempt(alice_elsewhere, page, "alice", "pw-alice-123", address="10.0.0.8").status_code == 302
    assert logged_in(alice_elsewhere)


def test_a_user_name_that_does_not_exist_is_locked_the_same_way(db: Any) -> None:
    client = Client()
    lock_out(client, "/accounts/login/", "mallory")
    assert LOCKED in attempt(client, "/accounts/login/", "mallory", "anything").content.decode()


@pytest.mark.parametrize(
    "command", [("axes_reset_username", "alice"), ("axes_reset_ip", "127.0.0.1"), ("axes_reset",)], ids=str
)
def test_a_command_unlocks(command: tuple[str, ...], alice: User) -> None:
    client = Client()
    lock_out(client, "/accounts/login/", "alice")
    assert attempt(client, "/accounts/login/", "alice", "pw-alice-123").status_code == 429
    call_command(*command, stdout=StringIO())
    assert attempt(client, "/accounts/login/", "alice", "pw-alice-123").status_code == 302
    assert logged_in(client)


def test_an_admin_unlocks_in_the_admin(alice: User, bob: User) -> None:
    lock_out(Client(), "/admin/login/", "alice")
    User.objects.filter(pk=bob.pk).update(is_superuser=True)
    admin = Client()
    admin.force_login(bob)
    listing = admin.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and "alice" in listing.content.decode()
    from axes.models import AccessAttempt

    attempt_row = AccessAttempt.objects.get(username="alice")
    deleted = admin.post(f"/admin/axes/accessattempt/{attempt_row.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    client = Client()
    assert attempt(client, "/admin/login/", "alice", "pw-alice-123").status_code == 302 and logged_in(client)


def test_a_success_before_the_limit_starts_the_count_again(alice: User) -> None:
    client = Client()
    for _ in range(4):
        attempt(client, "/accounts/login/", "alice", "wrong-password")
    assert attempt(client, "/accounts/login/", "alice", "pw-alice-123").status_code == 302
    client.logout()
    for _ in range(4):
        attempt(client, "/accounts/login/", "alice", "wrong-password")
    assert attempt(client, "/accounts/login/", "alice", "pw-alice-123").status_code == 302


@pytest.mark.django_db(transaction=True)
def test_the_lock_holds_under_the_asgi_server(daphne_server: Any, alice: User) -> None:
    """Production runs Django under Daphne (the async middleware path), with CSRF checks on."""
    import re

    import httpx

    with httpx.Client(base_url=daphne_server.url, timeout=20, trust_env=False) as browser:

        def post(password: str) -> httpx.Response:
            page = browser.get("/admin/login/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
            return browser.post(
                "/admin/login/",
                data={"username": "alice", "password": password, "csrfmiddlewaretoken": token},
                headers={"Referer": f"{daphne_server.url}/admin/login/"},
            )

        assert [post("wrong-password").status_code for _ in range(5)] == [200, 200, 200, 200, 429]
        locked = post("pw-alice-123")
        assert locked.status_code == 429 and LOCKED in locked.text
