"""The transit_lease action's logic against a real (SQLite) ledger and a lab-like inventory."""
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.hosting.migration.plugins.module_utils.ledger import Ledger
from ansible_collections.hosting.migration.plugins.module_utils.transit_lease import (
    TRANSIT_LEASE_ARGUMENT_SPEC, LeaseFailed, run)

START = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
BIG = {"cores": 4, "memory_gib": 8, "disk_gb": 80, "arch": "x86_64", "zone": "lab-a"}
SMALL = {"cores": 2, "memory_gib": 4, "disk_gb": 40, "arch": "x86_64", "zone": "lab-a"}
PRICE = {"monthly": "49.00", "currency": "EUR"}


class Clock:
    def __init__(self):
        self.now = START

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += timedelta(seconds=seconds)


def inventory(**overrides):
    hostvars = {
        "dedicated1": {"server_profile": BIG, "server_price": PRICE, "infrastructure_version": "2023"},
        "dedicated2": {"server_profile": BIG, "server_price": {"monthly": "30", "currency": "EUR"}},
        "transit1": {"server_profile": BIG, "infrastructure_version": "2025"},
        "transit2": {"server_profile": SMALL, "infrastructure_version": "2025"},
    }
    for name, values in overrides.items():
        hostvars[name] = dict(hostvars.get(name, {}), **values)
    groups = {"all": sorted(hostvars), "transit_pool": ["transit1", "transit2"],
              "customer_servers": ["dedicated1", "dedicated2"]}
    return groups, hostvars


def args(**values):
    base = {name: spec.get("default") for name, spec in TRANSIT_LEASE_ARGUMENT_SPEC.items()}
    base.update(server="dedicated1", target_version="2025")
    base.update(values)
    return base


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def ledger(tmp_path, clock):
    with Ledger.open(str(tmp_path / "ledger.sqlite3"), clock=clock) as opened:
        yield opened


def lease(ledger, clock=None, **values):
    groups, hostvars = inventory()
    return run(ledger, args(**values), groups, hostvars)


def test_the_matching_server_is_leased_once(ledger):
    first = lease(ledger)
    assert (first["changed"], first["transit"], first["matching"]) == (True, "transit1", ["transit1"])
    assert "transit2 has 2 cores, dedicated1 needs 4" in " ".join(first["rejected"]["transit2"])
    assert first["lease"]["charge"]["amount"] == "0.00"
    again = lease(ledger)
    assert (again["changed"], again["transit"], again["lease"]["id"]) == (False, "transit1", first["lease"]["id"])


def test_transit2_is_never_chosen_for_dedicated1_even_when_free(ledger):
    lease(ledger, server="dedicated2")
    result = lease(ledger)
    assert (result["transit"], result["queued"], result["position"]) == (None, True, 1)
    assert ledger.active_lease(transit="transit2") is None


def test_a_queued_request_keeps_its_place_and_reports_no_change(ledger):
    lease(ledger, server="dedicated2")
    assert lease(ledger)["changed"] is True
    again = lease(ledger)
    assert (again["changed"], again["position"]) == (False, 1)


def test_waiting_times_out_with_the_request_still_queued(ledger):
    lease(ledger, server="dedicated2")
    said, moments = [], iter(range(0, 10000, 10))
    groups, hostvars = inventory()
    with pytest.raises(LeaseFailed, match="within 30 s .* still queued at place 1 \\(withdraw it with state=absent\\)"):
        run(ledger, args(wait=True, timeout_s=30, poll_s=10), groups, hostvars, say=said.append,
            sleep=lambda s: None, clock=lambda: next(moments))
    assert said and said[0] == "dedicated1 waits for a transit server (transit1): place 1 in line"
    assert [r.customer_server for r in ledger.waiting_list()] == ["dedicated1"]


def test_waiting_says_its_place_when_it_changes_and_otherwise_once_a_minute(ledger):
    groups, hostvars = inventory(dedicated3={"server_profile": BIG, "server_price": PRICE})
    groups["customer_servers"].append("dedicated3")
    assert run(ledger, args(server="dedicated2"), groups, hostvars)["transit"] == "transit1"
    assert run(ledger, args(server="dedicated3"), groups, hostvars)["position"] == 1
    said, now, polls = [], [0.0], []

    def sleep(seconds):
        polls.append(seconds)
        now[0] += seconds
        if len(polls) == 20:  # 200 s in line: dedicated3 gives up, dedicated1 moves up a place
            ledger.withdraw_lease_request("dedicated3")

    with pytest.raises(LeaseFailed, match="within 600 s"):
        run(ledger, args(wait=True, timeout_s=600, poll_s=10), groups, hostvars, say=said.append,
            sleep=sleep, clock=lambda: now[0])
    assert len(polls) == 60  # polled every 10 s ...
    # ... but said only at the start, once a minute, and when its place changed.
    assert said[0] == "dedicated1 waits for a transit server (transit1): place 2 in line"
    assert said[1:4] == ["dedicated1 waits for a transit server (transit1): place 2 in line, %d s so far" % s
                         for s in (60, 120, 180)]
    assert "dedicated1 waits for a transit server (transit1): place 1 in line, 200 s so far" in said
    assert 10 <= len(said) <= 12


def test_waiting_can_withdraw_the_request_on_timeout(ledger):
    lease(ledger, server="dedicated2")
    moments = iter(range(0, 10000, 10))
    groups, hostvars = inventory()
    with pytest.raises(LeaseFailed, match="was withdrawn"):
        run(ledger, args(wait=True, timeout_s=30, withdraw_on_timeout=True), groups, hostvars,
            sleep=lambda s: None, clock=lambda: next(moments))
    assert ledger.waiting_list() == []


def test_a_waiting_request_gets_the_server_released_meanwhile(ledger, clock):
    lease(ledger, server="dedicated2")
    groups, hostvars = inventory()

    def sleep(seconds):
        clock.advance(3600)
        run(ledger, args(server="dedicated2", state="released"), groups, hostvars)

    result = run(ledger, args(wait=True, timeout_s=600), groups, hostvars, sleep=sleep, clock=lambda: 0)
    assert (result["transit"], result["queued"], result["lease"]["customer_server"]) == ("transit1", False, "dedicated1")
    assert result["lease"]["started_at"] == "2025-03-01T13:00:00.000000Z"


def test_release_charges_the_days_after_the_free_period(ledger, clock):
    lease(ledger)
    clock.advance(9 * 86400)  # 2025-03-10 12:00: free until 03-08 12:00, billed 03-08, 03-09, 03-10
    result = lease(ledger, state="released")
    assert result["changed"] is True
    assert result["lease"]["final_amount"] == result["lease"]["charge"]["amount"] == "4.74"  # 3 x 49/31
    again = lease(ledger, state="released")
    assert (again["changed"], again["lease"]["final_amount"]) == (False, "4.74")


def test_released_before_the_free_period_ends_costs_nothing(ledger, clock):
    lease(ledger)
    clock.advance(6 * 86400)
    assert lease(ledger, state="released")["lease"]["final_amount"] == "0.00"


@pytest.mark.parametrize("values, overrides, message", [
    ({"server": "dedicated9"}, {}, "dedicated9 is not a host of the inventory"),
    ({"server": "transit1"}, {}, "transit1 is a transit server of the pool transit_pool"),
    ({"pool": "no_such_group"}, {}, "the inventory group no_such_group is empty or missing"),
    ({}, {"dedicated1": {"server_price": {"monthly": "-5", "currency": "EUR"}}}, "negative|below zero|-5"),
    ({}, {"dedicated1": {"server_price": {"monthly": "1000000", "currency": "EUR"}}}, "1000000"),
    ({"target_version": "2031"}, {}, "nothing in the pool can serve dedicated1"),
    ({}, {"dedicated1": {"server_profile": dict(BIG, arch="aarch64")}}, "nothing in the pool can serve dedicated1"),
    ({"free_days": -1}, {}, "free"),
    ({"state": "released"}, {}, "dedicated1 never had a transit server"),
])
def test_bad_requests_are_refused_before_the_ledger_changes(ledger, values, overrides, message):
    groups, hostvars = inventory(**overrides)
    with pytest.raises(LeaseFailed, match=message):
        run(ledger, args(**values), groups, hostvars)
    assert ledger.leases() == [] and ledger.waiting_list() == [] and ledger.servers() == []


def test_a_missing_price_is_named(ledger):
    groups, hostvars = inventory()
    del hostvars["dedicated1"]["server_price"]
    with pytest.raises(LeaseFailed, match="dedicated1 has no server_price in the inventory"):
        run(ledger, args(), groups, hostvars)


def test_info_reads_without_changing(ledger):
    lease(ledger, server="dedicated2")
    lease(ledger)
    result = lease(ledger, state="info")
    assert (result["changed"], result["queued"], result["position"], result["transit"]) == (False, True, 1, None)
    assert lease(ledger, server="dedicated2", state="info")["leases"][0]["transit"] == "transit1"


def test_absent_withdraws_a_waiting_request(ledger):
    lease(ledger, server="dedicated2")
    lease(ledger)
    assert lease(ledger, state="absent")["withdrawn"] is True
    assert lease(ledger, state="absent")["changed"] is False
