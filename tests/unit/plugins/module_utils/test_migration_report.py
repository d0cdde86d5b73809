"""The migration report: what it collects from the ledger, the page it renders, how it is written."""
import json
import os
import re
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.hosting.migration.plugins.module_utils.ledger import Ledger, UnknownServer
from ansible_collections.hosting.migration.plugins.module_utils.migration_report import (
    ReportError, collect, render_html, write_report)
from ansible_collections.hosting.migration.plugins.module_utils.transit_lease import final_amount

START = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
TERMS = {"free_days": 7, "price_monthly": "31.00", "currency": "EUR", "time_zone": "UTC"}
V4, V6 = "10.77.0.21", "2001:db8::21"
MB = 1000 * 1000


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
def ledger(tmp_path, clock):
    with Ledger.open(str(tmp_path / "ledger.sqlite3"), clock=clock) as opened:
        yield opened


def verification(account):
    return {"files": {"entries": 23, "bytes": 4 * MB, "digest": "ab" * 32},
            "databases": ["%s_app" % account], "crontab": "0 3 * * * backup"}


def move(ledger, clock, account, source, target, direction, freeze_s, files_bytes, databases_bytes, until="done"):
    """A move of ``account`` through its steps, frozen for ``freeze_s`` seconds; stops at ``until``."""
    record = ledger.start_move(account, source, target, direction)
    steps = [("precopied", 20, {"files_bytes": files_bytes}), ("frozen", freeze_s / 2, {}),
             ("synced", freeze_s / 4, {"files_bytes": 1000, "databases_bytes": databases_bytes}),
             ("verified", freeze_s / 4, {"verification": verification(account), "digest": "cd" * 32}),
             ("switched", 1, {}), ("done", 1, {})]
    for step, then_wait, extra in steps:
        clock.advance(1 if step == "precopied" else 0)
        record = ledger.set_step(record.id, step, **extra)
        if step == until:
            return record
        clock.advance(then_wait)
    return record


def dns_change(ledger, account=None, move_id=None, purpose=None, ttl=(300, 300), to="10.77.0.30", name="www.alice.hosted.test"):
    details = {"changes": [{"name": name, "type": "A", "zone": "hosted.test", "old_ttl": ttl[0],
                            "old_addresses": [V4], "new_ttl": ttl[1], "new_addresses": [to]}]}
    if purpose:
        details["purpose"] = purpose
    return ledger.record_event("dns_changed", server="dedicated1", account=account, move_id=move_id, details=details)


def full_story(ledger, clock):
    """dedicated1 migrated end to end through transit1: two accounts out and back, two addresses
    rerouted out and back, DNS changed and restored, the lease released after its free week."""
    ledger.register_server("dedicated1", "2023")
    ledger.register_server("transit1", "2025")
    for name in ("alice", "bob"):
        ledger.register_account(name, "dedicated1")
    for address in (V4, V6):
        ledger.register_address(address, "dedicated1")
    ledger.set_phase("dedicated1", "preparing")
    clock.advance(60)
    ledger.lease_transit("dedicated1", ["transit1"], TERMS)
    ledger.set_phase("dedicated1", "accounts_out")
    out = move(ledger, clock, "alice", "dedicated1", "transit1", "out", 4.0, 900 * MB, 300 * MB)
    dns_change(ledger, account="alice", move_id=out.id)
    move(ledger, clock, "bob", "dedicated1", "transit1", "out", 2.5, 100 * MB, 20 * MB)
    clock.advance(86400)
    ledger.set_phase("dedicated1", "dns_ahead")
    dns_change(ledger, purpose="ttl lowered ahead of the cut-over", ttl=(300, 60), to=V4)
    ledger.set_phase("dedicated1", "addresses_on_transit")
    ledger.route_address(V4, "transit1", 0.42)
    ledger.route_address(V6, "transit1", 0.38)
    ledger.set_phase("dedicated1", "reinstalling")
    clock.advance(600)
    ledger.record_event("server.reinstalled", server="dedicated1",
                        details={"version": "2025", "driver": "lab", "elapsed_s": 540.0})
    ledger.register_server("dedicated1", "2025")
    ledger.set_phase("dedicated1", "reinstalled")
    clock.advance(86400)
    ledger.set_phase("dedicated1", "accounts_back")
    move(ledger, clock, "alice", "transit1", "dedicated1", "back", 3.0, 10 * MB, 300 * MB)
    move(ledger, clock, "bob", "transit1", "dedicated1", "back", 2.0, 5 * MB, 20 * MB)
    ledger.route_address(V4, "dedicated1", 0.31)
    ledger.route_address(V6, "dedicated1", 0.29)
    ledger.set_phase("dedicated1", "addresses_home")
    ledger.record_event("dns_restored", server="dedicated1", details={"changes": [
        {"name": "www.alice.hosted.test", "type": "A", "zone": "hosted.test", "old_ttl": 60,
         "old_addresses": ["10.77.0.30"], "new_ttl": 300, "new_addresses": [V4]}]})
    clock.now = datetime(2025, 3, 10, 13, 0, tzinfo=timezone.utc)
    ledger.release_transit("transit1", final_amount)
    ledger.set_phase("dedicated1", "done")


def partial_story(ledger, clock):
    """alice moved out, bob frozen right now, carol not touched; no lease, nothing rerouted."""
    ledger.register_server("dedicated1", "2023")
    for name in ("alice", "bob", "carol"):
        ledger.register_account(name, "dedicated1")
    ledger.register_address(V4, "dedicated1")
    ledger.set_phase("dedicated1", "accounts_out")
    move(ledger, clock, "alice", "dedicated1", "transit1", "out", 4.0, 900 * MB, 300 * MB)
    move(ledger, clock, "bob", "dedicated1", "transit1", "out", 2.5, 100 * MB, 20 * MB, until="frozen")


# What is collected

def test_a_full_migration_is_collected_with_its_freezes_reroutes_dns_and_charge(ledger, clock):
    full_story(ledger, clock)
    data = collect(ledger, "dedicated1")
    summary = data["summary"]
    assert summary == {
        "server": "dedicated1", "infra_version": "2025", "status": "done", "accounts_total": 2,
        "accounts_live_on": {"dedicated1": 2}, "moves_total": 4, "moves_done": 4, "moves_unfinished": 0,
        "freeze_total_s": 11.5, "freeze_max_s": 4.0, "freeze_max_account": "alice",
        "files_bytes": 1015 * MB + 4000, "databases_bytes": 640 * MB, "bytes_moved": 1655 * MB + 4000,
        "reroutes": [{"address": V4, "to": "transit1", "switch_s": 0.42}, {"address": V4, "to": "dedicated1", "switch_s": 0.31},
                     {"address": V6, "to": "transit1", "switch_s": 0.38}, {"address": V6, "to": "dedicated1", "switch_s": 0.29}],
        "switch_max_s": 0.42, "dns_records_changed": 2, "lease_amount": "3.00 EUR", "lease_running": False,
        "waiting_position": None}
    assert data["generated_at"] == "2025-03-10T13:00:00.000000Z"
    assert [item["version"] for item in data["server"]["versions"]] == ["2023", "2025"]
    assert [change["phase"] for change in data["server"]["phase_history"]] == [
        "preparing", "accounts_out", "dns_ahead", "addresses_on_transit", "reinstalling", "reinstalled",
        "accounts_back", "addresses_home", "done"]

    alice = data["accounts"][0]
    assert (alice["name"], alice["live_server"]) == ("alice", "dedicated1")
    assert {copy["server"]: copy["state"] for copy in alice["copies"]} == {"dedicated1": "verified", "transit1": "stale"}
    assert [(m["direction"], m["source"], m["target"], m["step"], m["freeze_window_s"]) for m in alice["moves"]] == [
        ("out", "dedicated1", "transit1", "done", 4.0), ("back", "transit1", "dedicated1", "done", 3.0)]
    first = alice["moves"][0]
    assert (first["files_bytes"], first["databases_bytes"]) == (900 * MB + 1000, 300 * MB)
    assert first["verification"]["verified"] and first["verification"]["databases"] == ["alice_app"]
    assert first["verification"]["text"] == "equal: 23 entries, 4.0 MB; databases alice_app; crontab"
    assert set(first["step_times"]) == {"planned", "precopied", "frozen", "synced", "verified", "switched", "done"}

    v4 = data["addresses"][0]
    assert (v4["address"], v4["routed_to"], v4["rerouted"]) == (V4, "dedicated1", False)
    assert [(r["from"], r["to"], r["switch_s"]) for r in v4["reroutes"]] == [
        ("dedicated1", "transit1", 0.42), ("transit1", "dedicated1", 0.31)]

    assert [(c["account"], c["purpose"]) for c in data["dns_changes"]] == [
        ("alice", "account alice moved (move 1)"), (None, "ttl lowered ahead of the cut-over")]
    assert data["dns_changes"][1]["records"][0] == {
        "name": "www.alice.hosted.test", "type": "A", "zone": "hosted.test", "old_ttl": 300,
        "old_addresses": [V4], "new_ttl": 60, "new_addresses": [V4]}
    assert len(data["dns_restores"]) == 1 and data["dns_restores"][0]["records"][0]["new_ttl"] == 300
    assert data["reinstalls"] == [{"at": data["reinstalls"][0]["at"], "version": "2025", "driver": "lab", "elapsed_s": 540.0}]

    lease, = data["leases"]
    assert (lease["transit"], lease["state"], lease["final_amount"], lease["amount"]) == ("transit1", "released", "3.00", "3.00")
    assert (lease["billed_days"], lease["first_billed_day"], lease["last_billed_day"]) == (3, "2025-03-08", "2025-03-10")
    assert lease["running"] is False and data["waiting"] is None


def test_the_timeline_has_phases_freezes_reroutes_and_the_lease(ledger, clock):
    full_story(ledger, clock)
    spans = collect(ledger, "dedicated1")["timeline"]
    kinds = {}
    for span in spans:
        kinds[span["kind"]] = kinds.get(span["kind"], 0) + 1
    assert kinds == {"phase": 9, "lease": 1, "reinstall": 1, "reroute": 4, "dns": 2, "dns_restore": 1, "move": 4, "freeze": 4}
    phases = [span for span in spans if span["kind"] == "phase"]
    assert all(a["end"] == b["start"] for a, b in zip(phases, phases[1:]))
    assert phases[-1]["end"] is None
    freezes = [(s["account"], s["seconds"]) for s in spans if s["kind"] == "freeze"]
    assert freezes == [("alice", 4.0), ("alice", 3.0), ("bob", 2.5), ("bob", 2.0)]
    reinstall, = [span for span in spans if span["kind"] == "reinstall"]
    elapsed = datetime.fromisoformat(reinstall["end"][:-1]) - datetime.fromisoformat(reinstall["start"][:-1])
    assert elapsed == timedelta(seconds=540)
    assert [s["switch_s"] for s in spans if s["kind"] == "reroute"] == [0.42, 0.31, 0.38, 0.29]


def test_a_partial_migration_shows_what_is_done_and_what_runs(ledger, clock):
    partial_story(ledger, clock)
    data = collect(ledger, "dedicated1")
    summary = data["summary"]
    assert summary["accounts_live_on"] == {"dedicated1": 2, "transit1": 1}
    assert (summary["moves_total"], summary["moves_done"], summary["moves_unfinished"]) == (2, 1, 1)
    assert (summary["freeze_total_s"], summary["freeze_max_s"]) == (4.0, 4.0)
    assert summary["reroutes"] == [] and summary["lease_amount"] is None and summary["switch_max_s"] is None
    assert data["leases"] == [] and data["dns_changes"] == [] and data["waiting"] is None
    bob = data["accounts"][1]["moves"][0]
    assert (bob["step"], bob["freeze_window_s"], bob["freeze_ended_at"]) == ("frozen", None, None)
    open_freeze, = [s for s in data["timeline"] if s["kind"] == "freeze" and s["end"] is None]
    assert open_freeze["account"] == "bob"
    assert data["accounts"][2]["moves"] == []

    page = render_html(data)
    assert "frozen now" in page and "no move yet" in page and "never rerouted" in page
    for section in ("DNS changes", "DNS restored", "Transit lease and charges"):
        assert re.search(r"<h2>%s</h2><table>.*?none yet" % section, page)


def test_an_empty_migration_says_none_yet_everywhere(ledger):
    ledger.register_server("dedicated1", "2023")
    data = collect(ledger, "dedicated1")
    assert data["accounts"] == [] and data["timeline"] == [] and data["addresses"] == []
    assert data["summary"]["status"] == "not started" and data["summary"]["freeze_max_s"] is None
    page = render_html(data)
    assert "<svg" not in page
    assert page.count("none yet") >= 8


def test_a_queued_server_shows_its_place_in_line(ledger, clock):
    full_story(ledger, clock)
    ledger.lease_transit("dedicated2", ["transit1"], TERMS)
    ledger.lease_transit("dedicated3", ["transit1"], TERMS)
    data = collect(ledger, "dedicated3")
    assert data["waiting"]["position"] == 1 and data["summary"]["waiting_position"] == 1
    assert "place 1 in line" in render_html(data)


def test_a_running_lease_is_billed_so_far_and_its_report_is_stable_within_a_day(ledger, clock):
    ledger.register_server("dedicated1", "2023")
    ledger.lease_transit("dedicated1", ["transit1"], TERMS)
    clock.advance(9 * 86400)
    lease = collect(ledger, "dedicated1")["leases"][0]
    # Free until 03-08 12:00; every day started since is billed: 03-08, 03-09, 03-10.
    assert (lease["running"], lease["amount"], lease["billed_days"]) == (True, "3.00", 3)
    assert "billed_until" not in lease
    first = collect(ledger, "dedicated1")
    clock.advance(3600)
    later = collect(ledger, "dedicated1")
    assert later["generated_at"] != first["generated_at"]
    assert dict(later, generated_at=None) == dict(first, generated_at=None)
    assert "3.00 EUR so far" in render_html(later)


def test_an_unknown_server_is_refused(ledger):
    with pytest.raises(UnknownServer, match="no server 'nowhere'"):
        collect(ledger, "nowhere")


# The page

def test_the_page_shows_every_section_and_value(ledger, clock):
    full_story(ledger, clock)
    page = render_html(collect(ledger, "dedicated1"))
    for text in ("<h1>Migration of dedicated1</h1>", "2023 \u2192 2025", "status: done", "<svg", "Timeline",
                 "Accounts", "Service addresses", "DNS changes", "DNS restored", "Transit lease and charges",
                 "4.00 s", "11.5 s", "0.42 s", "0.31 s", "3.00 EUR", "2025-03: 3 of 31 days at 31.00/31",
                 "www.alice.hosted.test A", "10.77.0.21 (TTL 300)", "10.77.0.21 (TTL 60)", "ttl lowered ahead",
                 "equal: 23 entries", "reinstalled", "9 min 00 s", "1.7 GB"):
        assert text in page, text
    assert "<title>" in page and "measured loss 0.42 s" in page


def test_the_page_is_self_contained(ledger, clock):
    full_story(ledger, clock)
    page = render_html(collect(ledger, "dedicated1"))
    lowered = page.lower()
    for forbidden in ("http://", "https://", "src=", "<script", "<link", "@import", "url("):
        assert forbidden not in lowered, forbidden
    assert lowered.startswith("<!doctype html>") and "<style>" in lowered


def test_hostile_names_and_details_are_escaped(ledger, clock):
    ledger.register_server("dedicated1", "2023")
    hostile = 'eve<script>alert(1)</script>'
    ledger.register_account(hostile, "dedicated1")
    move(ledger, clock, hostile, "dedicated1", "transit1", "out", 2.0, MB, MB)
    dns_change(ledger, purpose='<script>alert("dns")</script>', name='x"><img onerror=alert(2)>.hosted.test')
    page = render_html(collect(ledger, "dedicated1"))
    assert "<script" not in page.lower() and "<img" not in page
    assert "eve&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(&quot;dns&quot;)&lt;/script&gt;" in page
    assert "x&quot;&gt;&lt;img onerror=alert(2)&gt;.hosted.test" in page


# Writing

def test_the_report_is_written_once_and_a_later_run_changes_nothing(ledger, clock, tmp_path):
    full_story(ledger, clock)
    dest = tmp_path / "reports" / "deeper"
    data = collect(ledger, "dedicated1")
    html_path, json_path, changed = write_report(str(dest), "migration-dedicated1", data, render_html(data))
    assert changed and html_path == str(dest / "migration-dedicated1.html")
    assert json.loads(open(json_path).read()) == data
    written = open(html_path).read()
    assert written == render_html(data)
    assert oct(os.stat(html_path).st_mode & 0o777) == "0o644"

    clock.advance(3600)
    later = collect(ledger, "dedicated1")
    assert later["generated_at"] != data["generated_at"]
    assert write_report(str(dest), "migration-dedicated1", later, render_html(later))[2] is False
    assert open(html_path).read() == written
    assert sorted(os.listdir(dest)) == ["migration-dedicated1.html", "migration-dedicated1.json"]

    ledger.set_phase("dedicated1", "archived")
    changed_data = collect(ledger, "dedicated1")
    assert write_report(str(dest), "migration-dedicated1", changed_data, render_html(changed_data))[2] is True
    assert "archived" in open(html_path).read()


def test_check_mode_writes_nothing(ledger, tmp_path):
    ledger.register_server("dedicated1", "2023")
    data = collect(ledger, "dedicated1")
    dest = tmp_path / "reports"
    assert write_report(str(dest), "r", data, render_html(data), check_mode=True)[2] is True
    assert not dest.exists()


def test_a_damaged_report_is_rewritten(ledger, tmp_path):
    ledger.register_server("dedicated1", "2023")
    data = collect(ledger, "dedicated1")
    html_path, json_path, dummy = write_report(str(tmp_path), "r", data, render_html(data))
    with open(json_path, "w") as out:
        out.write("{not json")
    assert write_report(str(tmp_path), "r", data, render_html(data))[2] is True
    assert json.loads(open(json_path).read()) == data


@pytest.mark.parametrize("basename", ["", "../x", ".hidden", "a/b"])
def test_a_basename_with_a_directory_is_refused(tmp_path, basename):
    with pytest.raises(ReportError, match="basename"):
        write_report(str(tmp_path), basename, {}, "")
