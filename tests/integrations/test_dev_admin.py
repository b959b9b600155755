"""`manage.py ensure_dev_admin`: a development login, only in development mode."""

from __future__ import annotations

import re
import stat
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.test import RequestFactory

pytestmark = pytest.mark.django_db


def ensure(**options) -> str:
    out = StringIO()
    call_command("ensure_dev_admin", stdout=out, **options)
    return out.getvalue()


def test_creates_one_admin_and_prints_a_working_login(settings, tmp_path):
    settings.DEBUG = True
    settings.DATA_DIR = tmp_path
    first = ensure(url="http://127.0.0.1:8123/admin/")
    password = re.search(r"Log in at http://127\.0\.0\.1:8123/admin/ as admin / (\S+)", first).group(1)
    login = RequestFactory().post("/admin/login/")  # django-axes counts logins per address: it needs the request
    user = authenticate(login, username="admin", password=password)
    assert user is not None and user.is_superuser and user.is_staff
    assert stat.S_IMODE((tmp_path / "dev-admin-password").stat().st_mode) == 0o600

    second = ensure()
    assert f"as admin / {password}" in second and "Created" not in second
    assert get_user_model().objects.filter(username="admin").count() == 1


def test_a_password_changed_by_the_developer_is_kept_and_not_printed(settings, tmp_path):
    settings.DEBUG = True
    settings.DATA_DIR = tmp_path
    ensure()
    user = get_user_model().objects.get(username="admin")
    user.set_password("my-own-password-42")
    user.save()
    output = ensure()
    assert "(unchanged - the one you set)" in output
    login = RequestFactory().post("/admin/login/")
    assert authenticate(login, username="admin", password="my-own-password-42") is not None


def test_does_nothing_with_debug_off(settings, tmp_path):
    settings.DEBUG = False
    settings.DATA_DIR = tmp_path
    assert "no development admin user is created" in ensure()
    assert not get_user_model().objects.exists()
    assert not (tmp_path / "dev-admin-password").exists()
