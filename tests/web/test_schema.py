"""schemathesis over the OpenAPI description: no request it can make gets a server error.

Job creation (POST) is left out here, since it starts real downloads and trainings; its
validation is covered in test_api.py. Everything else, DELETE of jobs included, is fuzzed
against the app over a real DuckDB file (the workspace is attached per test).
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from volcast.web.app import create_app


class Unattached:
    """The workspace while the schema is read at import (the app starts then and counts the
    stored series); each test attaches its own."""

    def keys(self) -> list:
        return []


app = create_app(workspace=Unattached())  # type: ignore[arg-type]
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(autouse=True)
def _attach(workspace):
    app.state.workspace = workspace


@schema.exclude(method="POST").parametrize()
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_server_error(case):
    response = case.call()
    assert response.status_code < 500, (case.method, case.formatted_path, case.query,
                                        response.text[:300])
