"""The state store: schema and its migrations, the step machine of a move, copies and the guard
against losing the only verified copy, locks and races between controllers.

Every test that opens a ledger runs on SQLite and on PostgreSQL; the PostgreSQL variant needs a
server: set HOSTING_TEST_PG_DSN (postgresql://... or host=... dbname=...) to a database the
user may create schemas in. Each test gets its own schema, dropped afterwards.
"""
import os
import threading
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.hosting.migration.plugins.module_utils.ledger import (
    MIGRATIONS, NEXT_STEPS, STEPS, AccountConflict, IllegalTransition, InvalidRequest, Ledger,
    LedgerError, LedgerUnavailable, LockHeld, LockNotHeld, MoveConflict, MoveRefused, NotLeased, OnlyVerifiedCopy,
    ReinstallRefused,
    SchemaTooNew, UnknownAccount, UnknownMove)
from ansible_collections.hosting.migration.plugins.module_utils import ledger_locks
from ansible_collections.hosting.migration.plugins.module_utils.ledger_backend import (
    DEFAULT_SQLITE_PATH, ENV_LOCATION, describe_location, resolve_location)
from ansible_collections.hosting.migration.plugins.module_utils.ledger_schema import (
    SchemaStep, check_migrations)

START = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
FORWARD = ("precopied", "frozen", "synced", "verified", "switched", "done")
# The steps a fresh move goes through to reach each step.
PATH = dict({step: FORWARD[:index + 1] for index, step in enumerate(FORWARD)},
            planned=(), rolled_back=("rolled_back",), failed=("failed",))
NOTES = SchemaStep(len(MIGRATIONS) + 1, "notes on servers (an example of a later step)", (
    """CREATE TABLE notes (
        id {serial_primary_key},
        server TEXT NOT NULL REFERENCES servers (name),
        written_at TEXT NOT NULL,
        text TEXT NOT NULL
    )""",
))
LATEST = len(MIGRATIONS)


class FakeClock:
    def __init__(self):
        self.now = START

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def ledger(location, clock):
    with Ledger.open(location, clock=clock) as opened:
        yield opened


def new_account(ledger, name="alice", home="dedicated1"):
    ledger.register_server(home, "2023")
    ledger.register_server("transit1", "2025")
    return ledger.register_account(name, home)


def go(ledger, move, steps):
    for step in steps:
        move = ledger.set_step(move.id, step, error="rsync failed" if step == "failed" else None)
    return move


def move_at(ledger, step, account="alice"):
    """A move out of ``account`` (registered here) that has reached ``step``."""
    new_account(ledger, account)
    move = ledger.start_move(account, "dedicated1", "transit1", "out")
    return go(ledger, move, PATH[step])


def run_at_once(count, work, location=None):
    """Run ``work`` in ``count`` threads released together; its results or errors, by thread.

    With ``location``, each thread opens its own ledger there first (a controller of its own)
    and calls ``work(ledger, index)`` once all are open; otherwise ``work(index)``.
    """
    barrier = threading.Barrier(count)
    results = [None] * count

    def run(index):
        try:
            if location is None:
                barrier.wait()
                results[index] = work(index)
                return
            with Ledger.open(location) as ledger:
                barrier.wait()
                results[index] = work(ledger, index)
        except Exception as exc:  # collected and asserted by the test
            results[index] = exc

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


# Locations

def test_locations_resolve_to_sqlite_paths_or_postgres_dsns(monkeypatch):
    monkeypatch.delenv(ENV_LOCATION, raising=False)
    assert resolve_location() == ("sqlite", os.path.expanduser(DEFAULT_SQLITE_PATH))
    assert resolve_location("sqlite:///var/lib/ledger.db") == ("sqlite", "/var/lib/ledger.db")
    assert resolve_location("/srv/x/../ledger.db") == ("sqlite", "/srv/ledger.db")
    assert resolve_location("postgresql://u@db/ledger") == ("postgresql", "postgresql://u@db/ledger")
    assert resolve_location("host=db dbname=ledger")[0] == "postgresql"
    monkeypatch.setenv(ENV_LOCATION, "postgres://u@db/x")
    assert resolve_location() == ("postgresql", "postgres://u@db/x")


@pytest.mark.parametrize("location, fragment", [
    ("ledger.db", "not absolute"),
    ("sqlite://relative/ledger.db", "not absolute"),
    ("mysql://u:secret@db/x", "unknown ledger location"),
])
def test_bad_locations_are_refused_without_showing_passwords(location, fragment):
    with pytest.raises(LedgerUnavailable, match=fragment) as caught:
        resolve_location(location)
    assert "secret" not in str(caught.value)


def test_passwords_are_hidden_in_descriptions():
    assert describe_location("postgresql://u:secret@db/x") == "postgresql://u:***@db/x"
    assert "secret" not in describe_location("host=db password='sec ret' dbname=x")
    assert "secret" not in describe_location("host=db password=secret dbname=x")


def test_without_a_location_the_environment_then_the_default_file_is_used(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(ENV_LOCATION, raising=False)
    with Ledger.open() as ledger:
        assert ledger.location == "sqlite://%s/.local/state/hosting-migration/ledger.sqlite3" % tmp_path
    monkeypatch.setenv(ENV_LOCATION, str(tmp_path / "other.sqlite3"))
    with Ledger.open() as ledger:
        assert ledger.location.endswith("/other.sqlite3")


def test_an_unreachable_postgres_is_a_clear_error():
    with pytest.raises(LedgerUnavailable, match="cannot connect to the PostgreSQL ledger") as caught:
        Ledger.open("postgresql://u:secret@127.0.0.1:1/x?connect_timeout=2")
    assert "secret" not in str(caught.value)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    path.write_text("not a database " * 100)
    with pytest.raises(LedgerUnavailable, match="cannot be used"):
        Ledger.open(str(path))


# Schema and migrations

def test_a_new_ledger_has_every_table_at_the_latest_version(ledger):
    assert ledger.schema_version == MIGRATIONS[-1].version
    assert set(ledger.table_names()) >= {
        "schema_version", "servers", "server_phases", "accounts", "copies", "moves", "events",
        "locks"}


def test_reopening_changes_nothing(location, clock):
    with Ledger.open(location, clock=clock) as ledger:
        new_account(ledger)
        tables = ledger.table_names()
        versions = ledger._db.rows("SELECT * FROM schema_version")
    clock.advance(60)
    with Ledger.open(location, clock=clock) as ledger:
        assert ledger.table_names() == tables
        assert ledger._db.rows("SELECT * FROM schema_version") == versions
        assert ledger.live_server("alice") == "dedicated1"


def test_an_older_schema_is_migrated_keeping_its_data(location, clock):
    with Ledger.open(location, clock=clock) as ledger:
        new_account(ledger)
    with Ledger.open(location, clock=clock, migrations=MIGRATIONS + (NOTES,)) as ledger:
        assert ledger.schema_version == LATEST + 1
        assert "notes" in ledger.table_names()
        assert ledger.live_server("alice") == "dedicated1"
        ledger._db.write(lambda: ledger._db.run(
            "INSERT INTO notes (server, written_at, text) VALUES (?, ?, ?)",
            ("dedicated1", "2025-03-01T12:00:00.000000Z", "customer asked for Tuesday")))
        versions = [row["version"] for row in ledger._db.rows(
            "SELECT version FROM schema_version ORDER BY version")]
        assert versions == list(range(1, LATEST + 2))


def test_a_schema_newer_than_the_code_is_refused(location):
    Ledger.open(location, migrations=MIGRATIONS + (NOTES,)).close()
    with pytest.raises(SchemaTooNew, match="schema version %d, newer .* knows \\(%d\\); upgrade" % (LATEST + 1, LATEST)):
        Ledger.open(location)


def test_a_failing_step_leaves_the_schema_as_it_was(location):
    Ledger.open(location).close()
    broken = SchemaStep(LATEST + 1, "broken", ("CREATE TABLE half (id BIGINT)", "CREATE TABLE oops ("))
    with pytest.raises(Exception):
        Ledger.open(location, migrations=MIGRATIONS + (broken,))
    with Ledger.open(location) as ledger:
        assert ledger.schema_version == LATEST
        assert "half" not in ledger.table_names()


def test_schema_steps_must_count_up_from_one():
    with pytest.raises(ValueError, match="numbered 1, 2, 3"):
        check_migrations(MIGRATIONS + (SchemaStep(LATEST + 2, "gap", ()),))


def test_two_controllers_creating_the_ledger_at_once_migrate_it_once(location):
    def open_and_close(index):
        with Ledger.open(location, migrations=MIGRATIONS + (NOTES,)) as ledger:
            return ledger.schema_version

    assert run_at_once(4, open_and_close) == [LATEST + 1] * 4
    with Ledger.open(location, migrations=MIGRATIONS + (NOTES,)) as ledger:
        assert len(ledger._db.rows("SELECT * FROM schema_version")) == LATEST + 1


# Servers and accounts

def test_server_phases_are_recorded_with_their_history(ledger, clock):
    ledger.register_server("dedicated1", "2023")
    ledger.set_phase("dedicated1", "preparing")
    clock.advance(10)
    ledger.set_phase("dedicated1", "migrating")
    clock.advance(10)
    server = ledger.set_phase("dedicated1", "migrating")
    assert (server.phase, server.phase_since, server.infra_version) == (
        "migrating", "2025-03-01T12:00:10.000000Z", "2023")
    history = [(change.previous_phase, change.phase, change.at)
               for change in ledger.phase_history("dedicated1")]
    assert history == [(None, "preparing", "2025-03-01T12:00:00.000000Z"),
                       ("preparing", "migrating", "2025-03-01T12:00:10.000000Z")]
    assert ledger.register_server("dedicated1", "2025").infra_version == "2025"


def test_an_account_is_registered_with_its_live_copy_verified(ledger):
    account = new_account(ledger)
    assert (account.home_server, account.live_server) == ("dedicated1", "dedicated1")
    assert [(copy.server, copy.state) for copy in ledger.copies("alice")] == [("dedicated1", "verified")]
    assert ledger.register_account("alice", "dedicated1") == account
    with pytest.raises(AccountConflict, match="recorded with home dedicated1"):
        ledger.register_account("alice", "dedicated2")
    assert [a.name for a in ledger.accounts_of("dedicated1")] == ["alice"]
    with pytest.raises(UnknownAccount, match="no account 'bob'; register it first"):
        ledger.live_server("bob")


def test_the_live_copy_cannot_be_recorded_as_anything_but_verified(ledger):
    new_account(ledger)
    with pytest.raises(MoveRefused, match="served from dedicated1: that copy is the live data"):
        ledger.set_copy("alice", "dedicated1", "stale")
    with pytest.raises(InvalidRequest, match="with state 'verified'"):
        ledger.set_copy("alice", "transit1", "stale", digest="abc")
    copy = ledger.set_copy("alice", "transit1", "verified", digest="abc", verification={"ok": True})
    assert (copy.state, copy.digest, copy.verification) == ("verified", "abc", {"ok": True})


# The step machine

@pytest.mark.parametrize("current", STEPS)
def test_every_transition_rule(ledger, current):
    move = move_at(ledger, current)
    for step in STEPS:
        if step != current and step not in NEXT_STEPS[current]:
            with pytest.raises(IllegalTransition) as caught:
                ledger.set_step(move.id, step, error="x")
            message = str(caught.value)
            assert "move %d (account alice" % move.id in message
            assert "at step %r and cannot go to %r" % (current, step) in message
    assert ledger.move(move.id).step == current
    for index, step in enumerate(NEXT_STEPS[current]):
        other = move_at(ledger, current, account="acct%d" % index)
        assert go(ledger, other, [step]).step == step


def test_a_finished_move_says_to_start_a_new_one(ledger):
    move = move_at(ledger, "failed")
    with pytest.raises(IllegalTransition, match="finished; start a new move"):
        ledger.set_step(move.id, "precopied")


def test_unknown_steps_and_moves_are_clear_errors(ledger):
    move = move_at(ledger, "planned")
    with pytest.raises(InvalidRequest, match="unknown move step 'copied'; the steps are: planned"):
        ledger.set_step(move.id, "copied")
    with pytest.raises(UnknownMove, match="no move 999"):
        ledger.set_step(999, "precopied")
    with pytest.raises(InvalidRequest, match="needs the error text"):
        ledger.set_step(move.id, "failed")
    with pytest.raises(InvalidRequest, match="whole number of bytes"):
        ledger.set_step(move.id, "precopied", files_bytes=-1)
    with pytest.raises(InvalidRequest, match="digest is recorded with step 'verified'"):
        ledger.set_step(move.id, "precopied", digest="abc")
    assert ledger.move(move.id).step == "planned"


@pytest.mark.parametrize("current", STEPS)
def test_requesting_the_current_step_again_changes_nothing(ledger, clock, current):
    move = move_at(ledger, current)
    events = len(ledger.events())
    clock.advance(30)
    again = ledger.set_step(move.id, current, files_bytes=5, error="x")
    assert again == move
    assert len(ledger.events()) == events


def test_an_unfinished_move_is_resumed(ledger):
    move = move_at(ledger, "frozen")
    again = ledger.start_move("alice", "dedicated1", "transit1", "out")
    assert (again.id, again.step) == (move.id, "frozen")
    assert [m.id for m in ledger.unfinished_moves()] == [move.id]
    assert [m.id for m in ledger.unfinished_moves("transit1")] == [move.id]
    assert ledger.unfinished_moves("transit2") == []


def test_a_conflicting_move_is_refused(ledger):
    move = move_at(ledger, "precopied")
    with pytest.raises(MoveConflict, match="unfinished move %d .* at step 'precopied'" % move.id):
        ledger.start_move("alice", "dedicated1", "transit2", "out")
    go(ledger, move, ["rolled_back"])
    assert ledger.start_move("alice", "dedicated1", "transit2", "out").id != move.id


def test_a_move_starts_where_the_account_is_live(ledger):
    new_account(ledger)
    with pytest.raises(MoveRefused, match="served from dedicated1, not from transit1"):
        ledger.start_move("alice", "transit1", "dedicated1", "back")
    with pytest.raises(InvalidRequest, match="'out' .* or 'back', not 'sideways'"):
        ledger.start_move("alice", "dedicated1", "transit1", "sideways")
    with pytest.raises(InvalidRequest, match="to itself"):
        ledger.start_move("alice", "dedicated1", "dedicated1", "out")
    go(ledger, ledger.start_move("alice", "dedicated1", "transit1", "out"), FORWARD)
    with pytest.raises(MoveRefused, match="belongs on dedicated1: a move back goes there"):
        ledger.start_move("alice", "transit1", "transit2", "back")


def test_a_failed_move_leaves_the_account_on_the_source(ledger):
    move = move_at(ledger, "verified")
    failed = ledger.set_step(move.id, "failed", error="manifest differs", verification={"diff": 1})
    assert (failed.error, failed.verification, failed.finished) == ("manifest differs", {"diff": 1}, True)
    assert ledger.live_server("alice") == "dedicated1"
    states = {copy.server: copy.state for copy in ledger.copies("alice")}
    assert states == {"dedicated1": "verified", "transit1": "stale"}


def test_the_round_trip_records_copies_bytes_and_verification(ledger):
    new_account(ledger)
    out = ledger.start_move("alice", "dedicated1", "transit1", "out")
    assert ledger.set_step(out.id, "precopied", files_bytes=1000).files_bytes == 1000
    ledger.set_step(out.id, "frozen")
    ledger.set_step(out.id, "synced", files_bytes=20, databases_bytes=300)
    ledger.set_step(out.id, "verified", digest="d1", verification={"files": "equal"})
    out = go(ledger, out, ["switched", "done"])
    assert (out.files_bytes, out.databases_bytes, out.verification) == (1020, 300, {"files": "equal"})
    assert ledger.live_server("alice") == "transit1"
    copies = {copy.server: (copy.state, copy.digest) for copy in ledger.copies("alice")}
    assert copies == {"dedicated1": ("stale", "d1"), "transit1": ("verified", "d1")}
    assert ledger.record_wiped("dedicated1") == ["alice"]
    back = go(ledger, ledger.start_move("alice", "transit1", "dedicated1", "back"), FORWARD)
    assert (back.direction, ledger.live_server("alice")) == ("back", "dedicated1")
    assert ledger.record_wiped("transit1") == ["alice"]
    kinds = [event.kind for event in ledger.events(account="alice")]
    assert kinds.count("move.step") == 12 and kinds.count("move.started") == 2


def test_a_rollback_after_the_switch_goes_back_to_the_source_copy(ledger):
    move = move_at(ledger, "done")
    rolled = ledger.set_step(move.id, "rolled_back")
    assert rolled.step == "rolled_back"
    assert ledger.live_server("alice") == "dedicated1"
    states = {copy.server: copy.state for copy in ledger.copies("alice")}
    assert states == {"dedicated1": "verified", "transit1": "stale"}


def test_a_rollback_needs_the_source_copy_and_the_latest_move(ledger):
    move = move_at(ledger, "done")
    ledger.record_wiped("dedicated1")
    with pytest.raises(MoveRefused, match="copy on dedicated1 was removed"):
        ledger.set_step(move.id, "rolled_back")
    back = ledger.start_move("alice", "transit1", "dedicated1", "back")
    with pytest.raises(MoveRefused, match="move %d of the account came after it" % back.id):
        ledger.set_step(move.id, "rolled_back")


def test_the_switch_needs_a_verified_target_copy(ledger):
    move = move_at(ledger, "verified")
    ledger.set_copy("alice", "transit1", "stale")
    with pytest.raises(MoveRefused, match="copy on transit1 is stale, not verified"):
        ledger.set_step(move.id, "switched")


def test_the_freeze_window_is_measured_with_the_clock(ledger, clock):
    move = move_at(ledger, "precopied")
    clock.advance(100)
    move = ledger.set_step(move.id, "frozen")
    clock.advance(1.5)
    ledger.set_step(move.id, "synced")
    clock.advance(2)
    assert ledger.set_step(move.id, "verified").freeze_window_s is None
    clock.advance(0.25)
    move = ledger.set_step(move.id, "switched")
    assert move.freeze_window_s == 3.75
    assert (move.freeze_started_at, move.freeze_ended_at) == (
        "2025-03-01T12:01:40.000000Z", "2025-03-01T12:01:43.750000Z")
    assert move.step_times["planned"] == "2025-03-01T12:00:00.000000Z"
    assert move.to_dict()["freeze_window_s"] == 3.75
    clock.advance(60)
    assert ledger.set_step(move.id, "done").freeze_window_s == 3.75


def test_a_rollback_during_the_freeze_ends_it(ledger, clock):
    move = move_at(ledger, "frozen")
    clock.advance(4)
    assert ledger.set_step(move.id, "rolled_back").freeze_window_s == 4


# The guard: only verified copy

def test_a_server_with_the_only_verified_copy_is_listed(ledger):
    new_account(ledger, "alice")
    new_account(ledger, "bob")
    assert ledger.only_verified_copy_on("dedicated1") == ["alice", "bob"]
    assert ledger.only_verified_copy_on("transit1") == []


def test_a_copy_being_copied_does_not_count(ledger):
    move_at(ledger, "synced")
    assert ledger.only_verified_copy_on("dedicated1") == ["alice"]


def test_a_copy_verified_on_both_servers_is_not_the_only_one(ledger):
    move_at(ledger, "verified")
    assert ledger.only_verified_copy_on("dedicated1") == []
    assert ledger.only_verified_copy_on("transit1") == []


def test_a_copy_verified_only_on_transit_is_listed(ledger):
    move_at(ledger, "switched")
    assert ledger.only_verified_copy_on("transit1") == ["alice"]
    assert ledger.only_verified_copy_on("dedicated1") == []
    with pytest.raises(OnlyVerifiedCopy, match="transit1 cannot be wiped .* alice \\(only verified copy\\)") as caught:
        ledger.record_wiped("transit1")
    assert caught.value.accounts == ["alice"]


def test_a_removed_copy_is_not_verified(ledger):
    move_at(ledger, "verified")
    ledger.set_copy("alice", "transit1", "removed")
    assert ledger.only_verified_copy_on("dedicated1") == ["alice"]


def test_a_server_serving_an_account_cannot_be_wiped(ledger):
    move_at(ledger, "verified")
    with pytest.raises(OnlyVerifiedCopy, match="alice \\(served from it\\)"):
        ledger.check_wipe("dedicated1")
    assert {copy.state for copy in ledger.copies("alice")} == {"verified"}


# Locks

def test_a_held_lock_names_its_holder(ledger):
    lock = ledger.acquire("server:dedicated1", "awx job 42 on host x, pid 123", 60)
    assert (lock.acquired_at, lock.expires_at) == ("2025-03-01T12:00:00.000000Z",
                                                   "2025-03-01T12:01:00.000000Z")
    with pytest.raises(LockHeld, match="held by awx job 42 on host x, pid 123 until 2025-03-01T12:01") as caught:
        ledger.acquire("server:dedicated1", "cli pid 7", 60)
    assert caught.value.holder == "awx job 42 on host x, pid 123"


def test_an_expired_lock_is_taken_over_and_logged(ledger, clock):
    ledger.acquire("server:dedicated1", "run 1", 60)
    clock.advance(60)
    assert ledger.acquire("server:dedicated1", "run 2", 60).holder == "run 2"
    event = ledger.events(kind="lock.taken_over")[0]
    assert event.details["previous_holder"] == "run 1"
    with pytest.raises(LockNotHeld, match="held by run 2"):
        ledger.renew("server:dedicated1", "run 1", 60)


def test_a_lock_whose_holder_is_gone_is_taken_over_at_once(ledger):
    ledger.acquire("server:dedicated1", "run 1", 3600)
    with pytest.raises(LockHeld):
        ledger.acquire("server:dedicated1", "run 2", 60, gone=lambda holder: False)
    lock = ledger.acquire("server:dedicated1", "run 2", 60, gone=lambda holder: holder == "run 1")
    assert lock.holder == "run 2"
    event = ledger.events(kind="lock.taken_over")[0]
    assert (event.details["previous_holder"], event.details["reason"]) == ("run 1", "its process is gone")


def _fake_proc(tmp_path, pid, started):
    (tmp_path / str(pid)).mkdir()
    fields = ["S"] + ["0"] * 18 + [str(started)] + ["0"] * 10
    (tmp_path / str(pid) / "stat").write_text("%d (ansible playbook) %s\n" % (pid, " ".join(fields)))


def test_a_process_holder_names_the_controller_and_the_process(tmp_path):
    _fake_proc(tmp_path, 4242, 987654)
    holder = ledger_locks.process_holder("migrate_account alice", pid=4242, hostname="ctl", proc=str(tmp_path))
    assert holder == "migrate_account alice [controller ctl pid 4242 started 987654]"
    assert ledger_locks.holder_gone(holder, hostname="ctl", proc=str(tmp_path)) is False


def test_a_holder_is_gone_when_its_process_ended_or_is_another_one(tmp_path):
    gone = "run [controller ctl pid 4242 started 987654]"
    assert ledger_locks.holder_gone(gone, hostname="ctl", proc=str(tmp_path)) is True
    _fake_proc(tmp_path, 4242, 111)  # the number was given to a newer process
    assert ledger_locks.holder_gone(gone, hostname="ctl", proc=str(tmp_path)) is True


@pytest.mark.parametrize("holder", [
    "run [controller other pid 4242 started 987654]",  # another controller: only its expiry counts
    "awx job 42 on host x, pid 123",  # not made by process_holder
    "",
])
def test_other_holders_are_never_judged_gone(tmp_path, holder):
    assert ledger_locks.holder_gone(holder, hostname="ctl", proc=str(tmp_path)) is False


def test_this_process_is_not_gone():
    holder = ledger_locks.process_holder("me", pid=os.getpid())
    assert ledger_locks.holder_gone(holder) is False


def test_a_lock_is_renewed_and_released_by_its_holder_only(ledger, clock):
    ledger.acquire("l", "run 1", 60)
    clock.advance(50)
    assert ledger.renew("l", "run 1", 60).expires_at == "2025-03-01T12:01:50.000000Z"
    with pytest.raises(LockNotHeld, match="cannot release lock 'l' for run 2: it is held by run 1"):
        ledger.release("l", "run 2")
    assert ledger.release("l", "run 1") is True
    assert ledger.release("l", "run 1") is False
    assert ledger.lock_info("l") is None
    with pytest.raises(LockNotHeld, match="nobody holds it"):
        ledger.renew("l", "run 1", 60)
    assert ledger.acquire("l", "run 2", 60).holder == "run 2"


def test_holding_releases_the_lock_on_errors(ledger):
    with pytest.raises(RuntimeError):
        with ledger.holding("l", "run 1", 60):
            assert ledger.lock_info("l").holder == "run 1"
            raise RuntimeError("the step failed")
    assert ledger.lock_info("l") is None


@pytest.mark.parametrize("ttl", [0, -1, "60", True])
def test_a_lock_needs_a_positive_ttl(ledger, ttl):
    with pytest.raises(InvalidRequest, match="positive number of seconds"):
        ledger.acquire("l", "run 1", ttl)


def test_two_controllers_racing_for_a_lock_exactly_one_wins(location):
    Ledger.open(location).close()

    def take(ledger, index):
        return ledger.acquire("server:dedicated1", "controller %d" % index, 60)

    results = run_at_once(8, take, location)
    winners = [result for result in results if not isinstance(result, Exception)]
    assert len(winners) == 1, results
    assert all(isinstance(result, LockHeld) for result in results if result not in winners)
    with Ledger.open(location) as ledger:
        assert ledger.lock_info("server:dedicated1").holder == winners[0].holder


def test_two_controllers_starting_moves_at_once(location):
    with Ledger.open(location) as ledger:
        new_account(ledger)

    def start(ledger, index):
        return ledger.start_move("alice", "dedicated1", ("transit1", "transit2")[index % 2], "out")

    results = run_at_once(6, start, location)
    moves = [result for result in results if not isinstance(result, Exception)]
    assert len({move.id for move in moves}) == 1, results
    assert all(isinstance(result, MoveConflict) for result in results if result not in moves)


# Events and the clock

def test_events_are_filtered_by_time_and_account(ledger, clock):
    new_account(ledger)
    clock.advance(60)
    event = ledger.record_event("report.sent", server="dedicated1", details={"to": "ops"})
    assert (event.kind, event.at, event.details) == ("report.sent", "2025-03-01T12:01:00.000000Z",
                                                      {"to": "ops"})
    assert ledger.events(since=START + timedelta(seconds=30)) == [event]
    assert ledger.events(since="2025-03-01T12:01:00Z") == [event]
    assert "account.registered" in [e.kind for e in ledger.events(account="alice")]


def test_a_clock_without_a_time_zone_is_refused(location):
    with pytest.raises(InvalidRequest, match="timezone-aware"):
        Ledger.open(location, clock=lambda: datetime(2025, 1, 1))


# Leases of transit servers and the waiting list

TERMS = {"free_days": 7, "price_monthly": "49.00", "currency": "EUR", "time_zone": "UTC"}


def no_charge(lease, released_at):
    return "0.00"


def test_a_lease_goes_to_the_first_free_candidate_and_is_returned_again(ledger):
    lease, request, position = ledger.lease_transit("dedicated1", ["transit1", "transit3"], TERMS)
    assert (lease.transit, lease.customer_server, lease.state, request, position) == (
        "transit1", "dedicated1", "active", None, None)
    assert (lease.started_at, lease.free_days, lease.price_monthly) == ("2025-03-01T12:00:00.000000Z", 7, "49.00")
    again = ledger.lease_transit("dedicated1", ["transit1", "transit3"], TERMS)[0]
    assert again == lease
    assert len(ledger.leases()) == 1


def test_busy_servers_are_skipped_and_a_request_waits_when_none_is_free(ledger):
    ledger.lease_transit("dedicated1", ["transit1"], TERMS)
    lease, request, position = ledger.lease_transit("dedicated2", ["transit1", "transit3"], TERMS)
    assert lease.transit == "transit3"
    lease, request, position = ledger.lease_transit("dedicated3", ["transit1", "transit3"], TERMS)
    assert (lease, request.customer_server, request.state, request.candidates, position) == (
        None, "dedicated3", "waiting", ["transit1", "transit3"], 1)
    lease, request, position = ledger.lease_transit("dedicated4", ["transit1"], TERMS)
    assert (lease, position) == (None, 2)
    # Asking again keeps the place in line.
    assert ledger.lease_transit("dedicated3", ["transit1", "transit3"], TERMS)[2] == 1
    assert [r.customer_server for r in ledger.waiting_list()] == ["dedicated3", "dedicated4"]
    assert [e.kind for e in ledger.events(kind="lease.queued")] == ["lease.queued"] * 2


def test_without_queue_a_request_that_cannot_be_served_leaves_no_trace(ledger):
    ledger.lease_transit("dedicated1", ["transit1"], TERMS)
    assert ledger.lease_transit("dedicated2", ["transit1"], TERMS, queue=False) == (None, None, None)
    assert ledger.waiting_list() == []


def test_a_released_server_goes_to_the_head_of_the_line(ledger, clock):
    ledger.lease_transit("dedicated1", ["transit1"], TERMS)
    ledger.lease_transit("dedicated2", ["transit1"], TERMS)
    ledger.lease_transit("dedicated3", ["transit1"], dict(TERMS, free_days=3))
    clock.advance(3600)
    released, handed = ledger.release_transit("transit1", lambda lease, at: "12.34")
    assert (released.state, released.final_amount, released.released_at) == (
        "released", "12.34", "2025-03-01T13:00:00.000000Z")
    assert (handed.customer_server, handed.transit, handed.started_at) == (
        "dedicated2", "transit1", "2025-03-01T13:00:00.000000Z")
    # The head's next request finds its lease; the second in line is now first.
    assert ledger.lease_transit("dedicated2", ["transit1"], TERMS)[0] == handed
    assert [(r.customer_server, r.free_days) for r in ledger.waiting_list()] == [("dedicated3", 3)]
    assert ledger.lease_transit("dedicated3", ["transit1"], TERMS)[2] == 1


def test_a_newcomer_does_not_take_a_server_someone_earlier_waits_for(ledger):
    ledger.lease_transit("dedicated1", ["transit1"], TERMS)
    ledger.lease_transit("dedicated2", ["transit1", "transit3"], TERMS)  # gets transit3
    ledger.lease_transit("dedicated3", ["transit1", "transit3"], TERMS)  # waits, first in line
    ledger.release_transit("transit3", no_charge)  # handed to dedicated3 at once
    assert ledger.active_lease(customer="dedicated3").transit == "transit3"
    ledger.lease_transit("dedicated4", ["transit1"], TERMS)  # waits for transit1
    # transit5 is free but dedicated4 never asked for it; dedicated5 may take it, not transit1.
    lease, request, position = ledger.lease_transit("dedicated5", ["transit1", "transit5"], TERMS)
    assert lease.transit == "transit5"


def test_a_waiting_request_can_be_withdrawn(ledger):
    ledger.lease_transit("dedicated1", ["transit1"], TERMS)
    ledger.lease_transit("dedicated2", ["transit1"], TERMS)
    assert ledger.withdraw_lease_request("dedicated2") is True
    assert ledger.withdraw_lease_request("dedicated2") is False
    released, handed = ledger.release_transit("transit1", no_charge)
    assert handed is None
    assert ledger.active_lease(transit="transit1") is None


def test_releasing_a_server_never_leased_or_already_released_is_refused(ledger):
    with pytest.raises(NotLeased, match="transit9 was never leased"):
        ledger.release_transit("transit9", no_charge)
    ledger.lease_transit("dedicated1", ["transit1"], TERMS)
    ledger.release_transit("transit1", no_charge)
    with pytest.raises(NotLeased, match="transit1 holds no lease: lease 1 \\(for dedicated1\\) was released at"):
        ledger.release_transit("transit1", no_charge)


def test_a_release_is_refused_while_the_server_holds_the_only_verified_copy(ledger):
    ledger.lease_transit("dedicated1", ["transit1"], TERMS)
    move = move_at(ledger, "done")
    assert move.target == "transit1"
    with pytest.raises(OnlyVerifiedCopy, match="transit1 cannot be wiped .* alice"):
        ledger.release_transit("transit1", no_charge)
    assert ledger.active_lease(transit="transit1").state == "active"


@pytest.mark.parametrize("terms, message", [
    (dict(TERMS, free_days=-1), "free period"),
    (dict(TERMS, free_days="7"), "free period"),
    (dict(TERMS, price_monthly=49), "price_monthly"),
    (dict(TERMS, currency=""), "currency"),
])
def test_bad_lease_terms_change_nothing(ledger, terms, message):
    with pytest.raises(InvalidRequest, match=message):
        ledger.lease_transit("dedicated1", ["transit1"], terms)
    assert ledger.leases() == [] and ledger.waiting_list() == []


def test_the_schema_refuses_a_second_active_lease_of_a_server(ledger):
    ledger.lease_transit("dedicated1", ["transit1"], TERMS)
    with pytest.raises(Exception, match="unique|UNIQUE"):
        ledger._db.write(lambda: ledger._db.run(
            "INSERT INTO leases (transit, customer_server, state, started_at, free_days, price_monthly, "
            "currency, time_zone) VALUES ('transit1', 'dedicated2', 'active', 'x', 7, '1', 'EUR', 'UTC')"))
    assert len(ledger.leases()) == 1


def test_two_controllers_racing_for_the_last_free_server_exactly_one_wins(location):
    with Ledger.open(location) as setup:
        for name in ("dedicated1", "dedicated2", "transit1"):
            setup.register_server(name)

    def claim(ledger, index):
        return ledger.lease_transit("dedicated%d" % (index + 1), ["transit1"], TERMS)

    results = run_at_once(2, claim, location)
    assert not [r for r in results if isinstance(r, Exception)], results
    winners = [lease for lease, request, position in results if lease is not None]
    waiting = [request for lease, request, position in results if request is not None]
    assert len(winners) == 1 and len(waiting) == 1, results
    with Ledger.open(location) as ledger:
        assert [lease.customer_server for lease in ledger.leases()] == [winners[0].customer_server]
        assert [r.customer_server for r in ledger.waiting_list()] == [waiting[0].customer_server]


# Service addresses and the reinstall guard

def test_addresses_are_registered_once_and_rerouted_with_their_switch_time(ledger, clock):
    ledger.register_server("dedicated1", "2023")
    first = ledger.register_address("10.77.0.21", "dedicated1")
    assert (first.routed_to, first.rerouted) == ("dedicated1", False)
    assert ledger.register_address("10.77.0.21", "dedicated1") == first
    assert ledger.register_address("fd77:7:0::21", "dedicated1").address == "fd77:7::21"
    clock.advance(5)
    moved = ledger.route_address("10.77.0.21", "transit1", switch_s=0.412)
    assert (moved.routed_to, moved.switch_s, moved.rerouted, moved.changed_at) == (
        "transit1", "0.412", True, "2025-03-01T12:00:05.000000Z")
    assert ledger.route_address("10.77.0.21", "transit1") == moved  # again: nothing changes
    event = ledger.events(kind="address.rerouted")[0]
    assert event.details == {"address": "10.77.0.21", "from": "dedicated1", "to": "transit1", "switch_s": 0.412}
    assert [a.address for a in ledger.addresses_of("dedicated1")] == ["10.77.0.21", "fd77:7::21"]


@pytest.mark.parametrize("call, message", [
    (lambda l: l.register_address("10.77.0.300", "dedicated1"), "is not an IP address"),
    (lambda l: l.register_address("10.77.0.21", "dedicated2"), "belongs to dedicated1, not dedicated2"),
    (lambda l: l.route_address("10.77.0.99", "transit1"), "10.77.0.99 is not recorded"),
])
def test_bad_address_requests_are_refused(ledger, call, message):
    ledger.register_address("10.77.0.21", "dedicated1")
    with pytest.raises(LedgerError, match=message):
        call(ledger)


def test_a_reinstall_is_refused_until_everything_lives_elsewhere_and_the_addresses_moved(ledger):
    move = move_at(ledger, "verified")  # alice, dedicated1 -> transit1
    ledger.register_address("10.77.0.21", "dedicated1")
    with pytest.raises(ReinstallRefused) as refused:
        ledger.check_reinstall("dedicated1")
    assert refused.value.missing == [
        "account alice is still served from dedicated1",
        "address 10.77.0.21 is still routed to dedicated1",
    ]
    go(ledger, move, ["switched", "done"])
    with pytest.raises(ReinstallRefused, match="cannot be reinstalled yet: address 10.77.0.21 is still routed"):
        ledger.check_reinstall("dedicated1")
    ledger.route_address("10.77.0.21", "transit1")
    ledger.check_reinstall("dedicated1")


def test_a_reinstall_needs_recorded_addresses(ledger):
    new_account(ledger)
    with pytest.raises(ReinstallRefused, match="no service address of dedicated1 is recorded"):
        ledger.check_reinstall("dedicated1")
