# The agent tools' models (AgentToken, ToolCall, WriteIntent) now belong to their own app, "tools"
# (integrations/tools/). A move of the state only: the tables keep their names and their rows, and
# tools' migration 0001 takes the models over (and the content types, with their permissions).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0002_tools_agent_tokens_calls_intents"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="ToolCall"),
                migrations.DeleteModel(name="WriteIntent"),
                migrations.DeleteModel(name="AgentToken"),
            ],
            database_operations=[],
        ),
    ]
