"""The agent tools became their own app ("tools") by a move of the state only: a hub migrated before the
move keeps its tokens, calls, write intents, permissions and admin history, in the same tables.

The hub's test database (SQLite, PostgreSQL or MariaDB, whichever the run uses) is taken back to
integrations' migration 0002 — the last state before the move, with the content types under the old
label — rows are written there with the models of that state, and the database is migrated forward.
"""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from integrations.models import Integration
from integrations.tools.models import AgentToken, ToolCall, WriteIntent, hash_token
from tests.runtime_fixtures import REPO

BEFORE_THE_MOVE = [("integrations", "0002_tools_agent_tokens_calls_intents")]
RAW_TOKEN = "hubat_" + "k" * 43


def _migrate(targets: list[tuple[str, str | None]] | None = None) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    ContentType.objects.clear_cache()
    return executor


@pytest.fixture
def before_the_move(transactional_db: None) -> Iterator[MigrationExecutor]:
    executor = _migrate(BEFORE_THE_MOVE)
    try:
        yield executor
    finally:
        _migrate()  # whatever happened, the next tests find the database as it is now


def test_the_models_keep_their_tables_and_nothing_is_left_to_migrate(db: None) -> None:
    assert {m._meta.label: m._meta.db_table for m in (AgentToken, ToolCall, WriteIntent)} == {
        "tools.AgentToken": "integrations_agenttoken",
        "tools.ToolCall": "integrations_toolcall",
        "tools.WriteIntent": "integrations_writeintent",
    }
    tables = set(connection.introspection.table_names())
    assert {"integrations_agenttoken", "integrations_agenttoken_integrations", "integrations_toolcall"} <= tables
    assert not {t for t in tables if t.startswith("tools_")}
    call_command("makemigrations", "--check", "--dry-run", stdout=io.StringIO())  # exits non-zero on a change


def test_the_python_functions_import_before_django_is_set_up() -> None:
    # A script imports them first, then calls django.setup(); importing the package (as Django does when
    # it loads the app) must not reach for a model.
    script = (
        "import sys\n"
        "from integrations.tools import query_database, set_time_off_request_status\n"
        "assert 'integrations.models' not in sys.modules and 'django.db.models' not in sys.modules\n"
        "import django\n"
        "django.setup()\n"
        "from integrations.tools.models import AgentToken\n"
        "print(AgentToken._meta.label, query_database.__module__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["tools.AgentToken", "integrations.tools.functions"]


def test_a_hub_migrated_before_the_move_keeps_its_rows_permissions_and_admin_history(before_the_move) -> None:
    graph = before_the_move.loader.graph
    old = before_the_move.loader.project_state(BEFORE_THE_MOVE + graph.leaf_nodes("admin")).apps
    with pytest.raises(LookupError):
        old.get_model("tools", "AgentToken")
    OldToken, OldCall, OldIntent = (old.get_model("integrations", m) for m in ("AgentToken", "ToolCall", "WriteIntent"))
    OldContentType, OldPermission = old.get_model("contenttypes", "ContentType"), old.get_model("auth", "Permission")
    old_type = OldContentType.objects.get(app_label="integrations", model="agenttoken")
    assert not OldContentType.objects.filter(app_label="tools").exists()

    old_hr = old.get_model("integrations", "Integration").objects.create(
        id="hr_before_move", name="HR", kind="bamboohr"
    )
    old_operator = old.get_model("auth", "User").objects.create_user("operator-before-move", is_staff=True)
    old_operator.user_permissions.add(OldPermission.objects.get(content_type=old_type, codename="view_agenttoken"))
    token = OldToken.objects.create(
        name="hr-bot", token_hash=hash_token(RAW_TOKEN), token_prefix=RAW_TOKEN[:12], created_by=old_operator
    )
    token.integrations.add(old_hr)
    OldCall.objects.create(via="rest", token=token, user=old_operator, actor="token:hr-bot", tool="query_hris")
    OldIntent.objects.create(
        integration_ref=old_hr.pk, key="k-1", tool="create_hris_record", lease_until=timezone.now()
    )
    old.get_model("admin", "LogEntry").objects.create(
        action_time=timezone.now(),
        user=old_operator,
        content_type_id=old_type.pk,
        object_id=str(token.pk),
        object_repr="hr-bot",
        action_flag=1,
    )

    _migrate()

    hr, operator = Integration.objects.get(pk=old_hr.pk), get_user_model().objects.get(pk=old_operator.pk)
    moved = AgentToken.authenticate(RAW_TOKEN)
    assert moved is not None and moved.pk == token.pk and moved.created_by == operator
    assert list(moved.integrations.values_list("id", flat=True)) == [hr.pk]
    assert moved.calls.get().user == operator
    assert WriteIntent.objects.get(key="k-1").integration_ref == hr.pk
    # The same content type, relabelled: the permission granted before still counts, the history still links.
    new_type = ContentType.objects.get_for_model(AgentToken)
    assert (new_type.pk, new_type.app_label) == (old_type.pk, "tools")
    assert not ContentType.objects.filter(app_label="integrations", model="agenttoken").exists()
    assert get_user_model().objects.get(pk=operator.pk).has_perm("tools.view_agenttoken")
    entry = LogEntry.objects.get(object_repr="hr-bot")
    assert entry.get_edited_object() == moved and entry.get_admin_url() == f"/admin/tools/agenttoken/{token.pk}/change/"

    # New rows go to the same tables, and the keys to the integrations and users still act.
    second, _ = AgentToken.issue(name="after-move", access="write", integrations=[hr], created_by=operator)
    ToolCall.objects.create(via="python", token=second, actor="python", tool="list_tables")
    hr.delete()
    operator.delete()
    assert not second.integrations.exists() and AgentToken.objects.get(pk=second.pk).created_by is None
    assert ToolCall.objects.filter(user__isnull=True).count() == 2
