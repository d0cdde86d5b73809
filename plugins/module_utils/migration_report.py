# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The migration report of one customer server: what the ledger records, as data and as HTML.

``collect(ledger, server)`` gathers the server's phases, accounts and their moves (freeze
windows, bytes, verification), service addresses and their reroutes, DNS changes, reinstalls and
leases with their charges, plus a timeline of spans, as a JSON-friendly dict. ``render_html``
turns it into one self-contained page (inline CSS and SVG, no script, nothing fetched);
``write_report`` writes both files atomically and says whether their content changed. See
docs/report.md.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import re
import tempfile
from datetime import datetime, timezone

from ansible_collections.hosting.migration.plugins.module_utils import transit_billing
from ansible_collections.hosting.migration.plugins.module_utils.ledger_records import normalise_time, parse_time
from ansible_collections.hosting.migration.plugins.module_utils.migration_report_html import bytes_text, render_html

# Callers import everything from this module.
__all__ = ["collect", "render_html", "write_report", "report_paths", "ReportError", "REPORT_ARGUMENT_SPEC"]

REPORT_ARGUMENT_SPEC = dict(
    location=dict(type="str", no_log=True),
    server=dict(type="str", required=True),
    dest=dict(type="path", default="./reports"),
    basename=dict(type="str"),
)

FORMAT_VERSION = 1
NONE_YET = "none yet"


class ReportError(ValueError):
    pass


# --- collecting -------------------------------------------------------------------------------

def _float(value):
    try:
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None


def _shift(at, seconds):
    """``at`` moved back by ``seconds`` (the start of something that ended at ``at``)."""
    moment = parse_time(at).timestamp() - (seconds or 0)
    return normalise_time(datetime.fromtimestamp(moment, timezone.utc))


def _verification_summary(move):
    """A short account of what the move's verification compared, tolerant of its shape."""
    found = move.verification or {}
    files = found.get("files") if isinstance(found.get("files"), dict) else {}
    databases = found.get("databases") if isinstance(found.get("databases"), list) else []
    verified_at = move.step_times.get("verified")
    parts = []
    if files:
        parts.append("%s entries, %s" % (files.get("entries", "?"), bytes_text(files.get("bytes"))))
    if databases:
        parts.append("databases %s" % ", ".join(str(name) for name in databases))
    if "crontab" in found:
        parts.append("crontab")
    return {
        "verified": verified_at is not None,
        "verified_at": verified_at,
        "file_entries": files.get("entries"),
        "databases": [str(name) for name in databases],
        "text": ("equal: " + "; ".join(parts) if parts else "equal") if verified_at else "not verified",
    }


def _move_view(move):
    return {
        "id": move.id, "direction": move.direction, "source": move.source, "target": move.target,
        "step": move.step, "finished": move.finished, "step_times": dict(move.step_times),
        "freeze_started_at": move.freeze_started_at, "freeze_ended_at": move.freeze_ended_at,
        "freeze_window_s": move.freeze_window_s, "files_bytes": move.files_bytes,
        "databases_bytes": move.databases_bytes, "verification": _verification_summary(move),
        "error": move.error,
    }


def _accounts(ledger, server):
    views = []
    for account in ledger.accounts_of(server):
        views.append({
            "name": account.name, "home_server": account.home_server, "live_server": account.live_server,
            "registered_at": account.registered_at,
            "copies": [{"server": copy.server, "state": copy.state, "verified_at": copy.verified_at}
                       for copy in ledger.copies(account.name)],
            "moves": [_move_view(move) for move in ledger.moves_of(account.name)],
        })
    return views


def _addresses(ledger, server):
    reroutes = {}
    for event in ledger.events(server=server, kind="address.rerouted"):
        details = event.details or {}
        reroutes.setdefault(details.get("address"), []).append({
            "at": event.at, "from": details.get("from"), "to": details.get("to"),
            "switch_s": _float(details.get("switch_s"))})
    return [{"address": item.address, "routed_to": item.routed_to, "rerouted": item.rerouted,
             "changed_at": item.changed_at, "reroutes": reroutes.get(item.address, [])}
            for item in ledger.addresses_of(server)]


def _dns_record(change):
    return {
        "name": change.get("name"), "type": change.get("type") or change.get("rtype"), "zone": change.get("zone"),
        "old_ttl": change.get("old_ttl"), "old_addresses": list(change.get("old_addresses") or []),
        "new_ttl": change.get("new_ttl"), "new_addresses": list(change.get("new_addresses") or []),
    }


def _dns(ledger, server, account_names):
    changes, restores = [], []
    for kind, into in (("dns_changed", changes), ("dns_restored", restores)):
        for event in ledger.events(kind=kind):
            if event.server != server and event.account not in account_names:
                continue
            details = event.details or {}
            purpose = details.get("purpose") or (
                "account %s moved (move %s)" % (event.account, event.move_id) if event.account else kind.replace("_", " "))
            records = details.get("changes") if isinstance(details.get("changes"), list) else []
            into.append({"at": event.at, "purpose": purpose, "account": event.account, "move_id": event.move_id,
                         "records": [_dns_record(change) for change in records if isinstance(change, dict)]})
    return changes, restores


def _lease_view(lease, now):
    view = {key: getattr(lease, key) for key in (
        "id", "transit", "state", "started_at", "released_at", "wiped_at", "free_days", "price_monthly",
        "currency", "time_zone", "final_amount")}
    try:
        charge = transit_billing.charge(lease.price, lease.started_at, lease.released_at, free_days=lease.free_days,
                                        time_zone=lease.time_zone, now=now, server=lease.customer_server)
    except transit_billing.BillingError as error:
        view.update(charge_error=str(error), amount=lease.final_amount, running=lease.released_at is None)
        return view
    # A running lease is billed up to the report's time; its billed_until is that time, left out
    # so that the report's content only changes when the amount, the days or the warning do.
    view.update({key: charge[key] for key in (
        "free_until", "running", "billed_days", "first_billed_day", "last_billed_day", "amount", "breakdown",
        "free_period_ends_in_days", "warning")})
    return view


def _waiting(ledger, server):
    for position, request in enumerate(ledger.waiting_list(), 1):
        if request.customer_server == server:
            return {"position": position, "requested_at": request.requested_at, "candidates": list(request.candidates)}
    return None


def _phase_spans(history):
    spans = []
    for index, change in enumerate(history):
        end = history[index + 1].at if index + 1 < len(history) else None
        spans.append({"row": "phases", "kind": "phase", "label": change.phase, "start": change.at, "end": end})
    return spans


def _timeline(history, accounts, addresses, dns_changes, dns_restores, reinstalls, leases):
    spans = _phase_spans(history)
    for lease in leases:
        spans.append({"row": "lease", "kind": "lease", "label": "lease %s: %s" % (lease["id"], lease["transit"]),
                      "start": lease["started_at"], "end": lease["released_at"]})
    for item in reinstalls:
        spans.append({"row": "reinstall", "kind": "reinstall", "label": "reinstalled (%s)" % (item["version"] or "?"),
                      "start": _shift(item["at"], item["elapsed_s"]), "end": item["at"]})
    for address in addresses:
        for reroute in address["reroutes"]:
            spans.append({"row": "addresses", "kind": "reroute", "address": address["address"],
                          "label": "%s to %s" % (address["address"], reroute["to"]), "switch_s": reroute["switch_s"],
                          "start": reroute["at"], "end": reroute["at"]})
    for kind, entries in (("dns", dns_changes), ("dns_restore", dns_restores)):
        for entry in entries:
            spans.append({"row": "DNS", "kind": kind, "label": entry["purpose"], "records": len(entry["records"]),
                          "start": entry["at"], "end": entry["at"]})
    for account in accounts:
        for move in account["moves"]:
            times = move["step_times"]
            spans.append({"row": "account " + account["name"], "kind": "move", "account": account["name"],
                          "move_id": move["id"], "label": "%s %s to %s (%s)" % (
                              move["direction"], move["source"], move["target"], move["step"]),
                          "start": times.get("planned"), "end": _move_end(move)})
            if move["freeze_started_at"]:
                spans.append({"row": "account " + account["name"], "kind": "freeze", "account": account["name"],
                              "move_id": move["id"], "label": "frozen (%s)" % move["direction"],
                              "seconds": move["freeze_window_s"], "start": move["freeze_started_at"],
                              "end": move["freeze_ended_at"]})
    return spans


def _move_end(move):
    if not move["finished"]:
        return None
    times = move["step_times"]
    return times.get(move["step"]) or max(times.values())


def _reinstalls(ledger, server):
    found = []
    for event in ledger.events(server=server, kind="server.reinstalled"):
        details = event.details or {}
        found.append({"at": event.at, "version": details.get("version"), "driver": details.get("driver"),
                      "elapsed_s": _float(details.get("elapsed_s"))})
    return found


def _versions(ledger, server):
    versions = []
    for event in ledger.events(server=server, kind="server.infra_version"):
        version = (event.details or {}).get("infra_version")
        if version and (not versions or versions[-1]["version"] != version):
            versions.append({"version": version, "at": event.at})
    return versions


def _summary(server, accounts, addresses, dns_changes, leases, waiting):
    moves = [move for account in accounts for move in account["moves"]]
    freezes = [(move["freeze_window_s"], account["name"]) for account in accounts for move in account["moves"]
               if move["freeze_window_s"] is not None]
    live_on = {}
    for account in accounts:
        live_on[account["live_server"]] = live_on.get(account["live_server"], 0) + 1
    reroutes = [dict(reroute, address=address["address"]) for address in addresses for reroute in address["reroutes"]]
    switches = [reroute["switch_s"] for reroute in reroutes if reroute["switch_s"] is not None]
    amounts = {}
    for lease in leases:
        if lease.get("amount") is not None:
            cents = int(lease["amount"].replace(".", ""))
            amounts[lease["currency"]] = amounts.get(lease["currency"], 0) + cents
    largest = max(freezes) if freezes else (None, None)
    return {
        "server": server.name,
        "infra_version": server.infra_version,
        "status": server.phase or "not started",
        "accounts_total": len(accounts),
        "accounts_live_on": live_on,
        "moves_total": len(moves),
        "moves_done": len([move for move in moves if move["step"] == "done"]),
        "moves_unfinished": len([move for move in moves if not move["finished"]]),
        "freeze_total_s": round(sum(seconds for seconds, dummy in freezes), 6),
        "freeze_max_s": largest[0],
        "freeze_max_account": largest[1],
        "files_bytes": sum(move["files_bytes"] for move in moves),
        "databases_bytes": sum(move["databases_bytes"] for move in moves),
        "bytes_moved": sum(move["files_bytes"] + move["databases_bytes"] for move in moves),
        "reroutes": [{"address": reroute["address"], "to": reroute["to"], "switch_s": reroute["switch_s"]}
                     for reroute in reroutes],
        "switch_max_s": max(switches) if switches else None,
        "dns_records_changed": sum(len(entry["records"]) for entry in dns_changes),
        "lease_amount": ", ".join("%d.%02d %s" % (divmod(cents, 100) + (currency,))
                                  for currency, cents in sorted(amounts.items())) or None,
        "lease_running": any(lease.get("running") for lease in leases),
        "waiting_position": waiting["position"] if waiting else None,
    }


def collect(ledger, server, now=None):
    """Everything the ledger records about customer server ``server``, as a JSON-friendly dict.

    ``now`` (aware datetime or ISO text; default the ledger's clock) is the report's time: running
    leases are billed up to it.
    """
    record = ledger.server(server)
    now = normalise_time(now if now is not None else ledger.now())
    history = ledger.phase_history(server)
    accounts = _accounts(ledger, server)
    addresses = _addresses(ledger, server)
    dns_changes, dns_restores = _dns(ledger, server, {account["name"] for account in accounts})
    reinstalls = _reinstalls(ledger, server)
    leases = [_lease_view(lease, now) for lease in ledger.leases(customer=server)]
    waiting = _waiting(ledger, server)
    return {
        "format": FORMAT_VERSION,
        "generated_at": now,
        "server": dict(record.to_dict(), versions=_versions(ledger, server),
                       phase_history=[change.to_dict() for change in history]),
        "summary": _summary(record, accounts, addresses, dns_changes, leases, waiting),
        "accounts": accounts,
        "addresses": addresses,
        "dns_changes": dns_changes,
        "dns_restores": dns_restores,
        "reinstalls": reinstalls,
        "leases": leases,
        "waiting": waiting,
        "timeline": _timeline(history, accounts, addresses, dns_changes, dns_restores, reinstalls, leases),
    }


# --- writing ----------------------------------------------------------------------------------

GENERATED = re.compile(r'<time class="generated"[^>]*>[^<]*</time>')


def _stable_json(data):
    return json.dumps({key: value for key, value in data.items() if key != "generated_at"}, sort_keys=True)


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError):
        return None


def _unchanged(html_path, json_path, data, page):
    old_page, old_json = _read(html_path), _read(json_path)
    if old_page is None or old_json is None:
        return False
    try:
        old_data = json.loads(old_json)
    except ValueError:
        return False
    return (isinstance(old_data, dict) and _stable_json(old_data) == _stable_json(data)
            and GENERATED.sub("", old_page) == GENERATED.sub("", page))


def _write_atomically(directory, path, text):
    handle, temporary = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def report_paths(dest, basename):
    if not basename or "/" in basename or basename.startswith("."):
        raise ReportError("the report's basename must be a file name without a directory that does not start "
                          "with a dot, got %r" % (basename,))
    directory = os.path.abspath(os.path.expanduser(dest))
    return directory, os.path.join(directory, basename + ".html"), os.path.join(directory, basename + ".json")


def write_report(dest, basename, data, page, check_mode=False):
    """Write ``<dest>/<basename>.html`` and ``.json`` (creating ``dest``), each atomically.

    Returns (html_path, json_path, changed). Files whose content is the same apart from the time of
    generation are left as they are (changed is False); in check mode nothing is written.
    """
    directory, html_path, json_path = report_paths(dest, basename)
    if _unchanged(html_path, json_path, data, page):
        return html_path, json_path, False
    if check_mode:
        return html_path, json_path, True
    try:
        os.makedirs(directory, exist_ok=True)
        _write_atomically(directory, json_path, json.dumps(data, indent=2, sort_keys=True) + "\n")
        _write_atomically(directory, html_path, page)
    except OSError as error:
        raise ReportError("cannot write the report into %s: %s" % (directory, error)) from None
    return html_path, json_path, True
