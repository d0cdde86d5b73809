#!/usr/bin/env python3
"""Interrupt a playbook run at a chosen point of an account's move, for the fault tests.

    interrupt.py --ledger LOCATION --account NAME --at STEP [--when CHECK] [--then COMMAND] -- ansible-playbook ...
    interrupt.py --ledger LOCATION --event "kind=move.step account=bob to=frozen" [...] -- ansible-playbook ...

Starts the command in its own session, watches the ledger every 50 ms and, as soon as the
account's newest move reaches STEP (planned, precopied, frozen, synced, verified, switched) and,
with --when, the shell command CHECK succeeds (polled every 50 ms; say, until the site answers
503: the freeze took effect):

  * without --then: kills the whole session with SIGKILL (the controller dies mid-task: no
    rescue, no always, no lock released), like a crashed or killed controller;
  * with --then: runs COMMAND (say ``podman restart transit1``: the target reboots) and lets the
    playbook go on and fail on its own.

With --event instead of --account/--at, it acts on the first event recorded after it started whose
fields match every KEY=VALUE (kind, account, server, or a key of the event's details; e.g.
"kind=server.phase server=dedicated1 phase=reinstalling", "kind=address.rerouted").

Prints one JSON line: whether the point was reached, the step seen, the playbook's exit status and
the tail of its output. Exits 0 only when the point was reached and acted on; 1 when the playbook
ended before reaching it (the test can then fail), 2 on bad arguments.
"""
import argparse
import json
import os
import pathlib
import shlex
import signal
import subprocess
import sys
import time

TOP = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP / ".collections"))

from ansible_collections.hosting.migration.plugins.module_utils.ledger import Ledger  # noqa: E402
from ansible_collections.hosting.migration.plugins.module_utils.ledger_errors import LedgerError  # noqa: E402


def newest_step(location, account, after_id):
    """The step of the account's newest move started after move ``after_id`` (None if none)."""
    try:
        with Ledger.open(location) as ledger:
            moves = [move for move in ledger.moves_of(account) if move.id > after_id]
    except LedgerError:
        return None  # not created yet, or busy: look again
    return moves[-1].step if moves else None


def _matches(event, wanted):
    fields = {"kind": event.kind, "account": event.account, "server": event.server}
    for key, value in wanted.items():
        found = fields[key] if key in fields else (event.details or {}).get(key)
        if str(found) != value:
            return False
    return True


def matching_event(location, wanted, after_id):
    """The kind of the first event after ``after_id`` matching ``wanted`` (None if none yet)."""
    try:
        with Ledger.open(location) as ledger:
            events = [event for event in ledger.events() if event.id > after_id]
    except LedgerError:
        return None
    for event in events:
        if _matches(event, wanted):
            return event.kind
    return None


def last_event_id(location):
    try:
        with Ledger.open(location) as ledger:
            events = ledger.events()
    except LedgerError:
        return 0
    return events[-1].id if events else 0


def last_move_id(location, account):
    try:
        with Ledger.open(location) as ledger:
            moves = ledger.moves_of(account)
    except LedgerError:
        return 0
    return moves[-1].id if moves else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ledger", required=True)
    parser.add_argument("--account", help="the account whose move is watched (with --at)")
    parser.add_argument("--at", help="the move step at which to act")
    parser.add_argument("--event", help='act on the first new event matching "KEY=VALUE ..." instead')
    parser.add_argument("--then", help="a command to run at that point instead of killing the playbook")
    parser.add_argument("--when", help="a shell command that must also succeed before acting")
    parser.add_argument("--log", default="/dev/null", help="where the playbook's output goes")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    if bool(args.event) == bool(args.account and args.at):
        parser.error("give either --account and --at, or --event")

    if args.event:
        try:
            wanted = dict(token.split("=", 1) for token in args.event.split())
        except ValueError:
            parser.error("--event takes KEY=VALUE words")
        after = last_event_id(args.ledger)

        def watch():
            kind = matching_event(args.ledger, wanted, after)
            return kind, kind is not None
    else:
        # A resumed move continues the same move record; a fresh one starts a new record.
        baseline = last_move_id(args.ledger, args.account)
        resumable = newest_step(args.ledger, args.account, baseline - 1) if baseline else None
        after = baseline - 1 if resumable not in (None, "done", "rolled_back", "failed") else baseline

        def watch():
            step = newest_step(args.ledger, args.account, after)
            return step, step == args.at

    started = time.monotonic()
    seen, hit, acted = None, False, None
    with open(args.log, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        while process.poll() is None and time.monotonic() - started < args.timeout:
            label, matched = watch()
            seen = label or seen
            hit = matched and (not args.when or subprocess.run(
                ["sh", "-c", args.when], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                check=False).returncode == 0)
            if hit:
                if args.then:
                    acted = subprocess.run(shlex.split(args.then), capture_output=True, text=True, check=False)
                else:
                    os.killpg(process.pid, signal.SIGKILL)
                break
            time.sleep(0.05)
        if process.poll() is None and not hit:
            os.killpg(process.pid, signal.SIGKILL)  # timed out
        returncode = process.wait()
    tail = pathlib.Path(args.log).read_text(errors="replace").splitlines()[-15:] if args.log != "/dev/null" else []
    report = {
        "reached": hit, "step_seen": seen, "action": "run " + args.then if args.then else "SIGKILL",
        "action_rc": acted.returncode if acted is not None else None, "playbook_rc": returncode,
        "elapsed_s": round(time.monotonic() - started, 2), "output_tail": tail,
    }
    print(json.dumps(report))
    return 0 if hit and (acted is None or acted.returncode == 0) else 1


if __name__ == "__main__":
    sys.exit(main())
