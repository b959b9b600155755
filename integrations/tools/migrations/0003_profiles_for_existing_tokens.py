"""Every token made before agent profiles gets a generated profile with its scope of today: its
integrations as grants, read or write as its access, every tool, no quota. Nothing changes for it."""

from typing import Any

from django.db import migrations


def forwards(apps: Any, schema_editor: Any) -> None:
    AgentToken = apps.get_model("tools", "AgentToken")
    AgentProfile = apps.get_model("agents", "AgentProfile")
    ProfileGrant = apps.get_model("agents", "ProfileGrant")
    taken = set(AgentProfile.objects.values_list("name", flat=True))
    for token in AgentToken.objects.filter(profile__isnull=True).order_by("pk"):
        name = f"token {token.name}"[:80]
        if name in taken:
            name = f"{name} #{token.pk}"
        taken.add(name)
        profile = AgentProfile.objects.create(
            name=name,
            description=f"Generated for agent token #{token.pk} with the scope it had.",
            tools=None,
            generated=True,
            max_token_ttl=86400 * 365,
        )
        for integration_id in token.integrations.values_list("id", flat=True):
            ProfileGrant.objects.create(profile=profile, integration_id=integration_id, access=token.access)
        AgentToken.objects.filter(pk=token.pk).update(profile=profile)


def backwards(apps: Any, schema_editor: Any) -> None:
    AgentToken = apps.get_model("tools", "AgentToken")
    AgentToken.objects.update(profile=None)
    apps.get_model("agents", "AgentProfile").objects.filter(generated=True).delete()


class Migration(migrations.Migration):
    dependencies = [("tools", "0002_agenttoken_profile"), ("agents", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
