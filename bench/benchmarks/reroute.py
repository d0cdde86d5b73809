"""Requests lost on the service addresses during each IP reroute, and by name across the whole cut-over.

The lab's customer server `dedicated1` goes through the cut-over's first half: TTL lowered ahead,
`transit1` leased, every account moved there, then its service addresses are rerouted to
`transit1` and back BENCH_REROUTES times each way (default 3) while the lab's prober requests
every account's page every 100 ms by each service address (Host header) and by DNS name. Per
reroute: the longest run of failed requests on any address (the outage a client sees), the failed
requests by address, and the switch time `ip_reroute` measured itself (the ledger's
`address.rerouted` events). Compared with the provider's figure (about a minute) and the target
(under 1 s). Requests by name must not fail at all outside the accounts' freezes: the DNS records
point at transit1's own addresses before the first reroute."""
import json
import pathlib
import sqlite3
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import lablib  # noqa: E402

sys.path.insert(0, str(lablib.TOP / "lab/prober"))
import prober  # noqa: E402

PROVIDER_S = 60.0
TARGET_S = 1.0
SERVER, TRANSIT = "dedicated1", "transit1"
TIMELINE = lablib.STATE / "prober/bench-reroute.jsonl"


def prober_cmd(*args):
    return lablib.run([sys.executable, str(lablib.TOP / "lab/prober/prober.py"), *args])


def records(since, until, via=None):
    return [record for record in prober.read_timeline(TIMELINE)
            if since <= record["t"] <= until and (via is None or record["via"] == via)]


def rerouted_events(since):
    """The ledger's address.rerouted events after `since` (unix time): their switch times."""
    with sqlite3.connect(f"file:{lablib.ledger_location()}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT at, details FROM events WHERE kind = 'address.rerouted'").fetchall()
    found = []
    for at, details in rows:
        if lablib._iso_seconds(at) >= since:
            found.append(json.loads(details or "{}"))
    return found


def freeze_windows():
    """Each account's freeze windows (unix times), widened by one prober timeout before."""
    windows = {}
    for move in lablib.moves():
        if move["freeze_started_at"] and move["freeze_ended_at"]:
            windows.setdefault(move["account"], []).append(
                [lablib._iso_seconds(move["freeze_started_at"]) - prober.DEFAULT_TIMEOUT,
                 lablib._iso_seconds(move["freeze_ended_at"])])
    return windows


def reroute(back):
    extra = {"migration_server": SERVER, "migration_target": TRANSIT}
    if back:
        extra["reroute_back"] = "true"
    started = time.time()
    wall, _ = lablib.playbook("reroute", extra)
    return started, time.time(), wall


def run():
    setup = lablib.ensure_lab()
    rows = [lablib.row("lab set-up", round(setup), "s", "the default lab, when it was not")]
    TIMELINE.unlink(missing_ok=True)
    prober_cmd("stop")
    prober_cmd("start", f"--out={TIMELINE}")
    cutover_started = time.time()
    try:
        lablib.log("TTL lowered ahead, transit1 leased, every account moved to it")
        lablib.playbook("dns_ahead", {"migration_server": SERVER, "dns_ahead_ttl": 5, "dns_ahead_wait": "false"})
        lablib.playbook("lease_transit", {"migration_server": SERVER})
        lablib.playbook("migrate_account", {"migration_server": SERVER, "migration_target": TRANSIT, "account": "all"})
        lablib.log("the service addresses rerouted to transit1")
        since, until, wall = reroute(False)
        time.sleep(1.0)  # requests started just before the end finish or time out
        runs = [(False, since, time.time(), wall)]
    finally:
        prober_cmd("stop")
    ended = time.time()
    worst_by_name = prober.summarize(records(cutover_started, ended, via="dns"))
    outside = prober.failures_outside(records(cutover_started, ended, via="dns"), freeze_windows())
    switch_times = [float(event["switch_s"]) for event in rerouted_events(cutover_started)
                    if event.get("switch_s") not in (None, "")]
    longest, lost = [], []
    for number, (back, since, until, wall) in enumerate(runs):
        by_address = prober.summarize(records(since, until, via="ip"))["addresses"]
        outage = max((address["longest_outage_s"] for address in by_address), default=0.0)
        failed = sum(address["failed"] for address in by_address)
        longest.append(outage)
        lost.append(failed)
        label = "reroute to transit1"
        rows.append(lablib.row(f"{label}: longest outage on an address", round(outage, 2), "s",
                               f"{failed} failed requests over {len(by_address)} addresses; playbook {wall:.1f} s"))
    worst = max(longest)
    rows += [
        lablib.row("worst outage / target (1 s)", round(worst / TARGET_S, 2), "ratio", "under 1 meets the target"),
        lablib.row("worst outage / provider (about 60 s)", round(worst / PROVIDER_S, 3), "ratio", "under 1 beats the provider"),
        lablib.row("switch time per address (ip_reroute's own measure)", round(max(switch_times, default=0.0), 3),
                   "s", f"worst of {len(switch_times)} address switches recorded in the ledger"),
        lablib.row("requests by name failed outside freezes, whole cut-over", len(outside), "requests",
                   f"of {worst_by_name['requests']} by name; target 0"),
    ]
    return rows
