"""100 accounts: a lab of 100 small accounts (LAB_ACCOUNTS=100 LAB_FILES_MB=1 LAB_DB_MB=1) moved with account=all.

Controller overhead, as measured here: the playbook's wall time minus the time during which a
module process ran on a server, divided by the number of accounts. Every module process on
dedicated1 and transit1 is timed on the server by a wrapper given as the hosts'
ansible_python_interpreter (it logs the start and end of each python3 run), and the union of
those intervals is the servers' working time. What remains is the controller's own time:
ansible-playbook's start, templating, forking, SSH round trips, action plugins and ledger
writes. Set BENCH_ACCOUNTS to move another number of accounts."""
import os
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import lablib  # noqa: E402

SERVERS = ("dedicated1", "transit1")
WRAPPER = "/usr/local/bin/bench-python"
MODULE_LOG = "/run/bench-modules.log"
WRAPPER_TEXT = f"""#!/bin/bash
# hosting.migration bench: time every module run (removed after the benchmark)
start=$EPOCHREALTIME
/usr/bin/python3 "$@"
rc=$?
echo "$start $EPOCHREALTIME" >> {MODULE_LOG}
exit $rc
"""


def union_seconds(intervals):
    total, end = 0.0, None
    for start, stop in sorted(intervals):
        if end is None or start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total


def module_intervals(started, ended):
    """(start, end) of every module run on the servers between started and ended."""
    intervals = []
    for server in SERVERS:
        for line in lablib.on(server, f"cat {MODULE_LOG} 2>/dev/null || true").splitlines():
            start, stop = map(float, line.split())
            if start >= started and stop <= ended:
                intervals.append((start, stop))
    return intervals


def run():
    count = int(os.environ.get("BENCH_ACCOUNTS", max(2, round(100 * lablib.scale()))))
    setup = lablib.ensure_lab(accounts=count, files_mb=1, db_mb=1)
    for server in SERVERS:
        lablib.on(server, f"cat > {WRAPPER} && chmod 755 {WRAPPER} && : > {MODULE_LOG}", stdin=WRAPPER_TEXT)
    started = time.time()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            inventory = pathlib.Path(tmp) / "timed.yml"
            inventory.write_text("all:\n  hosts:\n" + "".join(
                f"    {server}: {{ansible_python_interpreter: {WRAPPER}}}\n" for server in SERVERS))
            lablib.log(f"moving {count} accounts")
            wall, report = lablib.playbook("migrate_account", {
                "migration_server": "dedicated1", "migration_target": "transit1", "account": "all"},
                inventories=[inventory])
    finally:
        intervals = module_intervals(started, time.time())
        for server in SERVERS:
            lablib.on(server, f"rm -f {WRAPPER} {MODULE_LOG}")
    moves = [m for m in lablib.moves() if m["step"] == "done"]
    busy = union_seconds(intervals)
    overhead = wall - busy
    controller_only, module_tasks = lablib.controller_only_seconds(report)
    copies = sum(result["elapsed_s"] for name in ("Pre-copy of the home while the account stays live", "Final sync of the home")
                 for _, result in lablib.task_results(report, name))
    copies += sum(result["elapsed_s"] for _, result in lablib.task_results(report, "Databases streamed from server to server"))
    freezes = [m["freeze_window_s"] for m in moves]
    return [
        lablib.row("lab set-up", round(setup), "s", f"lab-up of {count} accounts (LAB_FILES_MB=1 LAB_DB_MB=1)"),
        lablib.row("accounts moved", len(moves), "accounts", f"of {count}; ledger step done"),
        lablib.row("whole playbook (wall)", round(wall, 1), "s", "account=all, ansible-playbook start to end"),
        lablib.row("wall time per account", round(wall / count, 2), "s", ""),
        lablib.row("servers working, per account", round(busy / count, 2), "s",
                   f"union of {len(intervals)} module runs on dedicated1 and transit1 "
                   f"({len(intervals) / count:.0f} per account), timed on the servers"),
        lablib.row("of which rsync and database copies, per account", round(copies / count, 2), "s",
                   "elapsed_s of account_sync (pre-copy, final sync) and database_copy"),
        lablib.row("controller overhead per account", round(overhead / count, 2), "s",
                   "(wall - servers working) / accounts; target: under 0.5 s"),
        lablib.row("controller overhead per module run", round(overhead / max(1, len(intervals)), 3), "s",
                   "the same time divided by the module runs"),
        lablib.row("controller-only tasks and gaps, per account", round(controller_only / count, 2), "s",
                   f"play time minus the {module_tasks} tasks that run a module (ledger, set_fact, assert, "
                   "includes...): a lower bound of the overhead"),
        lablib.row("freeze window, mean", round(sum(freezes) / max(1, len(freezes)), 2), "s",
                   f"min {min(freezes, default=0):.2f} s, max {max(freezes, default=0):.2f} s (ledger)"),
    ]
