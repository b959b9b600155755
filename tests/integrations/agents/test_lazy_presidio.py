"""The web process authenticates agent tokens and builds their access (a RedactionPolicy for a profile
that redacts) without importing presidio, which takes seconds and memory; only redacting imports it.
A fresh process of its own, since this test run has long imported presidio."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from integrations.agents.models import AgentProfile
from integrations.tools.models import AgentToken
from tests.runtime_fixtures import REPO

SCRIPT = """
import json, sys, django
django.setup()
from django.test import Client
from integrations.agents.services import access_for_token
from integrations.tools.models import AgentToken

web = Client(HTTP_HOST="localhost")
listing = web.get("/api/tools/", HTTP_AUTHORIZATION="Bearer " + sys.argv[1])  # URLs, DRF, token auth
assert listing.status_code == 200, listing.content[:500]
grant = access_for_token(AgentToken.authenticate(sys.argv[1])).grant_for(sys.argv[2])
before = "presidio_analyzer" in sys.modules
from connectors.datapolicy.pii import Redactor
masked = Redactor(grant.hris.redaction).redact("my SSN is 536-22-8726").text
print(json.dumps({
    "status": listing.status_code,
    "tools": sorted(t["name"] for t in listing.json()["tools"]),
    "entities": list(grant.hris.redaction.entities),
    "presidio_before": before,
    "presidio_after": "presidio_analyzer" in sys.modules,
    "masked": masked,
}))
"""


@pytest.mark.django_db(transaction=True)
def test_authenticating_a_redacting_profiles_token_does_not_import_presidio(
    hr_sandbox, make_hr_integration, process_env
) -> None:
    hr = make_hr_integration(hr_sandbox)
    profile = AgentProfile.objects.create(name="redacts", tools=["query_hris", "describe_access"])
    profile.grants.create(integration=hr, hris={"classes": ["public", "special"], "redact": ["US_SSN"]})
    _token, raw = AgentToken.issue(name="redacting-agent", profile=profile)

    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, raw, hr.pk],
        cwd=REPO,
        env=process_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["status"] == 200 and out["tools"] == ["describe_access", "query_hris"]
    assert out["entities"] == ["US_SSN"]
    assert out["presidio_before"] is False  # authenticated, access built: no presidio yet
    assert out["presidio_after"] is True and out["masked"] == "my SSN is <US_SSN>"
