"""The list endpoint costs the same number of queries for 10 integrations as for 1,000."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from integrations.models import Integration


def _add(n: int, start: int, owner, groups) -> None:
    rows = [
        Integration(
            id=f"bulk_{i:05d}",
            name=f"Bulk {i}",
            kind="bamboohr",
            auth_type="api_key",
            config={"subdomain": "acme"},
            credentials={"api_key": "x" * 40},
            owner=owner if i % 2 else None,
        )
        for i in range(start, start + n)
    ]
    Integration.objects.bulk_create(rows)
    through = Integration.shared_with_groups.through
    through.objects.bulk_create(
        [through(integration_id=row.id, group_id=group.id) for row in rows if not row.owner_id for group in groups]
    )


def _count_list_queries(client) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/api/integrations?page_size=1000")
    assert response.status_code == 200
    return len(ctx.captured_queries), len(response.json()["results"])


@pytest.mark.parametrize("role", ["member", "staff"])
def test_list_query_count_is_constant(people, client_for, role):
    client = client_for(getattr(people, role))
    _add(10, 0, people.member, [people.ops])
    small, seen_small = _count_list_queries(client)
    _add(990, 10, people.member, [people.ops])
    large, seen_large = _count_list_queries(client)
    assert (seen_small, seen_large) == (10, 1000)
    assert small == large, f"{small} queries for 10 integrations, {large} for 1,000"
