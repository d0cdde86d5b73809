"""The database test: the endpoint's test-import operation (grammar, refusals, scratch databases made
and always dropped, stale ones cleaned up, errors and warnings counted), the source side (commands,
the endpoint's report read back) and the reserved scratch prefix. The database clients are stand-ins
that behave like mariadb and psql, except for one test against the PostgreSQL cluster of
tests/run.sh (HOSTING_TEST_PG_DSN) and one against a throwaway MariaDB server when it is installed."""
import fcntl
import json
import os
import shutil
import signal
import subprocess
import textwrap
import threading
import time
import urllib.parse

import pytest

from ansible_collections.hosting.migration.plugins.module_utils import account_spec
from ansible_collections.hosting.migration.plugins.module_utils import transfer_endpoint as endpoint
from ansible_collections.hosting.migration.plugins.module_utils.transfer import (
    TransferError, TransferInputError, check_database, command_environment, key_paths)
from ansible_collections.hosting.migration.plugins.module_utils.transfer_authorized import (
    check_allow, run_transfer_authorization)
from ansible_collections.hosting.migration.plugins.module_utils.transfer_test_import import (
    check_test_databases, dump_command_for_test, parse_report, result_of_test, run_database_test,
    ssh_command_for_test)

NOW = 1767268800.0
CONFIG = {"transfer_id": "dbtest-dedicated1", "source": ["10.77.0.20"], "expires": NOW + 3600,
          "allow": [{"mariadb_test": "alice_app"}, {"postgresql_test": "alice_pg"}, {"mariadb_restore": "bob_app"}]}

# What `mariadb --force --show-warnings` (MariaDB 11.8) wrote for a small SQL file in the lab: the
# failed statement between two rules, then the error, on stderr; warnings on stdout.
MARIADB_STDERR = """\
--------------
INSERT INTO t VALUES (1000, 'abcdef')
--------------

ERROR 1264 (22003) at line 2: Out of range value for column 'a' at row 1
--------------
SELEC 1
--------------

ERROR 1064 (42000) at line 3: You have an error in your SQL syntax; check the manual that corresponds to \
your MariaDB server version for the right syntax to use near 'SELEC 1' at line 1
--------------
INSERT INTO t VALUES (1, 'multi
line')
--------------

ERROR 1406 (22001) at line 4: Data too long for column 'b' at row 1
"""
MARIADB_STDOUT = """\
Warning (Code 1265): Data truncated for column 'b' at row 1
Note (Code 1449): The user specified as a definer ('nobody2'@'localhost') does not exist
Error (Code 1064): You have an error in your SQL syntax
"""
# What `psql -X -q -v ON_ERROR_STOP=0 -f -` (PostgreSQL 17) wrote on stderr in the lab.
POSTGRESQL_STDERR = """\
psql:<stdin>:3: ERROR:  smallint out of range
psql:<stdin>:4: ERROR:  syntax error at or near "SELEC"
LINE 1: SELEC 1;
        ^
psql:<stdin>:6: WARNING:  a warning
on two lines
psql:<stdin>:7: ERROR:  extension "nonexistent_ext" is not available
DETAIL:  Could not open extension control file "/usr/share/postgresql/17/extension/nonexistent_ext.control".
HINT:  The extension must first be installed on the system where PostgreSQL is running.
psql:<stdin>:8: NOTICE:  table "x" does not exist, skipping
psql:<stdin>:9: invalid command \\foo
"""


# ---------------------------------------------------------------------------------------------
# The scratch prefix is reserved


def test_the_scratch_prefix_is_the_same_everywhere_and_reserved():
    assert endpoint.SCRATCH_PREFIX == account_spec.SCRATCH_DATABASE_PREFIX == "hmtest_"
    assert endpoint.SCRATCH_RE.fullmatch("hmtest_0123456789ab")
    for name in ("hmtest_0123456789a", "hmtest_0123456789abc", "hmtest_0123456789AB", "alice_app", "hmtest_alice"):
        assert not endpoint.SCRATCH_RE.fullmatch(name)
    with pytest.raises(TransferInputError, match="hmtest_, the prefix of the test imports' scratch databases"):
        check_database("mariadb", "hmtest_0123456789ab")
    with pytest.raises(TransferInputError, match="prefix"):
        check_allow([{"postgresql_restore": "hmtest_x"}])
    assert check_database("mariadb", "hmtestapp") == "hmtestapp"


def _spec(name, database):
    return {"name": name, "uid": 10001, "gid": 10001,
            "databases": [{"engine": "mariadb", "name": database}]}


@pytest.mark.parametrize("name, database, field, why", [
    ("hmtes", "hmtest_0123456789ab", "databases[0].name", "reserved for the database test's scratch databases"),
    ("hmtest", "hmtest_app", "name", "its databases would have to start with 'hmtest_'"),
    ("hmtest-shop", "hmtest_shop", "name", "reserved"),
    ("hmtest_x", "hmtest_x", "name", "reserved"),
])
def test_account_specs_never_own_a_scratch_name(name, database, field, why):
    with pytest.raises(account_spec.SpecError) as caught:
        account_spec.validate_spec(_spec(name, database), "/etc/hosting/accounts/%s.yml" % name)
    assert caught.value.field == field and why in str(caught.value)


def test_account_names_near_the_prefix_are_fine():
    spec = account_spec.validate_spec(_spec("hmtestx", "hmtestx_app"), "/etc/hosting/accounts/hmtestx.yml")
    assert spec.databases[0].name == "hmtestx_app"


# ---------------------------------------------------------------------------------------------
# The endpoint's grammar


def test_test_operations_are_decided_without_an_argv():
    assert endpoint.decide("hosting-restore-test mariadb alice_app", CONFIG, now=NOW, client="10.77.0.20") == (
        None, "mariadb_test alice_app")
    assert endpoint.decide("hosting-restore-test postgresql alice_pg", CONFIG, now=NOW) == (
        None, "postgresql_test alice_pg")


@pytest.mark.parametrize("command, why", [
    ("hosting-restore-test mariadb bob_app", "test-importing mariadb database 'bob_app' is not allowed"),
    ("hosting-restore-test postgresql alice_app", "not allowed (allowed: alice_pg)"),
    ("hosting-restore-test mariadb alice_pg", "not allowed"),
    ("hosting-restore-test mariadb mysql", "not allowed"),
    ("hosting-restore-test mariadb hmtest_0123456789ab", "not allowed"),
    ("hosting-restore-test mariadb ALICE_APP", "not allowed"),
    ("hosting-restore-test mariadb alice_app extra", "use 'hosting-restore-test"),
    ("hosting-restore-test mariadb", "use 'hosting-restore-test"),
    ("hosting-restore-test sqlite alice_app", "use 'hosting-restore-test"),
    ("hosting-restore-test mariadb alice_app;id", "characters"),
    ("hosting-restore-test mariadb 'alice_app'", "characters"),
    ("hosting-restore-test  mariadb alice_app", "single spaces"),
    ("hosting-restore-test mariadb ../alice_app", "'..'"),
    ("hosting-restore mariadb alice_app", "restoring mariadb database 'alice_app' is not allowed"),
    ("hosting-restore-tests mariadb alice_app", "not an operation"),
    ("hosting-restore-test mariadb bob_app", "allowed: alice_app"),
])
def test_test_operations_are_refused(command, why):
    with pytest.raises(endpoint.Refused) as refusal:
        endpoint.decide(command, CONFIG, now=NOW, client="10.77.0.20")
    assert why in str(refusal.value)


def test_a_test_grant_allows_no_restore_and_the_other_way_round():
    # mariadb_restore: bob_app does not allow testing bob_app, and mariadb_test: alice_app no restore.
    with pytest.raises(endpoint.Refused):
        endpoint.decide("hosting-restore-test mariadb bob_app", CONFIG, now=NOW)
    with pytest.raises(endpoint.Refused):
        endpoint.decide("hosting-restore mariadb alice_app", CONFIG, now=NOW)
    with pytest.raises(endpoint.Refused, match="expired"):
        endpoint.decide("hosting-restore-test mariadb alice_app", CONFIG, now=NOW + 3600)
    with pytest.raises(endpoint.Refused, match="connections from 10.77.0.21"):
        endpoint.decide("hosting-restore-test mariadb alice_app", CONFIG, now=NOW, client="10.77.0.21")


def test_authorization_grants_test_operations(tmp_path):
    assert check_allow([{"mariadb_test": "alice_app"}, {"postgresql_test": "alice_app"}, {"mariadb_test": "alice_app"}]) \
        == [{"mariadb_test": "alice_app"}, {"postgresql_test": "alice_app"}]
    for entry, why in [({"mariadb_test": "mysql"}, "system database"), ({"sqlite_test": "a"}, "exactly one of"),
                       ({"postgresql_test": "Alice"}, "not valid")]:
        with pytest.raises(TransferInputError, match=why):
            check_allow([entry])


# ---------------------------------------------------------------------------------------------
# Reading the clients' messages


def _feed(parser, stdout, stderr):
    for line in stderr.splitlines():
        parser.stderr_line(line)
    for line in stdout.splitlines():
        parser.stdout_line(line)


def test_mariadb_messages():
    errors, warnings = endpoint.Messages(), endpoint.Messages()
    _feed(endpoint.MariadbOutput(errors, warnings), MARIADB_STDOUT, MARIADB_STDERR)
    assert errors.count == 3 and warnings.count == 1
    assert errors.kept[0] == "ERROR 1264 (22003) at line 2: Out of range value for column 'a' at row 1"
    assert errors.kept[2] == "ERROR 1406 (22001) at line 4: Data too long for column 'b' at row 1"
    assert all("INSERT" not in text and "SELEC 1\n" not in text for text in errors.kept)
    assert warnings.kept == ["Warning (Code 1265): Data truncated for column 'b' at row 1"]


def test_mariadb_warnings_of_the_dump_format_are_counted_apart():
    errors, warnings = endpoint.Messages(), endpoint.Messages()
    output = endpoint.MariadbOutput(errors, warnings)
    note = ("Warning (Code 1287): '@@sql_notes' is deprecated and will be removed in a future release. Please use "
            "'@@note_verbosity' instead")
    _feed(output, note + "\nWarning (Code 1265): Data truncated for column 'b' at row 1\n" + note + "\n", "")
    assert warnings.count == 1 and output.expected.count == 2 and set(output.expected.kept) == {note}


def test_mariadb_messages_other_lines():
    errors, warnings = endpoint.Messages(), endpoint.Messages()
    _feed(endpoint.MariadbOutput(errors, warnings), "",
          "mariadb: unknown variable 'x'\nERROR 1064 (42000) at line 9: near 'a\nb' at line 1\nWarning: something\n")
    assert errors.kept == ["mariadb: unknown variable 'x'", "ERROR 1064 (42000) at line 9: near 'a / b' at line 1"]
    assert warnings.kept == ["Warning: something"]


def test_postgresql_messages():
    errors, warnings = endpoint.Messages(), endpoint.Messages()
    _feed(endpoint.PostgresqlOutput(errors, warnings), "", POSTGRESQL_STDERR)
    assert errors.count == 4 and warnings.count == 1
    assert errors.kept[0] == "psql:<stdin>:3: ERROR: smallint out of range"
    assert errors.kept[1] == 'psql:<stdin>:4: ERROR: syntax error at or near "SELEC"'
    assert errors.kept[2].startswith('psql:<stdin>:7: ERROR: extension "nonexistent_ext" is not available / DETAIL:')
    assert "HINT: The extension must first be installed" in errors.kept[2]
    assert errors.kept[3] == "psql:<stdin>:9: invalid command \\foo"
    assert warnings.kept == ["psql:<stdin>:6: WARNING: a warning / on two lines"]


def test_messages_are_counted_all_but_kept_few_and_short():
    errors, warnings = endpoint.Messages(), endpoint.Messages()
    output = endpoint.PostgresqlOutput(errors, warnings)
    for number in range(25):
        output.stderr_line("psql:<stdin>:%d: ERROR:  %s" % (number, "x" * 1000))
        output.stderr_line("DETAIL:  more")
    assert errors.count == 25 and len(errors.kept) == endpoint.MESSAGE_LIMIT == 20
    assert all(len(text) == endpoint.MESSAGE_CHARS and text.endswith("...") for text in errors.kept)


# ---------------------------------------------------------------------------------------------
# Test imports with a stand-in mariadb client

FAKE_MARIADB = textwrap.dedent('''\
    #!/usr/bin/python3
    """mariadb as far as the test imports use it; databases kept in STATE, calls appended to CALLS."""
    import json, os, sys, time
    STATE, CALLS = %r, %r
    args = sys.argv[1:]
    with open(CALLS, "a") as calls:
        calls.write(json.dumps(args) + "\\n")
    state = json.load(open(STATE)) if os.path.exists(STATE) else {"databases": [], "fail": ""}
    if args[:2] == ["--no-defaults", "--help"]:
        print("  --sandbox           Disallow commands that access the file system")
        sys.exit(0)
    if "-e" in args:
        for statement in args[args.index("-e") + 1].split("; "):
            if statement in state["fail"]:
                sys.stderr.write("ERROR 1007 (HY000) at line 1: cannot %%s\\n" %% statement)
                sys.exit(1)
            if statement == "SHOW DATABASES":
                print("\\n".join(state["databases"]))
            elif statement == "SELECT VERSION()":
                print("11.8.9-MariaDB-0+deb13u1 from Debian")
            elif statement.startswith("CREATE DATABASE "):
                state["databases"].append(statement.split()[-1].strip("`"))
            elif statement.startswith("DROP DATABASE IF EXISTS "):
                name = statement.split()[-1].strip("`")
                state["databases"] = [db for db in state["databases"] if db != name]
        json.dump(state, open(STATE, "w"))
        sys.exit(0)
    database = [arg.split("=", 1)[1] for arg in args if arg.startswith("--database=")][0]
    assert database in state["databases"], database
    for line in sys.stdin:
        line = line.rstrip("\\n")
        if line.startswith("ERROR"):
            sys.stderr.write("--------------\\nINSERT INTO t VALUES (1)\\n--------------\\n\\n%%s\\n" %% line)
        elif line.startswith("WARN "):
            print("Warning (Code 1265): " + line[5:])
        elif line == "SLEEP":
            sys.stdout.flush()
            time.sleep(30)
        elif line.startswith("EXIT "):
            sys.exit(int(line[5:]))
''')


@pytest.fixture
def fake_server(tmp_path):
    """(bin dir for the endpoint's PATH, config dir, state reader, state writer, calls reader)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    state, calls = tmp_path / "state.json", tmp_path / "calls"
    (bin_dir / "mariadb").write_text(FAKE_MARIADB % (str(state), str(calls)))
    (bin_dir / "mariadb").chmod(0o755)
    config_dir = tmp_path / "transfers"
    config_dir.mkdir(mode=0o700)

    class Server(object):
        path = str(bin_dir)
        config = str(config_dir)

        @staticmethod
        def databases():
            return json.loads(state.read_text())["databases"] if state.exists() else []

        @staticmethod
        def set(databases=(), fail=""):
            state.write_text(json.dumps({"databases": list(databases), "fail": fail}))

        @staticmethod
        def calls():
            return [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []

    Server.set()
    return Server


def _dump(tmp_path, text):
    path = tmp_path / "dump.sql"
    path.write_text(text)
    return open(str(path), "rb")


def test_restore_test_imports_into_a_scratch_database_and_drops_it(tmp_path, fake_server):
    fake_server.set(["alice_app", "mysql"])
    with _dump(tmp_path, "CREATE TABLE t (a int);\nERROR 1064 (42000) at line 2: syntax\nWARN truncated\n"
                         "WARN truncated again\n") as dump:
        report = endpoint.restore_test("mariadb", "alice_app", fake_server.config, fake_server.path, stdin=dump)
    assert endpoint.SCRATCH_RE.fullmatch(report["scratch"])
    assert report["error_count"] == 1 and report["errors"] == ["ERROR 1064 (42000) at line 2: syntax"]
    assert report["warning_count"] == 2 and report["warnings"][1] == "Warning (Code 1265): truncated again"
    assert report["dropped"] and report["restore_rc"] == 0 and report["stale_dropped"] == []
    assert report["server_version"] == "11.8.9-MariaDB-0+deb13u1 from Debian"
    assert report["expected_warning_count"] == 0 and report["expected_warnings"] == []
    assert fake_server.databases() == ["alice_app", "mysql"]
    calls = fake_server.calls()
    imports = [call for call in calls if "--force" in call]
    assert imports == [["--sandbox", "--force", "--show-warnings", "--database=" + report["scratch"]]]
    assert ["--batch", "--skip-column-names", "-e", "DROP DATABASE IF EXISTS `%s`" % report["scratch"]] in calls
    assert not any("alice_app" in " ".join(call) for call in calls)
    assert os.listdir(os.path.join(fake_server.config, "scratch")) == []
    assert json.loads(json.dumps(report)) == report


def test_restore_test_reports_a_failed_import_without_messages(tmp_path, fake_server):
    with _dump(tmp_path, "EXIT 3\n") as dump:
        report = endpoint.restore_test("mariadb", "alice_app", fake_server.config, fake_server.path, stdin=dump)
    assert report["restore_rc"] == 3 and report["errors"] == ["mariadb exited with 3"] and report["dropped"]
    assert fake_server.databases() == []


def test_restore_test_drops_the_scratch_database_when_it_cannot_go_on(tmp_path, fake_server):
    fake_server.set(fail="SELECT VERSION()")
    with _dump(tmp_path, "") as dump:
        with pytest.raises(endpoint.ImportTestFailed, match="mariadb exited with 1: ERROR 1007"):
            endpoint.restore_test("mariadb", "alice_app", fake_server.config, fake_server.path, stdin=dump)
    assert any(call[-1].startswith("DROP DATABASE IF EXISTS `hmtest_") for call in fake_server.calls())
    assert os.listdir(os.path.join(fake_server.config, "scratch")) == []


def test_restore_test_drops_the_scratch_database_when_interrupted(tmp_path, fake_server):
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    started = time.monotonic()
    try:
        with _dump(tmp_path, "WARN first\nSLEEP\n") as dump:
            with pytest.raises(endpoint.Interrupted, match="signal %d" % signal.SIGTERM):
                endpoint.restore_test("mariadb", "alice_app", fake_server.config, fake_server.path, stdin=dump)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 20
    assert fake_server.databases() == []
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_stale_scratch_databases_are_dropped_unless_a_test_holds_them(tmp_path, fake_server):
    lock_dir = os.path.join(fake_server.config, "scratch")
    os.makedirs(lock_dir)
    running, killed, rebooted = "hmtest_aaaaaaaaaaaa", "hmtest_bbbbbbbbbbbb", "hmtest_cccccccccccc"
    fake_server.set(["alice_app", "hmtest_other", running, killed, rebooted])
    held = os.open(os.path.join(lock_dir, running + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(held, fcntl.LOCK_EX)
    open(os.path.join(lock_dir, killed + ".lock"), "w").close()
    try:
        with _dump(tmp_path, "") as dump:
            report = endpoint.restore_test("mariadb", "alice_app", fake_server.config, fake_server.path, stdin=dump)
    finally:
        os.close(held)
    assert sorted(report["stale_dropped"]) == [killed, rebooted]
    assert fake_server.databases() == ["alice_app", "hmtest_other", running]
    assert sorted(os.listdir(lock_dir)) == [running + ".lock"]


def _run_endpoint(fake_server, tmp_path, command, allow, dump=""):
    config = dict(transfer_id="t1", source=["127.0.0.1"], allow=allow, expires=time.time() + 600)
    with open(os.path.join(fake_server.config, "t1.json"), "w") as handle:
        json.dump(config, handle)
    out, err = [], []

    class Stream(object):
        def __init__(self, into):
            self.into = into

        def write(self, text):
            self.into.append(text)

        def flush(self):
            pass

    with _dump(tmp_path, dump) as stdin:
        rc = endpoint.main(["--config-dir", fake_server.config, "--log-file", str(tmp_path / "log"), "t1"],
                           dict(SSH_ORIGINAL_COMMAND=command, SSH_CONNECTION="127.0.0.1 1 127.0.0.1 22"),
                           execve=None, stdout=Stream(out), stderr=Stream(err), stdin=stdin,
                           search_path=fake_server.path)
    return rc, "".join(out), "".join(err), (tmp_path / "log").read_text()


def test_endpoint_main_prints_one_report(tmp_path, fake_server, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, err, log = _run_endpoint(fake_server, tmp_path, "hosting-restore-test mariadb alice_app",
                                      [{"mariadb_test": "alice_app"}], "ERROR 1 at line 1: x\n")
    assert rc == 0 and err == "" and len(out.splitlines()) == 1
    report = json.loads(out)
    assert report["error_count"] == 1 and report["dropped"] and report["database"] == "alice_app"
    assert " accepted mariadb_test alice_app " in log
    assert " tested mariadb_test alice_app into %s: 1 errors, 0 warnings, dropped " % report["scratch"] in log


def test_endpoint_main_refuses_or_fails_with_a_message(tmp_path, fake_server, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, err, log = _run_endpoint(fake_server, tmp_path, "hosting-restore-test mariadb alice_app",
                                      [{"mariadb_restore": "alice_app"}])
    assert rc == 1 and out == "" and "refused: test-importing mariadb database 'alice_app' is not allowed" in err
    fake_server.set(fail="SHOW DATABASES")
    rc, out, err, log = _run_endpoint(fake_server, tmp_path, "hosting-restore-test mariadb alice_app",
                                      [{"mariadb_test": "alice_app"}])
    assert rc == 1 and out == ""
    assert err.startswith("hosting-migration transfer t1: test import of mariadb database alice_app failed: mariadb "
                          "exited with 1")
    assert " failed mariadb_test alice_app: " in log
    rc, out, err, log = _run_endpoint(fake_server, tmp_path, "hosting-restore-test postgresql alice_app",
                                      [{"postgresql_test": "alice_app"}])
    assert rc == 1 and "runuser is not installed on this server" in err


# ---------------------------------------------------------------------------------------------
# The source side


def test_source_commands():
    assert check_test_databases([{"engine": "mariadb", "name": "alice_app", "account": "alice"},
                                 {"engine": "postgresql", "name": "alice_app"}]) == [
        ("mariadb", "alice_app", "alice"), ("postgresql", "alice_app", None)]
    for databases, why in [([], "empty"), ([{"engine": "mariadb", "name": "a", "size": 1}], "optionally account"),
                           ([{"engine": "mariadb", "name": "a"}, {"engine": "mariadb", "name": "a"}], "twice"),
                           ([{"engine": "mariadb", "name": "a", "account": 3}], "account must be a string"),
                           ([{"engine": "mariadb", "name": "hmtest_0123456789ab"}], "prefix")]:
        with pytest.raises(TransferInputError, match=why):
            check_test_databases(databases)
    assert dump_command_for_test("postgresql", "alice_app") == [
        "runuser", "-u", "postgres", "--", "pg_dump", "--no-owner", "--no-privileges", "--quote-all-identifiers",
        "--no-password", "alice_app"]
    assert dump_command_for_test("mariadb", "alice_app", "mysqldump")[0] == "mysqldump"
    command = ssh_command_for_test(key_paths("t1", "/root/.ssh/hosting-migration"), "10.77.0.40", "mariadb", "alice_app")
    assert command[-3:] == ["-T", "root@10.77.0.40", "hosting-restore-test mariadb alice_app"]
    assert endpoint.decide(command[-1], CONFIG, now=NOW) == (None, "mariadb_test alice_app")


REPORT = dict(engine="mariadb", database="alice_app", scratch="hmtest_0123456789ab", dropped=True, restore_rc=0,
              error_count=0, errors=[], warning_count=1, warnings=["Warning (Code 1265): x"],
              server_version="11.8.9", stale_dropped=[], elapsed_s=0.1)


def _outcome(report=REPORT, producer_rc=0, consumer_rc=0, stdout=None, stderr="", broke=False):
    return dict(bytes=1234, elapsed_s=0.5, producer_rc=producer_rc, consumer_rc=consumer_rc,
                producer_stderr="mariadb-dump: Got error: 1044" if producer_rc else "", consumer_stderr=stderr,
                consumer_stdout=json.dumps(report) + "\n" if stdout is None else stdout, consumer_broke=broke)


def test_parse_report():
    assert parse_report(json.dumps(REPORT)) == REPORT
    assert parse_report("noise\n" + json.dumps(REPORT) + "\n") == REPORT
    assert parse_report("") is None and parse_report("{not json") is None
    assert parse_report(json.dumps({"error_count": 1})) is None


def test_result_of_a_test():
    entry = dict(engine="mariadb", name="alice_app", account="alice", dump=["mariadb-dump"], test=["ssh"])
    result = result_of_test(entry, _outcome(), "10.77.0.40")
    assert result["expected_warning_count"] == 0 and result["expected_warnings"] == []
    assert result_of_test(entry, _outcome(dict(REPORT, expected_warning_count=2, expected_warnings=["W"])),
                          "10.77.0.40")["expected_warning_count"] == 2
    assert result["ok"] and result["warning_count"] == 1 and result["bytes"] == 1234 and result["account"] == "alice"
    assert result["dropped"] and "drop_error" not in result
    failed = result_of_test(entry, _outcome(dict(REPORT, error_count=30, errors=["ERROR 1"] * 20)), "10.77.0.40")
    assert not failed["ok"] and failed["error_count"] == 30 and len(failed["errors"]) == 20
    cut = result_of_test(entry, _outcome(producer_rc=2), "10.77.0.40")
    assert not cut["ok"] and cut["errors"][0] == "the dump (mariadb-dump) exited with 2: mariadb-dump: Got error: 1044"
    no_report = result_of_test(entry, _outcome(producer_rc=2, consumer_rc=143, stdout=""), "10.77.0.40")
    assert no_report["error_count"] == 1 and no_report["scratch"] is None and no_report["dropped"] is None
    undropped = result_of_test(entry, _outcome(dict(REPORT, dropped=False, drop_error="gone")), "10.77.0.40")
    assert undropped["drop_error"] == "gone"
    with pytest.raises(TransferError, match="Testing mariadb database alice_app on 10.77.0.40 failed: the test "
                                            "import on 10.77.0.40 exited with 1 without a report: .*refused"):
        result_of_test(entry, _outcome(consumer_rc=1, stdout="", stderr="hosting-migration transfer t1: refused: x",
                                       broke=True), "10.77.0.40")
    with pytest.raises(TransferError, match="exited with 255 \\(ssh failed"):
        result_of_test(entry, _outcome(consumer_rc=255, stdout=""), "10.77.0.40")


def test_database_test_with_fake_tools(tmp_path):
    key_root = tmp_path / "keys"
    (key_root / "t1").mkdir(parents=True)
    (key_root / "t1" / "id_ed25519").write_text("key")
    (key_root / "t1" / "known_hosts").write_text("10.77.0.40 ssh-ed25519 AAAA")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    report = json.dumps(REPORT)
    tools = {
        "mysqldump": "#!/bin/sh\necho \"-- dump of $*\"\n",
        "runuser": "#!/bin/sh\necho \"-- pg $*\"\n",
        "pg_dump": "#!/bin/sh\nexit 0\n",
        "ssh": "#!/bin/sh\nfor last; do :; done\ncase \"$last\" in *bob*) echo \"refused: $last\" >&2; exit 1;; esac\n"
               "cat > \"$OUT_DIR/$(echo \"$last\" | tr ' ' _)\"\necho '%s'\n" % report,
    }
    for name, text in tools.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = dict(command_environment(), PATH="%s:/usr/bin:/bin" % bin_dir, OUT_DIR=str(tmp_path))

    def which(name):
        return shutil.which(name, path=str(bin_dir))

    params = dict(transfer_id="t1", peer="10.77.0.40",
                  databases=[{"engine": "mariadb", "name": "alice_app", "account": "alice"},
                             {"engine": "postgresql", "name": "alice_app", "account": "alice"}])
    preview = run_database_test(params, check_mode=True, key_root=str(key_root), which=which, env=env)
    assert not preview["changed"] and [d["bytes"] for d in preview["databases"]] == [None, None]
    assert list(tmp_path.glob("hosting-restore-test*")) == []
    result = run_database_test(params, key_root=str(key_root), which=which, env=env)
    assert not result["changed"] and result["tested"] == 2 and result["with_errors"] == 0 and result["ok"]
    assert result["with_warnings"] == 2 and [d["account"] for d in result["databases"]] == ["alice", "alice"]
    pg_dump = (tmp_path / "hosting-restore-test_postgresql_alice_app").read_text()
    assert pg_dump.startswith("-- pg -u postgres -- pg_dump --no-owner --no-privileges")
    assert (tmp_path / "hosting-restore-test_mariadb_alice_app").read_text().startswith("-- dump of --single-transaction")
    with pytest.raises(TransferError) as failure:
        run_database_test(dict(params, databases=[{"engine": "mariadb", "name": "alice_app"},
                                                  {"engine": "mariadb", "name": "bob_app"}]),
                          key_root=str(key_root), which=which, env=env)
    assert "Testing mariadb database bob_app on 10.77.0.40 failed" in str(failure.value)
    assert [d["name"] for d in failure.value.details["databases"]] == ["alice_app"]
    with pytest.raises(TransferInputError, match="transfer_key"):
        run_database_test(dict(params, transfer_id="t2"), key_root=str(key_root), which=which, env=env)
    with pytest.raises(TransferInputError, match="pg_dump"):
        run_database_test(params, key_root=str(key_root), which=lambda name: name == "mysqldump" or None, env=env)


# ---------------------------------------------------------------------------------------------
# Real database servers

PG_DSN = os.environ.get("HOSTING_TEST_PG_DSN")


@pytest.mark.skipif(not PG_DSN or not shutil.which("psql"),
                    reason="HOSTING_TEST_PG_DSN is not set (tests/run.sh unit sets it): no PostgreSQL server")
def test_restore_test_against_a_real_postgresql(tmp_path):
    dsn = urllib.parse.urlparse(PG_DSN)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # runuser -u postgres -- psql ARGS, as the endpoint runs it, pointed at the test cluster.
    (bin_dir / "runuser").write_text("#!/bin/sh\n[ \"$1 $2 $3 $4\" = '-u postgres -- psql' ] || exit 9\nshift 4\n"
                                     "exec %s -h %s -p %d -U %s \"$@\"\n"
                                     % (shutil.which("psql"), dsn.hostname, dsn.port, dsn.username))
    (bin_dir / "runuser").chmod(0o755)
    config_dir = tmp_path / "transfers"
    config_dir.mkdir()
    sql = textwrap.dedent("""\
        SET client_min_messages = warning;
        CREATE TABLE t (a smallint, b varchar(3));
        INSERT INTO t VALUES (1, 'abc');
        INSERT INTO t VALUES (100000, 'abcdef');
        ALTER TABLE t OWNER TO role_that_does_not_exist;
        DO $$ BEGIN RAISE WARNING 'deprecated thing'; END $$;
        CREATE TABLE t (a int);
        """)
    with _dump(tmp_path, sql) as dump:
        report = endpoint.restore_test("postgresql", "alice_app", str(config_dir), str(bin_dir), stdin=dump)
    assert report["dropped"] and report["restore_rc"] == 0 and endpoint.SCRATCH_RE.fullmatch(report["scratch"])
    assert report["error_count"] == 3 and report["warning_count"] == 1, report
    assert report["errors"][0] == "psql:<stdin>:4: ERROR: smallint out of range"
    assert 'role "role_that_does_not_exist" does not exist' in report["errors"][1]
    assert report["warnings"] == ["psql:<stdin>:6: WARNING: deprecated thing"]
    listing = subprocess.run([str(bin_dir / "runuser"), "-u", "postgres", "--", "psql", "-XAtc",
                              "SELECT datname FROM pg_database", "-d", "postgres"],
                             stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout.split()
    assert report["scratch"] not in listing and not any(name.startswith("hmtest_") for name in listing)


MARIADB_INSTALL_DB, MARIADBD = shutil.which("mariadb-install-db"), shutil.which("mariadbd") or "/usr/sbin/mariadbd"


@pytest.fixture(scope="module")
def mariadb_server(tmp_path_factory):
    """A throwaway MariaDB server on a socket of its own (no network); a bin dir whose mariadb uses it."""
    if not (MARIADB_INSTALL_DB and os.path.exists(MARIADBD) and shutil.which("mariadb")):
        pytest.skip("the MariaDB server is not installed here (apt-get install mariadb-server)")
    if os.geteuid() != 0:
        pytest.skip("the throwaway MariaDB server runs as root here")
    base = tmp_path_factory.mktemp("mariadb")
    socket_path, log = base / "sock", base / "server.log"
    subprocess.run([MARIADB_INSTALL_DB, "--no-defaults", "--datadir=%s" % (base / "data"), "--user=root",
                    "--auth-root-authentication-method=socket", "--skip-test-db"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, check=True)
    process = subprocess.Popen([MARIADBD, "--no-defaults", "--datadir=%s" % (base / "data"), "--socket=%s" % socket_path,
                                "--skip-networking", "--user=root", "--pid-file=%s" % (base / "pid"),
                                "--log-error=%s" % log], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not socket_path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("mariadbd did not start: %s" % (log.read_text() if log.exists() else "no log"))
        time.sleep(0.05)
    bin_dir = base / "bin"
    bin_dir.mkdir()
    (bin_dir / "mariadb").write_text("#!/bin/sh\n[ \"$1\" = --no-defaults ] && exec %s \"$@\"\nexec %s --socket=%s \"$@\"\n"
                                     % (shutil.which("mariadb"), shutil.which("mariadb"), socket_path))
    (bin_dir / "mariadb").chmod(0o755)
    yield bin_dir
    process.terminate()
    process.wait(timeout=60)


def test_restore_test_against_a_real_mariadb(tmp_path, mariadb_server):
    config_dir = tmp_path / "transfers"
    config_dir.mkdir()
    sql = textwrap.dedent("""\
        CREATE TABLE t (a tinyint, b varchar(3));
        INSERT INTO t VALUES (1, 'abc');
        INSERT INTO t VALUES (1000, 'abcdef');
        SET SESSION sql_mode = '';
        INSERT INTO t VALUES (1000, 'abcdef');
        CREATE TABLE t (a int);
        """)
    with _dump(tmp_path, sql) as dump:
        report = endpoint.restore_test("mariadb", "alice_app", str(config_dir), str(mariadb_server), stdin=dump)
    assert report["dropped"] and endpoint.SCRATCH_RE.fullmatch(report["scratch"])
    assert report["error_count"] == 2 and report["warning_count"] == 2, report
    assert report["errors"][0] == "ERROR 1264 (22003) at line 3: Out of range value for column 'a' at row 1"
    assert report["errors"][1] == "ERROR 1050 (42S01) at line 6: Table 't' already exists"
    assert report["warnings"] == ["Warning (Code 1264): Out of range value for column 'a' at row 1",
                                  "Warning (Code 1265): Data truncated for column 'b' at row 1"]
    listing = subprocess.run([str(mariadb_server / "mariadb"), "--batch", "--skip-column-names", "-e", "SHOW DATABASES"],
                             stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout.split()
    assert not any(name.startswith("hmtest_") for name in listing)
