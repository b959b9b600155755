"""Schemathesis over the hub's own OpenAPI schema, against the real ASGI server (Daphne) on loopback.

Every operation of the REST API gets generated requests (schema-conforming and not), authenticated
with a staff token, both with generated ids and with the id of a real integration. A response must
never be a 5xx and must match the schema (status code, content type, headers, body).

Not marked slow on purpose: it runs on every database backend, where it has found backend-only 500s.
"""

from __future__ import annotations

import os
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

from integrations.models import Integration

# The API of this issue; other areas (e.g. /api/tools/) fuzz their own endpoints.
OURS = ("/api/integrations", "/api/connector-types", "/api/health", "/api/operations")
MAX_EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "10"))
# Derandomized by default (CI sees the same cases every run); API_FUZZ_SEED=<n> explores other ones.
SEED = os.environ.get("API_FUZZ_SEED")
# Positive data may still be refused: a config must fit its kind's schema, which the OpenAPI document
# describes per kind at /api/connector-types rather than inline.
EXCLUDED_CHECKS = [openapi_checks.positive_data_acceptance]


def _seed(owner) -> None:
    if not Integration.objects.filter(pk="fuzz_target").exists():
        Integration.objects.create(
            id="fuzz_target",
            name="Fuzz target",
            kind="bamboohr",
            auth_type="api_key",
            config={"subdomain": "acme"},
            credentials={"api_key": "f" * 40},
            owner=owner,
        )


@pytest.mark.django_db(transaction=True)
def test_fuzz_the_api_against_a_live_server(clean_redis, daphne_server, people):
    from knox.models import AuthToken

    token = AuthToken.objects.create(people.staff)[1]
    auth = {"Authorization": f"Token {token}"}
    _seed(people.owner)
    schema = schemathesis.openapi.from_url(f"{daphne_server.url}/api/schema/?format=json", headers=auth)
    operations = [result.ok() for result in schema.get_all_operations() if result.ok().path.startswith(OURS)]
    assert len(operations) >= 13, [op.label for op in operations]

    failures: dict[str, str] = {}
    for operation in operations:
        fixed_id: list[dict[str, str] | None] = [None]
        if "{id}" in operation.path or "{integration_id}" in operation.path:
            name = "id" if "{id}" in operation.path else "integration_id"
            fixed_id.append({name: "fuzz_target"})
        for path_parameters in fixed_id:
            # Against the real integration, operations do not wait for a worker that is not running.
            query = {"wait": "0"} if path_parameters and operation.path.endswith(("connect/", "test/")) else None
            modes = [GenerationMode.POSITIVE]
            # Negative data needs a query parameter or a body to break (ids are any string).
            if len(operation.query) - (1 if query else 0) > 0 or len(operation.body) > 0:
                modes.append(GenerationMode.NEGATIVE)
            for mode in modes:
                strategy = operation.as_strategy(mode, path_parameters=path_parameters, query=query)

                @settings(
                    max_examples=MAX_EXAMPLES,
                    deadline=None,
                    database=None,
                    derandomize=SEED is None,
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=strategy)
                def run(case: schemathesis.Case) -> None:
                    _seed(people.owner)  # a DELETE may have removed it
                    case.call_and_validate(
                        base_url=daphne_server.url, headers=auth, excluded_checks=EXCLUDED_CHECKS, timeout=40
                    )

                if SEED is not None:
                    run = seed(int(SEED))(run)
                started = time.monotonic()
                try:
                    run()
                except Unsatisfiable:  # nothing to break in this mode (no parameters, no body): fine
                    pass
                except BaseException as exc:  # collect them all: one run shows every failing operation
                    if isinstance(exc, KeyboardInterrupt):
                        raise
                    key = f"{operation.label} [{mode.value}{', real id' if path_parameters else ''}]"
                    failures[key] = str(exc)[:3000]
                print(f"fuzzed {operation.label} [{mode.value}] in {time.monotonic() - started:.1f} s")
    assert not failures, "\n\n".join(f"{key}:\n{text}" for key, text in failures.items())
