"""A controller killed (SIGKILL) inside a lease claim or release leaves the ledger consistent: no
double lease, no lost lease, and the next controller's run finishes the work.

The controller is a child process that runs the ledger's own code. Its ``add_event`` is wrapped so
that, once the chosen event is recorded (the lease row written or closed, the transaction still
open), it reports what its transaction sees and sleeps until the test kills it with SIGKILL.

Every test runs on SQLite and on PostgreSQL; the PostgreSQL variant needs HOSTING_TEST_PG_DSN (see
test_ledger.py). Each test gets its own SQLite file or PostgreSQL schema.
"""
import json
import os
import pathlib
import selectors
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.hosting.migration.plugins.module_utils.ledger import Ledger, NotLeased

PG_DSN = os.environ.get("HOSTING_TEST_PG_DSN")
NO_PG = pytest.mark.skipif(not PG_DSN, reason="HOSTING_TEST_PG_DSN is not set: no PostgreSQL server to test against")

COLLECTIONS = pathlib.Path(__file__).resolve().parents[4] / ".collections"
START = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
RELEASE_AT = START + timedelta(days=9)
# Free until 03-08 12:00, billed 03-08, 03-09, 03-10: 3 x 49/31.
FINAL_AMOUNT = "4.74"
TERMS = {"free_days": 7, "price_monthly": "49.00", "currency": "EUR", "time_zone": "UTC"}
REPORT_WAIT_S = 60
# Bounds every lock wait of a follow-up controller, so that a lock left behind fails the test.
LOCK_WAIT_S = 10

CONTROLLER = r'''
import json
import sys
import time
from datetime import datetime

from ansible_collections.hosting.migration.plugins.module_utils import ledger_leases
from ansible_collections.hosting.migration.plugins.module_utils.ledger import Ledger, LedgerError
from ansible_collections.hosting.migration.plugins.module_utils.transit_lease import final_amount

order = json.loads(sys.argv[1])


def stopping_after(kind, record):
    """``record``, but once it recorded ``kind``: report what the open transaction sees, then sleep."""
    def add_event(db, now, event_kind, *args, **kwargs):
        event_id = record(db, now, event_kind, *args, **kwargs)
        if event_kind == kind:
            pid = db.row("SELECT pg_backend_pid() AS pid")["pid"] if db.dialect == "postgresql" else None
            leases = db.rows("SELECT id, transit, customer_server, state FROM leases ORDER BY id")
            print(json.dumps({"stopped_after": kind, "backend_pid": pid, "leases": leases}), flush=True)
            time.sleep(600)
        return event_id
    return add_event


if order["stop_after"]:
    ledger_leases.add_event = stopping_after(order["stop_after"], ledger_leases.add_event)
now = datetime.fromisoformat(order["now"])
try:
    with Ledger.open(order["location"], clock=lambda: now, timeout_s=order["timeout_s"]) as ledger:
        if order["action"] == "claim":
            lease, request, position = ledger.lease_transit(order["customer"], order["candidates"], TERMS)
            outcome = {"lease": lease and lease.to_dict(), "request": request and request.to_dict()}
        else:
            released, handed = ledger.release_transit(order["transit"], final_amount)
            outcome = {"released": released.to_dict(), "handed": handed and handed.to_dict()}
except LedgerError as error:
    outcome = {"error": type(error).__name__, "message": str(error)}
print(json.dumps(outcome), flush=True)
'''.replace("TERMS", json.dumps(TERMS))


class Controllers:
    """Controller processes working on one ledger; those still running at the end are killed."""

    def __init__(self, location):
        self.location = location
        self.started = []

    def start(self, action, stop_after=None, now=START, timeout_s=LOCK_WAIT_S, **request):
        order = dict(request, action=action, stop_after=stop_after, now=now.isoformat(),
                     timeout_s=timeout_s, location=self.location)
        child = subprocess.Popen([sys.executable, "-c", CONTROLLER, json.dumps(order)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=dict(os.environ, PYTHONPATH=str(COLLECTIONS)))
        self.started.append(child)
        return child

    def stopped(self, action, stop_after, **request):
        """A controller stopped inside its transaction, and what that transaction saw."""
        child = self.start(action, stop_after, **request)
        with selectors.DefaultSelector() as selector:
            selector.register(child.stdout, selectors.EVENT_READ)
            ready = selector.select(REPORT_WAIT_S)
        line = child.stdout.readline() if ready else ""
        if not line:
            child.kill()
            pytest.fail("the controller never reached %s (exit %s): %s" % (
                stop_after, child.wait(), child.stderr.read()))
        report = json.loads(line)
        assert report["stopped_after"] == stop_after
        return child, report

    def run(self, action, **request):
        """Run a controller to its end; its outcome."""
        child = self.start(action, **request)
        try:
            out, err = child.communicate(timeout=REPORT_WAIT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            pytest.fail("the controller did not finish within %d s: %s" % (REPORT_WAIT_S, child.communicate()[1]))
        assert child.returncode == 0, err
        return json.loads(out.splitlines()[-1])

    def close(self):
        for child in self.started:
            if child.poll() is None:
                child.kill()
            child.communicate()


@pytest.fixture
def controllers(location):
    started = Controllers(location)
    yield started
    started.close()


def kill_hard(child):
    os.kill(child.pid, signal.SIGKILL)
    child.communicate(timeout=10)
    assert child.returncode == -signal.SIGKILL


def open_ledger(location, now=START):
    return Ledger.open(location, clock=lambda: now, timeout_s=LOCK_WAIT_S)


def pg_session(pid):
    """The state of a PostgreSQL session and the tables it holds locks on; None when it is gone."""
    import psycopg
    with psycopg.connect(PG_DSN, autocommit=True) as admin:
        row = admin.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
        tables = admin.execute("SELECT DISTINCT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                               "WHERE l.pid = %s", (pid,)).fetchall()
    return None if row is None else (row[0], {name for (name,) in tables})


def wait_until_gone(pid, limit_s=LOCK_WAIT_S):
    deadline = time.monotonic() + limit_s
    while pg_session(pid) is not None:
        assert time.monotonic() < deadline, "PostgreSQL kept the killed session %d for %d s" % (pid, limit_s)
        time.sleep(0.1)


def test_a_controller_killed_inside_a_claim_leaves_no_lease(location, controllers):
    with open_ledger(location) as setup:
        setup.register_server("dedicated1")
        setup.register_server("transit1")
    child, report = controllers.stopped("claim", "lease.started", customer="dedicated1", candidates=["transit1"])
    assert [(row["transit"], row["customer_server"], row["state"]) for row in report["leases"]] == [
        ("transit1", "dedicated1", "active")]
    kill_hard(child)

    with open_ledger(location) as ledger:
        assert ledger.leases() == []
        assert ledger.active_lease(customer="dedicated1") is None
        assert ledger.active_lease(transit="transit1") is None
        assert ledger.waiting_list() == []
        assert ledger.events(kind="lease.started") == []

    outcome = controllers.run("claim", customer="dedicated1", candidates=["transit1"])
    assert (outcome["lease"]["transit"], outcome["lease"]["customer_server"], outcome["request"]) == (
        "transit1", "dedicated1", None)
    with open_ledger(location) as ledger:
        assert [lease.to_dict() for lease in ledger.leases()] == [outcome["lease"]]
        again = ledger.lease_transit("dedicated1", ["transit1"], TERMS)
        assert (again[0].to_dict(), again[1], again[2]) == (outcome["lease"], None, None)
        assert len(ledger.leases()) == 1
        assert len(ledger.events(kind="lease.started")) == 1


@pytest.mark.parametrize("stop_after, seen_inside", [
    ("lease.released", [("dedicated1", "released")]),
    ("lease.handed_over", [("dedicated1", "released"), ("dedicated2", "active")]),
])
def test_a_controller_killed_inside_a_release_loses_no_lease(location, controllers, stop_after, seen_inside):
    with open_ledger(location) as setup:
        leased = setup.lease_transit("dedicated1", ["transit1"], TERMS)[0]
        waiting = setup.lease_transit("dedicated2", ["transit1"], TERMS)[1]
    child, report = controllers.stopped("release", stop_after, transit="transit1", now=RELEASE_AT)
    assert [(row["customer_server"], row["state"]) for row in report["leases"]] == seen_inside
    kill_hard(child)

    with open_ledger(location, RELEASE_AT) as ledger:
        assert ledger.leases() == [leased]
        current = ledger.active_lease(transit="transit1")
        assert (current.id, current.released_at, current.final_amount, current.wiped_at) == (
            leased.id, None, None, None)
        assert ledger.active_lease(customer="dedicated2") is None
        assert ledger.waiting_list() == [waiting]
        assert ledger.events(kind="lease.released") == [] and ledger.events(kind="lease.handed_over") == []

    outcome = controllers.run("release", transit="transit1", now=RELEASE_AT)
    released, handed = outcome["released"], outcome["handed"]
    assert (released["id"], released["state"], released["final_amount"]) == (leased.id, "released", FINAL_AMOUNT)
    assert (handed["customer_server"], handed["transit"], handed["state"]) == ("dedicated2", "transit1", "active")
    with open_ledger(location, RELEASE_AT) as ledger:
        assert [lease.to_dict() for lease in ledger.leases()] == [released, handed]
        assert ledger.waiting_list() == []
        assert [event.details["lease"] for event in ledger.events(kind="lease.released")] == [leased.id]
        assert ledger.lease_transit("dedicated2", ["transit1"], TERMS)[0].to_dict() == handed
        assert ledger.active_lease(customer="dedicated1") is None


def test_a_controller_killed_after_a_release_without_waiting_requests_loses_no_lease(location, controllers):
    with open_ledger(location) as setup:
        leased = setup.lease_transit("dedicated1", ["transit1"], TERMS)[0]
    child, report = controllers.stopped("release", "lease.released", transit="transit1", now=RELEASE_AT)
    assert [row["state"] for row in report["leases"]] == ["released"]
    kill_hard(child)

    with open_ledger(location, RELEASE_AT) as ledger:
        assert ledger.leases() == [leased]
    outcome = controllers.run("release", transit="transit1", now=RELEASE_AT)
    assert (outcome["released"]["final_amount"], outcome["handed"]) == (FINAL_AMOUNT, None)
    again = controllers.run("release", transit="transit1", now=RELEASE_AT)
    assert again["error"] == NotLeased.__name__
    with open_ledger(location, RELEASE_AT) as ledger:
        assert [lease.to_dict() for lease in ledger.leases()] == [outcome["released"]]
        assert len(ledger.events(kind="lease.released")) == 1


@NO_PG
@pytest.mark.parametrize("location", ["postgresql"], indirect=True)
def test_postgres_frees_the_locks_of_a_killed_controller_for_the_next_claim(location, controllers):
    with open_ledger(location) as setup:
        for name in ("dedicated1", "dedicated2", "transit1"):
            setup.register_server(name)
    child, report = controllers.stopped("claim", "lease.started", customer="dedicated1", candidates=["transit1"])
    state, tables = pg_session(report["backend_pid"])
    assert state == "idle in transaction" and "leases" in tables
    blocked = controllers.run("claim", customer="dedicated2", candidates=["transit1"], timeout_s=1)
    assert blocked["error"] == "LedgerBusy", blocked

    kill_hard(child)
    started = time.monotonic()
    outcome = controllers.run("claim", customer="dedicated2", candidates=["transit1"])
    assert time.monotonic() - started < LOCK_WAIT_S
    assert (outcome["lease"]["customer_server"], outcome["lease"]["transit"]) == ("dedicated2", "transit1")
    wait_until_gone(report["backend_pid"])
    with open_ledger(location) as ledger:
        assert [lease.to_dict() for lease in ledger.leases()] == [outcome["lease"]]
        assert ledger.lease_transit("dedicated1", ["transit1"], TERMS)[1].customer_server == "dedicated1"
