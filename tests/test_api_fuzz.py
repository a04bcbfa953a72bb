"""Schemathesis against the app in process (ASGI, no socket): a fixed seed, a bounded number of cases,
no 5xx and no answer that breaks the OpenAPI schema. The long run is benchmarks/schemathesis_run.py."""

import tempfile

import hypothesis.configuration
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

from benchmarks.schemathesis_run import CHECKS, SEED
from server.app import create_app
from server.config import Settings

MAX_EXAMPLES = 40  # fuzzing cases per operation: 514 cases in all with the examples and coverage phases
CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": SEED,
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none", "deterministic": True},
        "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True}, "fuzzing": {"enabled": True}},
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        "request-timeout": 60,
    }
)
# Hypothesis' files (a cache of the source's constants, written while the tests are collected) go to
# a temporary folder, not the checkout; the example database is off (above).
HYPOTHESIS_HOME = tempfile.TemporaryDirectory(prefix="hypothesis-")
hypothesis.configuration.set_hypothesis_home_dir(HYPOTHESIS_HOME.name)
# The shipped web/ and bundle. A roomy queue and time limit: cases arrive one at a time, and a 503
# here would be an artefact of the test, not a finding.
APP = create_app(Settings(workers=2, queue=64, timeout_s=120))


async def app_without_lifespan(scope, receive, send):
    """APP for HTTP only: schemathesis ends an app's lifespan after each operation's test, and APP's
    pool does not start again; this module closes the pool once, at its end."""
    if scope["type"] != "lifespan":
        await APP(scope, receive, send)


schema = schemathesis.openapi.from_asgi("/openapi.json", app_without_lifespan, config=CONFIG)


@pytest.fixture(scope="module", autouse=True)
def close_the_pool():
    """Stop APP's workers after the last case."""
    yield
    APP.state.demo.pool.close()


@schema.parametrize()
def test_no_server_error_and_every_answer_matches_the_schema(case):
    case.call_and_validate()
