"""The database test's table."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hosting.migration.plugins.filter.database_test_table import database_test_table


def database(name, engine="mariadb", errors=(), warnings=(), error_count=None, warning_count=None, **extra):
    entry = dict(engine=engine, name=name, account=name.split("_")[0], bytes=2 * 1024 * 1024, elapsed_s=0.84,
                 errors=list(errors), warnings=list(warnings),
                 error_count=len(errors) if error_count is None else error_count,
                 warning_count=len(warnings) if warning_count is None else warning_count,
                 server_version="11.8.9-MariaDB" if engine == "mariadb" else "17.12", scratch="hmtest_0123456789ab",
                 dropped=True)
    entry["ok"] = entry["error_count"] == 0
    entry.update(extra)
    return entry


def test_rows_messages_and_summary():
    result = {"databases": [
        database("alice_app"),
        database("bob_app", errors=["ERROR 1064 (42000) at line 3: syntax"], warnings=["Warning (Code 1265): x"]),
        database("bob_app", "postgresql", errors=["psql:<stdin>:1: ERROR: a", "psql:<stdin>:2: ERROR: b"],
                 warnings=["psql:<stdin>:3: WARNING: c"], error_count=40, warning_count=3),
    ]}
    lines = database_test_table(result).splitlines()
    assert lines.pop(0) == "Imported into MariaDB 11.8.9-MariaDB, PostgreSQL 17.12"
    assert lines[0].split() == ["account", "database", "dump", "time", "errors", "warnings", "messages"]
    assert set(lines[1]) == {"-"}
    assert lines[2].split() == ["alice", "mariadb", "alice_app", "2.0", "MiB", "0.8", "s", "0", "0", "-"]
    assert lines[3].split()[:7] == ["bob", "mariadb", "bob_app", "2.0", "MiB", "0.8", "s"]
    assert lines[3].split()[7:9] == ["1", "1"] and lines[3].endswith("  error: ERROR 1064 (42000) at line 3: syntax")
    assert lines[3].index("error: ") == lines[0].index("messages")
    assert lines[4].strip() == "warning: Warning (Code 1265): x"
    assert lines[5].split()[7:9] == ["40", "3"] and lines[5].endswith("  error: psql:<stdin>:1: ERROR: a")
    assert lines[6].strip() == "error: psql:<stdin>:2: ERROR: b"
    assert lines[7].strip() == "warning: psql:<stdin>:3: WARNING: c"
    assert lines[8].strip() == "... and 38 more errors, 2 more warnings"
    assert lines[9] == ("3 databases tested: 1 without errors, 2 with errors (mariadb bob_app, postgresql bob_app); "
                        "41 errors, 4 warnings")
    assert len(lines) == 10
    assert database_test_table(result["databases"]) == database_test_table(result)


def test_expected_warnings_are_named_in_the_summary_only():
    note = "Warning (Code 1287): '@@sql_notes' is deprecated"
    lines = database_test_table([database("alice_app", expected_warning_count=2, expected_warnings=[note]),
                                 database("bob_app", expected_warning_count=2, expected_warnings=[note])]).splitlines()
    assert lines[3].split()[7:] == ["0", "0", "-"]
    assert lines[-2] == "Not counted: 4 warnings caused by the dump format itself, whatever the data (%s)" % note
    assert lines[-1] == "2 databases tested: 2 without errors, 0 with errors; 0 errors, 0 warnings"


def test_message_limit_and_undropped_scratch():
    entry = database("carol_app", errors=["ERROR 1", "ERROR 2"], dropped=False, drop_error="server gone")
    lines = database_test_table([entry], messages=1).splitlines()[1:]
    assert lines[2].endswith("scratch database hmtest_0123456789ab NOT dropped: server gone")
    assert lines[3].strip() == "... and 2 more errors"
    assert lines[-1].startswith("1 database tested: 0 without errors, 1 with errors (mariadb carol_app); 2 errors, 0 warnings")
    one = database_test_table([database("dave_app", errors=["ERROR 1"])], messages=0).splitlines()[1:]
    assert one[2].split()[7:9] == ["1", "0"] and one[2].endswith("  ... and 1 more error")


def test_a_failed_dump_without_a_report():
    entry = database("erin_app", errors=["the dump (mariadb-dump) exited with 2: x"], scratch=None, dropped=None,
                     server_version=None)
    lines = database_test_table([entry]).splitlines()
    assert "error: the dump (mariadb-dump) exited with 2: x" in lines[2]
    assert lines[-1] == "1 database tested: 0 without errors, 1 with errors (mariadb erin_app); 1 error, 0 warnings"


@pytest.mark.parametrize("value, why", [
    ("text", "expects the result of hosting.migration.database_test"),
    ({"changed": False}, "expects the result"),
    ([{"engine": "mariadb", "name": "a", "bytes": None, "elapsed_s": None}], "is not a database of"),
])
def test_refuses_what_is_not_a_database_test(value, why):
    with pytest.raises(AnsibleFilterError, match=why):
        database_test_table(value)


def test_refuses_a_bad_message_count():
    with pytest.raises(AnsibleFilterError, match="messages must be a number"):
        database_test_table([], messages=-1)
