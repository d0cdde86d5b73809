"""The operations the ledger action offers playbooks."""
import pytest

from ansible_collections.hosting.migration.plugins.module_utils.ledger import Ledger
from ansible_collections.hosting.migration.plugins.module_utils.ledger_operations import (
    LEDGER_ARGUMENT_SPEC, MissingArgument, run_operation)


def call(ledger, check_mode=False, **args):
    full = {name: spec.get("default") for name, spec in LEDGER_ARGUMENT_SPEC.items()}
    full.update(args)
    return run_operation(ledger, full, check_mode=check_mode)


@pytest.fixture
def ledger(tmp_path):
    with Ledger.open(str(tmp_path / "ledger.sqlite3")) as opened:
        call(opened, operation="register_server", server="dedicated1", infrastructure_version="2023")
        call(opened, operation="register_server", server="transit1", infrastructure_version="2025")
        call(opened, operation="register_account", account="alice", home_server="dedicated1")
        yield opened


def test_a_move_resumed_or_repeated_reports_no_change(ledger):
    started = call(ledger, operation="start_move", account="alice", source="dedicated1", target="transit1", direction="out")
    again = call(ledger, operation="start_move", account="alice", source="dedicated1", target="transit1", direction="out")
    assert started["changed"] and not again["changed"]
    assert again["move"]["id"] == started["move"]["id"]

    step = call(ledger, operation="set_step", move_id=started["move"]["id"], step="precopied", files_bytes=100)
    repeat = call(ledger, operation="set_step", move_id=started["move"]["id"], step="precopied")
    assert step["changed"] and not repeat["changed"]
    assert repeat["move"]["files_bytes"] == 100


def test_reads_change_nothing_and_run_in_check_mode(ledger):
    view = call(ledger, check_mode=True, operation="account", account="alice")
    assert view["changed"] is False
    assert view["account"]["live_server"] == "dedicated1"
    assert call(ledger, operation="check_wipe", server="transit1") == {"changed": False, "only_verified_copy": []}


def test_writes_are_skipped_in_check_mode(ledger):
    result = call(ledger, check_mode=True, operation="start_move", account="alice", source="dedicated1",
                  target="transit1", direction="out")
    assert result == {"changed": True, "skipped_in_check_mode": True}
    assert ledger.unfinished_moves() == []


def test_a_missing_argument_is_named(ledger):
    with pytest.raises(MissingArgument, match="ledger operation start_move needs target, direction"):
        call(ledger, operation="start_move", account="alice", source="dedicated1")


def test_registering_again_and_locks_report_no_change(ledger):
    assert not call(ledger, operation="register_server", server="dedicated1", infrastructure_version="2023")["changed"]
    assert not call(ledger, operation="register_account", account="alice", home_server="dedicated1")["changed"]
    assert call(ledger, operation="register_account", account="bob", home_server="dedicated1")["changed"]
    assert not call(ledger, operation="acquire", lock="server:dedicated1", holder="test")["changed"]
    assert not call(ledger, operation="release", lock="server:dedicated1", holder="test")["changed"]


def test_events_are_read_back_by_account_kind_and_move(ledger):
    move = call(ledger, operation="start_move", account="alice", source="dedicated1", target="transit1", direction="out")
    call(ledger, operation="record_event", kind="dns_changed", account="alice", move_id=move["move"]["id"],
         details={"changes": [{"name": "alice.hosted.test"}]})
    call(ledger, operation="record_event", kind="note", account="alice")

    found = call(ledger, operation="events", account="alice", kind="dns_changed", move_id=move["move"]["id"])

    assert found["changed"] is False
    assert [event["details"] for event in found["events"]] == [{"changes": [{"name": "alice.hosted.test"}]}]


def test_addresses_registered_and_rerouted_report_changes_once(ledger):
    first = call(ledger, operation="register_address", address="10.77.0.21", server="dedicated1")
    again = call(ledger, operation="register_address", address="10.77.0.21", server="dedicated1")
    assert first["changed"] and not again["changed"]
    moved = call(ledger, operation="route_address", address="10.77.0.21", routed_to="transit1", switch_s=0.25)
    repeat = call(ledger, operation="route_address", address="10.77.0.21", routed_to="transit1")
    assert moved["changed"] and not repeat["changed"]
    assert moved["address"]["switch_s"] == "0.25"
    listed = call(ledger, operation="addresses", server="dedicated1")
    assert (listed["changed"], listed["addresses"][0]["rerouted"]) == (False, True)


def test_check_reinstall_names_what_is_missing(ledger):
    from ansible_collections.hosting.migration.plugins.module_utils.ledger import ReinstallRefused
    with pytest.raises(ReinstallRefused, match="account alice is still served from dedicated1; dedicated1 holds the only verified copy of alice; "
                       "no service address of dedicated1 is recorded"):
        call(ledger, operation="check_reinstall", server="dedicated1")
