# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Leases of transit servers and their waiting list, inside the caller's transaction.

First come, first served: a free matching server goes to the earliest waiting request that can
use it. A request that arrives while others wait may only take a server none of the earlier
requests can use. A released server is handed at once to the earliest waiting request that can
use it (its lease starts then). The unique indexes of the schema make a double lease impossible
even if this code were wrong; the serializable transactions make one of two racing controllers
win and the other see the winner's lease.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.hosting.migration.plugins.module_utils.ledger_errors import (
    InvalidRequest, NotLeased)
from ansible_collections.hosting.migration.plugins.module_utils.ledger_records import (
    Lease, LeaseRequest, to_json)
from ansible_collections.hosting.migration.plugins.module_utils.ledger_rows import (
    add_event, check_name, ensure_server)


def active_lease_of_customer(db, customer):
    row = db.row("SELECT * FROM leases WHERE customer_server = ? AND state = 'active'", (customer,))
    return None if row is None else Lease.from_row(row)


def active_lease_of_transit(db, transit):
    row = db.row("SELECT * FROM leases WHERE transit = ? AND state = 'active'", (transit,))
    return None if row is None else Lease.from_row(row)


def latest_lease_of_transit(db, transit):
    row = db.row("SELECT * FROM leases WHERE transit = ? ORDER BY id DESC LIMIT 1", (transit,))
    return None if row is None else Lease.from_row(row)


def load_lease(db, lease_id):
    row = db.row("SELECT * FROM leases WHERE id = ?", (lease_id,))
    return None if row is None else Lease.from_row(row)


def waiting_requests(db):
    return [LeaseRequest.from_row(row) for row in db.rows(
        "SELECT * FROM lease_requests WHERE state = 'waiting' ORDER BY id")]


def waiting_request_of(db, customer):
    row = db.row("SELECT * FROM lease_requests WHERE customer_server = ? AND state = 'waiting'", (customer,))
    return None if row is None else LeaseRequest.from_row(row)


def position_in_line(db, request):
    """1 for the head of the waiting list."""
    row = db.row("SELECT COUNT(*) AS ahead FROM lease_requests WHERE state = 'waiting' AND id < ?", (request.id,))
    return int(row["ahead"]) + 1


def check_terms(terms):
    """terms: free_days, price_monthly (exact decimal text), currency, time_zone."""
    if isinstance(terms.get("free_days"), bool) or not isinstance(terms.get("free_days"), int) \
            or terms["free_days"] < 0:
        raise InvalidRequest("the free period must be a whole number of days, 0 or more, got %r"
                             % (terms.get("free_days"),))
    for key in ("price_monthly", "currency", "time_zone"):
        if not isinstance(terms.get(key), str) or not terms[key]:
            raise InvalidRequest("the lease's %s must be given as text, got %r" % (key, terms.get(key)))


def _start_lease(db, now, customer, transit, terms, request=None):
    ensure_server(db, now, transit)
    db.run("INSERT INTO leases (transit, customer_server, state, started_at, free_days, price_monthly, "
           "currency, time_zone) VALUES (?, ?, 'active', ?, ?, ?, ?, ?)",
           (transit, customer, now, terms["free_days"], terms["price_monthly"], terms["currency"],
            terms["time_zone"]))
    lease = active_lease_of_transit(db, transit)
    if request is not None:
        db.run("UPDATE lease_requests SET state = 'served', lease_id = ?, settled_at = ? WHERE id = ?",
               (lease.id, now, request.id))
    add_event(db, now, "lease.started", server=customer, details={
        "lease": lease.id, "transit": transit, "request": request.id if request else None})
    return lease


def claim(db, now, customer, candidates, terms, queue=True):
    """Lease the first free matching transit server to ``customer``, or queue the request.

    ``candidates``: the transit servers that match the customer server, best first (see
    transit_match). Returns (lease, request, position): the lease when there is one (an
    existing active lease of the customer is returned as it is), otherwise the waiting request
    and its place in line (or, with ``queue`` false, no request).
    """
    check_name(customer, "the customer server")
    for name in candidates:
        check_name(name, "a transit server")
    check_terms(terms)
    ensure_server(db, now, customer)
    existing = active_lease_of_customer(db, customer)
    own = waiting_request_of(db, customer)
    if existing is not None:
        if own is not None:
            db.run("UPDATE lease_requests SET state = 'served', lease_id = ?, settled_at = ? WHERE id = ?",
                   (existing.id, now, own.id))
        return existing, None, None
    busy = {row["transit"] for row in db.rows("SELECT transit FROM leases WHERE state = 'active'")}
    earlier = [request for request in waiting_requests(db) if own is None or request.id < own.id]
    for transit in candidates:
        if transit in busy or any(transit in request.candidates for request in earlier):
            continue
        return _start_lease(db, now, customer, transit, terms, own), None, None
    if own is None and queue:
        db.run("INSERT INTO lease_requests (customer_server, state, requested_at, candidates, free_days, "
               "price_monthly, currency, time_zone) VALUES (?, 'waiting', ?, ?, ?, ?, ?, ?)",
               (customer, now, to_json(list(candidates), "the candidates"), terms["free_days"], terms["price_monthly"],
                terms["currency"], terms["time_zone"]))
        own = waiting_request_of(db, customer)
        add_event(db, now, "lease.queued", server=customer, details={
            "request": own.id, "candidates": list(candidates), "position": position_in_line(db, own)})
    return None, own, position_in_line(db, own) if own is not None else None


def withdraw(db, now, customer):
    """Take the customer's waiting request off the list; False when it had none."""
    own = waiting_request_of(db, customer)
    if own is None:
        return False
    db.run("UPDATE lease_requests SET state = 'withdrawn', settled_at = ? WHERE id = ?", (now, own.id))
    add_event(db, now, "lease.withdrawn", server=customer, details={"request": own.id})
    return True


def release(db, now, transit, final_amount):
    """Close the transit server's lease with ``final_amount(lease, now)`` and hand the server to
    the earliest waiting request that can use it. Returns (released lease, new lease or None)."""
    lease = active_lease_of_transit(db, transit)
    if lease is None:
        latest = latest_lease_of_transit(db, transit)
        if latest is None:
            raise NotLeased("%s was never leased: there is nothing to release" % transit)
        raise NotLeased("%s holds no lease: lease %d (for %s) was released at %s"
                        % (transit, latest.id, latest.customer_server, latest.released_at))
    amount = final_amount(lease, now)
    db.run("UPDATE leases SET state = 'released', released_at = ?, final_amount = ?, wiped_at = ? WHERE id = ?",
           (now, amount, now, lease.id))
    add_event(db, now, "lease.released", server=lease.customer_server, details={
        "lease": lease.id, "transit": transit, "final_amount": amount, "currency": lease.currency})
    for request in waiting_requests(db):
        if transit in request.candidates:
            terms = {key: getattr(request, key) for key in ("free_days", "price_monthly", "currency", "time_zone")}
            handed = _start_lease(db, now, request.customer_server, transit, terms, request)
            add_event(db, now, "lease.handed_over", server=request.customer_server, details={
                "lease": handed.id, "transit": transit, "previous_lease": lease.id})
            return load_lease(db, lease.id), handed
    return load_lease(db, lease.id), None


def leases(db, customer=None, transit=None):
    where, params = [], []
    if customer is not None:
        where.append("customer_server = ?")
        params.append(customer)
    if transit is not None:
        where.append("transit = ?")
        params.append(transit)
    sql = "SELECT * FROM leases%s ORDER BY id" % (" WHERE " + " AND ".join(where) if where else "")
    return [Lease.from_row(row) for row in db.rows(sql, tuple(params))]
