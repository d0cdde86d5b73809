# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The operations the hosting.migration.ledger action offers playbooks, one function each."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.hosting.migration.plugins.module_utils import migration_progress
from ansible_collections.hosting.migration.plugins.module_utils.ledger_errors import NotFound

LEDGER_ARGUMENT_SPEC = dict(
    location=dict(type="str", no_log=True),
    operation=dict(type="str", required=True, choices=[
        "register_server", "set_phase", "register_account", "start_move", "set_step", "acquire",
        "release", "record_event", "record_wiped", "register_address", "route_address", "account", "server",
        "check_wipe", "check_reinstall", "events", "leases", "addresses", "accounts", "progress"]),
    server=dict(type="str"),
    infrastructure_version=dict(type="str"),
    phase=dict(type="str"),
    account=dict(type="str"),
    home_server=dict(type="str"),
    source=dict(type="str"),
    target=dict(type="str"),
    direction=dict(type="str", choices=["out", "back"]),
    move_id=dict(type="int"),
    step=dict(type="str"),
    files_bytes=dict(type="int"),
    databases_bytes=dict(type="int"),
    verification=dict(type="dict"),
    digest=dict(type="str"),
    error=dict(type="str"),
    lock=dict(type="str"),
    holder=dict(type="str"),
    ttl_s=dict(type="int", default=3600),
    kind=dict(type="str"),
    details=dict(type="dict"),
    address=dict(type="str"),
    routed_to=dict(type="str"),
    switch_s=dict(type="float"),
)

# What each operation needs; the action refuses a call without it before opening the ledger.
REQUIRED = {
    "register_server": ("server",),
    "set_phase": ("server", "phase"),
    "register_account": ("account", "home_server"),
    "start_move": ("account", "source", "target", "direction"),
    "set_step": ("move_id", "step"),
    "acquire": ("lock", "holder"),
    "release": ("lock", "holder"),
    "record_event": ("kind",),
    "account": ("account",),
    "server": ("server",),
    "check_wipe": ("server",),
    "record_wiped": ("server",),
    "register_address": ("address", "server"),
    "route_address": ("address", "routed_to"),
    "check_reinstall": ("server",),
    "addresses": ("server",),
    "accounts": ("server",),
    "progress": ("server", "infrastructure_version"),
    "events": (),
    "leases": (),
}

# Operations that only read report changed=False and run in check mode.
READ_ONLY = {"account", "server", "check_wipe", "check_reinstall", "events", "leases", "addresses", "accounts",
             "progress"}


class MissingArgument(ValueError):
    pass


def _account_view(ledger, name):
    account = ledger.account(name)
    return {
        "account": account.to_dict(),
        "copies": [copy.to_dict() for copy in ledger.copies(name)],
        "moves": [move.to_dict() for move in ledger.moves_of(name)],
    }


def _write(ledger, args, gone=None):
    operation = args["operation"]
    if operation == "register_server":
        return {"server": ledger.register_server(args["server"], args["infrastructure_version"]).to_dict()}
    if operation == "set_phase":
        return {"server": ledger.set_phase(args["server"], args["phase"]).to_dict()}
    if operation == "register_account":
        return {"account": ledger.register_account(args["account"], args["home_server"]).to_dict()}
    if operation == "start_move":
        return {"move": ledger.start_move(args["account"], args["source"], args["target"], args["direction"]).to_dict()}
    if operation == "set_step":
        return {"move": ledger.set_step(
            args["move_id"], args["step"], files_bytes=args["files_bytes"], databases_bytes=args["databases_bytes"],
            verification=args["verification"], digest=args["digest"], error=args["error"]).to_dict()}
    if operation == "acquire":
        return {"lock": ledger.acquire(args["lock"], args["holder"], args["ttl_s"], gone=gone).to_dict()}
    if operation == "release":
        return {"released": ledger.release(args["lock"], args["holder"])}
    if operation == "record_wiped":
        return {"removed_copies": ledger.record_wiped(args["server"])}
    if operation == "register_address":
        return {"address": ledger.register_address(args["address"], args["server"]).to_dict()}
    if operation == "route_address":
        return {"address": ledger.route_address(args["address"], args["routed_to"], args["switch_s"]).to_dict()}
    return {"event": ledger.record_event(
        args["kind"], server=args["server"], account=args["account"], move_id=args["move_id"],
        details=args["details"]).to_dict()}


def _read(ledger, args):
    operation = args["operation"]
    if operation == "account":
        return _account_view(ledger, args["account"])
    if operation == "events":
        events = ledger.events(account=args["account"], server=args["server"], kind=args["kind"])
        if args["move_id"] is not None:
            events = [event for event in events if event.move_id == args["move_id"]]
        return {"events": [event.to_dict() for event in events]}
    if operation == "progress":
        phases, transit = migration_progress.progress(ledger, args["server"], args["infrastructure_version"])
        return {"phases": phases, "transit": transit,
                "plan": migration_progress.plan_text(args["server"], phases, transit)}
    if operation == "accounts":
        return {"accounts": [account.to_dict() for account in ledger.accounts_of(args["server"])]}
    if operation == "addresses":
        return {"addresses": [dict(item.to_dict(), rerouted=item.rerouted) for item in ledger.addresses_of(args["server"])]}
    if operation == "check_reinstall":
        ledger.check_reinstall(args["server"])
        return {"missing": []}
    if operation == "leases":
        return {"leases": [lease.to_dict() for lease in ledger.leases(customer=args["server"])],
                "waiting": [request.to_dict() for request in ledger.waiting_list()]}
    if operation == "server":
        return {"server": ledger.server(args["server"]).to_dict(),
                "only_verified_copy": ledger.only_verified_copy_on(args["server"])}
    ledger.check_wipe(args["server"])
    return {"only_verified_copy": []}


def run_operation(ledger, args, check_mode=False, gone=None):
    """Run one operation; returns the action's result (changed, plus what the operation returns).
    ``gone(holder)`` tells acquire whether a lock's holder is known to be gone."""
    missing = [name for name in REQUIRED[args["operation"]] if args.get(name) in (None, "")]
    if missing:
        raise MissingArgument("ledger operation %s needs %s" % (args["operation"], ", ".join(missing)))
    if args["operation"] in READ_ONLY:
        return dict(changed=False, **_read(ledger, args))
    if check_mode:
        return {"changed": True, "skipped_in_check_mode": True}
    before = _state_before(ledger, args)
    outcome = _write(ledger, args, gone)
    return dict(changed=_changed(args["operation"], before, outcome), **outcome)


# Locks are held for the length of a run; taking and giving them back leaves nothing changed.
TRANSIENT = {"acquire", "release"}


def _changed(operation, before, outcome):
    if operation in TRANSIENT:
        return False
    if operation == "record_wiped":
        return bool(outcome["removed_copies"])
    if before is None:
        return True
    after = outcome.get("move") or outcome.get("server") or outcome.get("account") or outcome.get("address")
    return after != before


def _state_before(ledger, args):
    """What a repeated request finds (a resumed run), or None if the thing is new."""
    operation = args["operation"]
    try:
        if operation == "set_step":
            return ledger.move(args["move_id"]).to_dict()
        if operation in ("register_server", "set_phase"):
            return ledger.server(args["server"]).to_dict()
        if operation == "register_account":
            return ledger.account(args["account"]).to_dict()
        if operation in ("register_address", "route_address"):
            found = ledger.addresses_of_any(args["address"])
            return found[0].to_dict() if found else None
    except NotFound:
        return None
    if operation == "start_move":
        for move in ledger.unfinished_moves():
            if move.account == args["account"] and (move.source, move.target) == (args["source"], args["target"]):
                return move.to_dict()
    return None
