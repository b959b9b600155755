"""NUL characters (which PostgreSQL refuses in text) anywhere in a request are a 4xx, never a 500."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "path",
    [
        "/api/integrations/a%00b",
        "/api/integrations/a%00b/events",
        "/api/integrations/a%00b/metrics",
        "/api/integrations?search=a%00b",
        "/api/integrations?ordering=%00",
        "/api/integrations?kind=a%00",
        "/api/integrations/hr_db/events?type=%00",
        "/api/operations/a%00b",
        "/api/connector-types/a%00b",
    ],
)
def test_nul_in_path_or_query(people, client_for, shared, path):
    response = client_for(people.member).get(path)
    assert 400 <= response.status_code < 500, response.content


@pytest.mark.parametrize(
    "path",
    ["/api/integrations/a.%0Ab/", "/api/integrations/x.y", "/api/operations/a/b/c", "/api/connector-types/%0A/x"],
)
def test_unknown_paths_under_the_api_answer_json(people, client_for, path):
    response = client_for(people.owner).patch(path, {}, format="json")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


def test_nul_in_a_write(people, client_for, shared):
    client = client_for(people.owner)
    assert client.post("/api/integrations/a%00b/test").status_code == 404
    assert client.patch("/api/integrations/hr_db", {"name": "a\x00b"}, format="json").status_code == 400
    assert client.patch("/api/integrations/hr_db", {"owner": "alice\x00"}, format="json").status_code == 400
    assert client.patch("/api/integrations/hr_db", {"shared_with": ["ops\x00"]}, format="json").status_code == 400
    assert client.patch("/api/integrations/hr_db", {"shared_with": [7]}, format="json").status_code == 400
    assert (
        client.patch("/api/integrations/hr_db", {"credentials": {"api_key\x00": "x"}}, format="json").status_code == 400
    )
