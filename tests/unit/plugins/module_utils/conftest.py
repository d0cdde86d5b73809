"""The ledger's tests: a ledger location on SQLite and, with HOSTING_TEST_PG_DSN, on PostgreSQL
(a schema of its own per test, dropped afterwards)."""
import os
import uuid
from urllib.parse import quote

import pytest

PG_DSN = os.environ.get("HOSTING_TEST_PG_DSN")
NO_PG = pytest.mark.skipif(not PG_DSN, reason="HOSTING_TEST_PG_DSN is not set: no PostgreSQL server to test against")


def with_search_path(dsn, schema):
    if "://" in dsn:
        return "%s%soptions=%s" % (dsn, "&" if "?" in dsn else "?",
                                   quote("-c search_path=%s" % schema, safe=""))
    return "%s options='-c search_path=%s'" % (dsn, schema)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=NO_PG)])
def location(request, tmp_path):
    if request.param == "sqlite":
        yield str(tmp_path / "state" / "ledger.sqlite3")
        return
    import psycopg
    schema = "ledger_test_" + uuid.uuid4().hex[:12]
    with psycopg.connect(PG_DSN, autocommit=True) as admin:
        admin.execute("CREATE SCHEMA " + schema)
    yield with_search_path(PG_DSN, schema)
    with psycopg.connect(PG_DSN, autocommit=True) as admin:
        admin.execute("DROP SCHEMA %s CASCADE" % schema)
