# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The hosting.migration.transit_lease action's logic: the request read from the inventory and
checked in full before the ledger is touched, then leasing, waiting in line, withdrawing and
releasing with the final charge (ledger_leases, transit_match, transit_billing)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import time

from ansible_collections.hosting.migration.plugins.module_utils import transit_billing, transit_match
from ansible_collections.hosting.migration.plugins.module_utils.ledger_errors import NotLeased

TRANSIT_LEASE_ARGUMENT_SPEC = dict(
    location=dict(type="str", no_log=True),
    server=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent", "released", "info"]),
    pool=dict(type="str", default="transit_pool"),
    target_version=dict(type="str"),
    free_days=dict(type="int", default=transit_billing.DEFAULT_FREE_DAYS),
    time_zone=dict(type="str", default=transit_billing.DEFAULT_TIME_ZONE),
    warn_days=dict(type="int", default=transit_billing.DEFAULT_WARN_DAYS),
    queue=dict(type="bool", default=True),
    wait=dict(type="bool", default=False),
    timeout_s=dict(type="int", default=3600),
    poll_s=dict(type="float", default=10.0),
    withdraw_on_timeout=dict(type="bool", default=False),
)


class LeaseFailed(Exception):
    """The request cannot be served as asked; the message says why and what is left."""

    def __init__(self, message, **details):
        super(LeaseFailed, self).__init__(message)
        self.details = details


def _host(hostvars, name):
    try:
        return hostvars[name]
    except KeyError:
        return None


def read_request(args, groups, hostvars):
    """The customer server, its profile and price, and the pool, from the inventory; raises
    LeaseFailed for anything wrong, before anything is changed."""
    server, pool = args["server"], args["pool"]
    if server not in groups.get("all", []):
        raise LeaseFailed("%s is not a host of the inventory" % server)
    members = list(groups.get(pool, []))
    if server in members:
        raise LeaseFailed("%s is a transit server of the pool %s, not a customer server" % (server, pool))
    if args["state"] not in ("present", "info") or (args["state"] == "info" and not args["target_version"]):
        return {"server": server, "matched": {"matching": [], "rejected": {}}}
    customer = _host(hostvars, server)
    for key in ("server_profile", "server_price"):
        if key not in customer:
            raise LeaseFailed("%s has no %s in the inventory (see docs/transit.md)" % (server, key))
    price = customer["server_price"]
    try:
        transit_billing.parse_price(price, server=server)
        transit_billing.parse_free_days(args["free_days"])
        transit_billing.billing_zone(args["time_zone"])
        candidates = [{
            "name": name,
            "profile": _host(hostvars, name).get("server_profile"),
            "infrastructure_version": _host(hostvars, name).get("infrastructure_version"),
        } for name in members]
        if not members:
            raise transit_match.NoPoolError(
                "no transit server can serve %s: the inventory group %s is empty or missing" % (server, pool))
        matched = transit_match.match(server, customer["server_profile"], args["target_version"], candidates)
    except (transit_billing.BillingError, transit_match.MatchError) as error:
        raise LeaseFailed(str(error))
    return {
        "server": server,
        "matched": matched,
        "terms": {
            "free_days": args["free_days"],
            "price_monthly": str(transit_billing.parse_price(price, server=server)[0]),
            "currency": transit_billing.parse_price(price, server=server)[1],
            "time_zone": args["time_zone"],
        },
    }


def lease_view(ledger, lease, warn_days):
    """The lease as a dict with its charge so far, at the ledger's time (or its final charge)."""
    if lease is None:
        return None
    view = lease.to_dict()
    view["charge"] = transit_billing.charge(
        lease.price, lease.started_at, lease.released_at, free_days=lease.free_days,
        time_zone=lease.time_zone, now=ledger.now(), warn_days=warn_days, server=lease.customer_server)
    return view


def final_amount(lease, released_at):
    return transit_billing.charge(
        lease.price, lease.started_at, released_at, free_days=lease.free_days, time_zone=lease.time_zone,
        server=lease.customer_server)["amount"]


# While a request waits, its place is said when it changes and otherwise once a minute: an hour in
# line reads as sixty lines in AWX's output, not one per poll.
SAY_EVERY_S = 60


def _waiting(ledger, server):
    for position, request in enumerate(ledger.waiting_list(), 1):
        if request.customer_server == server:
            return request, position
    return None, None


def present(ledger, request, args, say=None, sleep=time.sleep, clock=time.monotonic):
    """Lease, or queue and (with wait) wait in line. Returns the action's result."""
    server, matched = request["server"], request["matched"]
    before = ledger.active_lease(customer=server), _waiting(ledger, server)[0]
    started = clock()
    deadline = started + args["timeout_s"]
    said = None  # (place, when) of the last line said: a line when the place changes, else once a minute
    while True:
        lease, waiting, position = ledger.lease_transit(server, matched["matching"], request["terms"],
                                                        queue=args["queue"])
        if lease is not None or not args["wait"] or waiting is None:
            break
        if clock() >= deadline:
            withdrawn = args["withdraw_on_timeout"] and ledger.withdraw_lease_request(server)
            raise LeaseFailed(
                "no transit server for %s became free within %d s (matching: %s); the request %s" % (
                    server, args["timeout_s"], ", ".join(matched["matching"]),
                    "was withdrawn" if withdrawn else "is still queued at place %d (withdraw it with "
                    "state=absent)" % position),
                request=waiting.to_dict(), position=None if withdrawn else position)
        now = clock()
        if say is not None and (said is None or said[0] != position or now - said[1] >= SAY_EVERY_S):
            say("%s waits for a transit server (%s): place %d in line%s" % (
                server, ", ".join(matched["matching"]), position,
                ", %d s so far" % (now - started) if said is not None else ""))
            said = (position, now)
        sleep(min(args["poll_s"], max(0.0, deadline - clock())))
    changed = (before[0] is None and lease is not None) or (before[1] is None and waiting is not None)
    return {
        "changed": bool(changed),
        "transit": lease.transit if lease is not None else None,
        "lease": lease_view(ledger, lease, args["warn_days"]),
        "queued": lease is None and waiting is not None,
        "request": waiting.to_dict() if waiting is not None else None,
        "position": position if lease is None else None,
        "matching": matched["matching"],
        "rejected": matched["rejected"],
    }


def absent(ledger, request):
    withdrawn = ledger.withdraw_lease_request(request["server"])
    return {"changed": withdrawn, "withdrawn": withdrawn,
            "lease": lease_view(ledger, ledger.active_lease(customer=request["server"]), transit_billing.DEFAULT_WARN_DAYS)}


def released(ledger, request, args):
    """Close the customer server's lease with its final charge; the released lease again when
    it was released before (nothing changed)."""
    server = request["server"]
    lease = ledger.active_lease(customer=server)
    if lease is None:
        previous = ledger.leases(customer=server)
        if not previous:
            raise LeaseFailed("%s never had a transit server: there is no lease to release" % server)
        return {"changed": False, "transit": previous[-1].transit, "lease": lease_view(ledger, previous[-1], args["warn_days"]),
                "handed_to": None}
    try:
        closed, handed = ledger.release_transit(lease.transit, final_amount)
    except NotLeased as error:
        raise LeaseFailed(str(error))
    return {"changed": True, "transit": closed.transit, "lease": lease_view(ledger, closed, args["warn_days"]),
            "handed_to": None if handed is None else handed.to_dict()}


def info(ledger, request, args):
    server = request["server"]
    waiting, position = _waiting(ledger, server)
    leases = ledger.leases(customer=server)
    current = ledger.active_lease(customer=server)
    return {"changed": False, "transit": current.transit if current else None,
            "lease": lease_view(ledger, current, args["warn_days"]),
            "leases": [lease_view(ledger, lease, args["warn_days"]) for lease in leases],
            "queued": waiting is not None, "request": waiting.to_dict() if waiting else None,
            "position": position, "matching": request["matched"]["matching"],
            "rejected": request["matched"]["rejected"]}


def run(ledger, args, groups, hostvars, say=None, sleep=time.sleep, clock=time.monotonic):
    request = read_request(args, groups, hostvars)
    if args["state"] == "present":
        return present(ledger, request, args, say, sleep, clock)
    if args["state"] == "absent":
        return absent(ledger, request)
    if args["state"] == "released":
        return released(ledger, request, args)
    return info(ledger, request, args)
