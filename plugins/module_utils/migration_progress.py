# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the required migration of a customer server stands, read from the ledger: each phase of
the procedure done or still to do, with what is left (the accounts still to move, the addresses
still to reroute). hosting.migration.required_migration prints it, and in check mode only it."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.hosting.migration.plugins.module_utils.ledger_errors import NotFound

PHASES = (
    ("lease", "lease a transit server"),
    ("dns_ahead", "lower the TTL of the server's DNS records"),
    ("move_out", "move every account to the transit server"),
    ("reroute_out", "reroute the service addresses to the transit server"),
    ("reinstall", "reinstall the server on the new infrastructure version"),
    ("move_back", "move every account back to the server"),
    ("reroute_back", "reroute the service addresses back"),
    ("restore_dns", "restore the DNS records"),
    ("release", "release the transit server"),
)


def _events(ledger, server, kind):
    return ledger.events(server=server, kind=kind)


def progress(ledger, server, target_version):
    """[{phase, title, done, left}] in the order of the procedure, and the transit server (or None).

    ``left`` lists what remains of a phase (accounts, addresses) as short texts.
    """
    try:
        record = ledger.server(server)
    except NotFound:  # never seen: nothing done yet
        return [{"phase": phase, "title": title, "done": False, "left": []} for phase, title in PHASES], None
    accounts = ledger.accounts_of(server)
    leases = ledger.leases(customer=server)
    lease = leases[-1] if leases else None
    transit = lease.transit if lease is not None else None
    addresses = ledger.addresses_of(server)
    rerouted = {event.details.get("address") for event in _events(ledger, server, "address.rerouted")
                if event.details.get("to") == transit}
    moves = {account.name: ledger.moves_of(account.name) for account in accounts}

    def moved(name, direction):
        return any(move.direction == direction and move.step == "done" for move in moves[name])

    reinstalled = str(record.infra_version) == str(target_version) and any(
        True for _event in _events(ledger, server, "server.reinstalled"))
    ttl_lowered = any("ttl" in str(event.details.get("purpose", "")).lower()
                      for event in _events(ledger, server, "dns_changed"))
    done = {
        "lease": lease is not None,
        "dns_ahead": ttl_lowered,
        "move_out": bool(accounts) and all(moved(a.name, "out") for a in accounts),
        "reroute_out": bool(addresses) and all(item.address in rerouted for item in addresses),
        "reinstall": reinstalled,
        "move_back": bool(accounts) and all(moved(a.name, "back") and a.live_server == server for a in accounts),
        "reroute_back": bool(addresses) and all(item.address in rerouted and not item.rerouted for item in addresses),
        "restore_dns": bool(_events(ledger, server, "dns_restored")),
        "release": lease is not None and lease.state == "released",
    }
    left = {
        "move_out": [a.name for a in accounts if not moved(a.name, "out")],
        "move_back": [a.name for a in accounts if not (moved(a.name, "back") and a.live_server == server)],
        "reroute_out": [item.address for item in addresses if item.address not in rerouted],
        "reroute_back": [item.address for item in addresses if item.rerouted],
    }
    return [{"phase": phase, "title": title, "done": done[phase], "left": left.get(phase, []) if not done[phase] else []}
            for phase, title in PHASES], transit


def plan_text(server, phases, transit):
    """The plan as lines a person reads: each phase, done or to do, with what is left."""
    lines = ["Required migration of %s%s:" % (server, " (transit server %s)" % transit if transit else "")]
    for number, phase in enumerate(phases, 1):
        mark = "done" if phase["done"] else "to do"
        detail = ""
        if phase["left"]:
            detail = ": " + ", ".join(phase["left"])
        lines.append("%2d. %-6s %s%s" % (number, mark, phase["title"], detail))
    remaining = [phase for phase in phases if not phase["done"]]
    lines.append("%d of %d phases done; next: %s" % (
        len(phases) - len(remaining), len(phases), remaining[0]["title"] if remaining else "nothing, it is complete"))
    return "\n".join(lines)
