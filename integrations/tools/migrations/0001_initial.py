# The agent tools' models move here from the "integrations" app (its migration 0003): a move of the state
# only, so an existing database keeps its tables (db_table: their old names) and rows; a new one gets
# them from integrations' migration 0002. The content types follow, so the permissions granted on these
# models and the admin's history entries keep pointing at them.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

MODELS = ["agenttoken", "toolcall", "writeintent"]


def _relabel(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor, old: str, new: str) -> None:
    """Give the models' content types (made by post_migrate under the old label) the new label. One
    that already exists under the new label is left alone (remove_stale_contenttypes cleans up)."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    types = ContentType.objects.using(schema_editor.connection.alias)
    for model in MODELS:
        if not types.filter(app_label=new, model=model).exists():
            types.filter(app_label=old, model=model).update(app_label=new)


def content_types_to_tools(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _relabel(apps, schema_editor, "integrations", "tools")


def content_types_to_integrations(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _relabel(apps, schema_editor, "tools", "integrations")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("integrations", "0003_agent_tools_move_to_their_app"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AgentToken",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "name",
                            models.CharField(help_text="Who or what uses it, e.g. 'hr-assistant'.", max_length=100),
                        ),
                        ("token_hash", models.CharField(editable=False, max_length=64, unique=True)),
                        ("token_prefix", models.CharField(editable=False, max_length=16)),
                        (
                            "access",
                            models.CharField(
                                choices=[("read", "Read only"), ("write", "Read and write")],
                                default="read",
                                max_length=8,
                            ),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("expires_at", models.DateTimeField(blank=True, null=True)),
                        ("revoked_at", models.DateTimeField(blank=True, null=True)),
                        ("last_used_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "created_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="agent_tokens",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "integrations",
                            models.ManyToManyField(
                                blank=True,
                                help_text="The only integrations this token may use.",
                                related_name="agent_tokens",
                                to="integrations.integration",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "integrations_agenttoken",
                        "ordering": ["name", "id"],
                    },
                ),
                migrations.CreateModel(
                    name="WriteIntent",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("integration_ref", models.CharField(max_length=63)),
                        ("key", models.CharField(max_length=200)),
                        ("tool", models.CharField(max_length=64)),
                        (
                            "fingerprint",
                            models.CharField(help_text="SHA-256 of the canonical arguments.", max_length=64),
                        ),
                        (
                            "state",
                            models.CharField(
                                choices=[("pending", "Pending"), ("succeeded", "Succeeded"), ("failed", "Failed")],
                                default="pending",
                                max_length=12,
                            ),
                        ),
                        ("lease_until", models.DateTimeField()),
                        ("attempts", models.PositiveIntegerField(default=1)),
                        ("context", models.JSONField(blank=True, default=dict)),
                        ("result", models.JSONField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                    ],
                    options={
                        "db_table": "integrations_writeintent",
                        "constraints": [
                            models.UniqueConstraint(fields=("integration_ref", "key"), name="tools_unique_write_intent")
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="ToolCall",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("created_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        ("duration_ms", models.FloatField(blank=True, null=True)),
                        (
                            "via",
                            models.CharField(
                                choices=[("rest", "REST"), ("mcp", "MCP"), ("python", "Python")], max_length=8
                            ),
                        ),
                        ("actor", models.CharField(max_length=150)),
                        ("tool", models.CharField(db_index=True, max_length=64)),
                        ("integration_ref", models.CharField(blank=True, db_index=True, default="", max_length=63)),
                        ("arguments", models.JSONField(blank=True, default=dict)),
                        ("idempotency_key", models.CharField(blank=True, default="", max_length=200)),
                        (
                            "task_id",
                            models.CharField(
                                blank=True, default="", help_text="The Celery task that ran it.", max_length=64
                            ),
                        ),
                        (
                            "outcome",
                            models.CharField(
                                choices=[
                                    ("running", "Running"),
                                    ("ok", "OK"),
                                    ("error", "Error"),
                                    ("refused", "Refused"),
                                    ("unavailable", "Unavailable"),
                                    ("timeout", "Timed out"),
                                ],
                                db_index=True,
                                default="running",
                                max_length=12,
                            ),
                        ),
                        ("error_category", models.CharField(blank=True, default="", max_length=24)),
                        ("error_message", models.TextField(blank=True, default="")),
                        (
                            "result_size",
                            models.PositiveIntegerField(blank=True, help_text="Bytes of the JSON result.", null=True),
                        ),
                        ("row_count", models.PositiveIntegerField(blank=True, null=True)),
                        ("truncated", models.BooleanField(default=False)),
                        (
                            "token",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="calls",
                                to="tools.agenttoken",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="tool_calls",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "integrations_toolcall",
                        "ordering": ["-created_at", "-id"],
                        "indexes": [
                            models.Index(
                                fields=["integration_ref", "-created_at"], name="integration_integra_ae9371_idx"
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_to_tools, content_types_to_integrations),
    ]
