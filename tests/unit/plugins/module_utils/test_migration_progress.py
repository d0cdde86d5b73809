"""Where a required migration stands, read from the ledger."""
import pytest

from ansible_collections.hosting.migration.plugins.module_utils.ledger import Ledger
from ansible_collections.hosting.migration.plugins.module_utils.migration_progress import (
    PHASES, plan_text, progress)

TERMS = {"free_days": 7, "price_monthly": "49.00", "currency": "EUR", "time_zone": "UTC"}
PATH = ("precopied", "frozen", "synced", "verified", "switched", "done")


@pytest.fixture
def ledger(tmp_path):
    with Ledger.open(str(tmp_path / "ledger.sqlite3")) as opened:
        yield opened


def done(ledger, server="dedicated1"):
    phases, transit = progress(ledger, server, "2025")
    return [phase["phase"] for phase in phases if phase["done"]], phases, transit


def move(ledger, account, source, target, direction):
    started = ledger.start_move(account, source, target, direction)
    for step in PATH:
        ledger.set_step(started.id, step)


def test_a_server_never_seen_has_everything_to_do(ledger):
    finished, phases, transit = done(ledger)
    assert (finished, transit, len(phases)) == ([], None, len(PHASES))


def test_each_phase_is_seen_done_as_the_migration_goes(ledger):
    ledger.register_server("dedicated1", "2023")
    for name in ("alice", "bob"):
        ledger.register_account(name, "dedicated1")
    ledger.register_address("10.77.0.21", "dedicated1")
    assert done(ledger)[0] == []

    ledger.lease_transit("dedicated1", ["transit1"], TERMS)
    ledger.record_event("dns_changed", server="dedicated1", details={"purpose": "ttl lowered ahead", "changes": []})
    move(ledger, "alice", "dedicated1", "transit1", "out")
    finished, phases, transit = done(ledger)
    assert (finished, transit) == (["lease", "dns_ahead"], "transit1")
    assert [p["left"] for p in phases if p["phase"] == "move_out"] == [["bob"]]
    assert " 3. to do  move every account to the transit server: bob" in plan_text("dedicated1", phases, transit)

    move(ledger, "bob", "dedicated1", "transit1", "out")
    ledger.route_address("10.77.0.21", "transit1", 0.3)
    ledger.register_server("dedicated1", "2025")
    ledger.record_event("server.reinstalled", server="dedicated1", details={})
    assert done(ledger)[0] == ["lease", "dns_ahead", "move_out", "reroute_out", "reinstall"]

    for name in ("alice", "bob"):
        move(ledger, name, "transit1", "dedicated1", "back")
    ledger.route_address("10.77.0.21", "dedicated1", 0.2)
    ledger.record_event("dns_restored", server="dedicated1", details={})
    assert done(ledger)[0] == [phase for phase, _title in PHASES if phase != "release"]

    ledger.release_transit("transit1", lambda lease, at: "0.00")
    finished, phases, transit = done(ledger)
    assert finished == [phase for phase, _title in PHASES]
    assert plan_text("dedicated1", phases, transit).endswith("9 of 9 phases done; next: nothing, it is complete")


def test_a_version_reached_without_a_recorded_reinstall_is_not_a_reinstall(ledger):
    ledger.register_server("dedicated1", "2025")
    assert "reinstall" not in done(ledger)[0]
