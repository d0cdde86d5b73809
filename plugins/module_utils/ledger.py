# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The state store ("ledger"): the controller's record of truth for migrations.

Which account lives where and is verified where, every move with its steps, timings, bytes and
verification results, each server's migration phase, an event log for reports, and named locks
between controllers. SQLite by default, PostgreSQL by DSN (AWX, several controllers); see
docs/state-store.md.

    with Ledger.open("postgresql://ledger@db.example/ledger") as ledger:
        move = ledger.start_move("alice", "dedicated1", "transit1", "out")
        ledger.set_step(move.id, "precopied", files_bytes=123)

Every method that changes something is one transaction; results are frozen records
(ledger_records) with ``to_dict()`` for module results; errors are ``LedgerError`` subclasses.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import contextlib
import ipaddress
from datetime import timedelta

from ansible_collections.hosting.migration.plugins.module_utils import ledger_leases, ledger_locks, ledger_moves
from ansible_collections.hosting.migration.plugins.module_utils.ledger_backend import open_backend
from ansible_collections.hosting.migration.plugins.module_utils.ledger_errors import (
    AccountConflict, IllegalTransition, InvalidRequest, LedgerBusy, LedgerError, LedgerUnavailable,
    LockHeld, LockNotHeld, MoveConflict, MoveRefused, NotFound, NotLeased, OnlyVerifiedCopy, ReinstallRefused,
    SchemaTooNew, UnknownAccount, UnknownMove, UnknownServer)
from ansible_collections.hosting.migration.plugins.module_utils.ledger_records import (
    COPY_STATES, DIRECTIONS, FINISHED_STEPS, NEXT_STEPS, STEPS, Account, Address, Copy, Event, Lease, LeaseRequest,
    Lock, Move, PhaseChange, Server, format_time, normalise_time, utc_now)
from ansible_collections.hosting.migration.plugins.module_utils.ledger_rows import (
    add_event, check_copy_state, check_name, ensure_server, load_account, load_copy, load_move,
    put_copy)
from ansible_collections.hosting.migration.plugins.module_utils.ledger_schema import MIGRATIONS, migrate

# Callers import everything from this module.
__all__ = [
    "Ledger", "Account", "Address", "Copy", "Event", "Lease", "LeaseRequest", "Lock", "Move", "PhaseChange", "Server",
    "COPY_STATES", "DIRECTIONS", "FINISHED_STEPS", "NEXT_STEPS", "STEPS", "MIGRATIONS",
    "AccountConflict", "IllegalTransition", "InvalidRequest", "LedgerBusy", "LedgerError",
    "LedgerUnavailable", "LockHeld", "LockNotHeld", "MoveConflict", "MoveRefused", "NotFound", "NotLeased", "ReinstallRefused",
    "OnlyVerifiedCopy", "SchemaTooNew", "UnknownAccount", "UnknownMove", "UnknownServer",
]

UNFINISHED = "step NOT IN ('done', 'rolled_back', 'failed')"


def _normal_address(text):
    try:
        return str(ipaddress.ip_address(str(text).strip()))
    except ValueError:
        raise InvalidRequest("%r is not an IP address" % (text,)) from None


class Ledger:
    """An open ledger. Use :meth:`open`; close it, or use it as a context manager."""

    def __init__(self, backend, clock, schema_version):
        self._db = backend
        self._clock = clock
        self.schema_version = schema_version

    @classmethod
    def open(cls, location=None, clock=None, timeout_s=30.0, migrations=MIGRATIONS):
        """Open (and create or migrate) the ledger at ``location``.

        ``location``: a file path, ``sqlite:///abs/path`` or ``postgresql://...``; None means
        ``$HOSTING_MIGRATION_LEDGER``, then ``~/.local/state/hosting-migration/ledger.sqlite3``.
        ``clock``: returns the current time as an aware datetime (tests inject their own).
        ``timeout_s``: how long to wait for another controller's transaction.
        """
        backend = open_backend(location, timeout_s)
        try:
            ledger = cls(backend, clock or utc_now, 0)
            ledger.schema_version = migrate(backend, ledger._now(), migrations)
        except BaseException:
            backend.close()
            raise
        return ledger

    @property
    def location(self):
        """Where the ledger is, without any password."""
        return self._db.description

    def close(self):
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _now(self):
        return format_time(self._clock())

    def now(self):
        """The ledger's current time (an aware datetime; tests inject their clock)."""
        return self._clock()

    def table_names(self):
        return self._db.table_names()

    # Servers

    def register_server(self, name, infra_version=None):
        """Record a server (again); ``infra_version`` updates what it runs when given."""
        check_name(name, "the server")
        now = self._now()

        def change():
            ensure_server(self._db, now, name)
            if infra_version is not None and self._db.run(
                    "UPDATE servers SET infra_version = ? WHERE name = ? "
                    "AND (infra_version IS NULL OR infra_version <> ?)",
                    (str(infra_version), name, str(infra_version))):
                add_event(self._db, now, "server.infra_version", server=name,
                          details={"infra_version": str(infra_version)})
            return self.server(name)
        return self._db.write(change)

    def servers(self):
        return [Server(**row) for row in self._db.rows("SELECT * FROM servers ORDER BY name")]

    def server(self, name):
        row = self._db.row("SELECT * FROM servers WHERE name = ?", (name,))
        if row is None:
            raise UnknownServer("the ledger has no server %r; register it first" % (name,))
        return Server(**row)

    def set_phase(self, name, phase):
        """Record the phase of the server's required migration; the same phase again is a no-op."""
        check_name(name, "the server")
        check_name(phase, "the phase")
        now = self._now()

        def change():
            ensure_server(self._db, now, name)
            previous = self.server(name).phase
            if previous != phase:
                self._db.run("UPDATE servers SET phase = ?, phase_since = ? WHERE name = ?",
                             (phase, now, name))
                self._db.run("INSERT INTO server_phases (server, phase, previous_phase, at) "
                             "VALUES (?, ?, ?, ?)", (name, phase, previous, now))
                add_event(self._db, now, "server.phase", server=name,
                          details={"phase": phase, "previous_phase": previous})
            return self.server(name)
        return self._db.write(change)

    def phase_history(self, name):
        rows = self._db.rows("SELECT server, phase, previous_phase, at FROM server_phases "
                             "WHERE server = ? ORDER BY id", (name,))
        return [PhaseChange(**row) for row in rows]

    # Accounts and their copies

    def register_account(self, name, home_server, live_server=None):
        """Record an account of ``home_server``, served from ``live_server`` (default: home).

        The live copy is recorded as verified: it is the account's data by definition. Doing it
        again is a no-op; a different home, or a different live server when one is given, is
        refused.
        """
        check_name(name, "the account")
        check_name(home_server, "the home server")
        live = check_name(live_server, "the live server") if live_server else home_server
        now = self._now()

        def change():
            row = self._db.row("SELECT * FROM accounts WHERE name = ?", (name,))
            if row is None:
                return self._add_account(now, name, home_server, live)
            account = Account(**row)
            if account.home_server != home_server or (live_server and account.live_server != live):
                raise AccountConflict(
                    "account %s is recorded with home %s, served from %s; it cannot be registered "
                    "again with home %s, served from %s" % (
                        name, account.home_server, account.live_server, home_server, live))
            return account
        return self._db.write(change)

    def _add_account(self, now, name, home_server, live):
        ensure_server(self._db, now, home_server)
        ensure_server(self._db, now, live)
        self._db.run("INSERT INTO accounts (name, home_server, live_server, registered_at) "
                     "VALUES (?, ?, ?, ?)", (name, home_server, live, now))
        put_copy(self._db, now, name, live, "verified",
                 (None, {"basis": "registered as the live copy"}))
        add_event(self._db, now, "account.registered", server=home_server, account=name,
                  details={"live_server": live})
        return load_account(self._db, name)

    def account(self, name):
        return load_account(self._db, name)

    def live_server(self, account):
        """The server the account is served from."""
        return load_account(self._db, account).live_server

    def accounts_of(self, server):
        """The accounts whose home is ``server`` (the customer's server they belong to)."""
        rows = self._db.rows("SELECT * FROM accounts WHERE home_server = ? ORDER BY name", (server,))
        return [Account(**row) for row in rows]

    def accounts_live_on(self, server):
        rows = self._db.rows("SELECT * FROM accounts WHERE live_server = ? ORDER BY name", (server,))
        return [Account(**row) for row in rows]

    def copies(self, account):
        load_account(self._db, account)
        rows = self._db.rows("SELECT * FROM copies WHERE account = ? ORDER BY server", (account,))
        return [Copy.from_row(row) for row in rows]

    def set_copy(self, account, server, state, digest=None, verification=None):
        """Record the state of a copy outside a move (e.g. a check found it verified or stale).

        ``digest`` and ``verification`` belong to a copy recorded as "verified": they describe
        that verification. The live copy cannot be recorded as anything but verified.
        """
        check_name(server, "the server")
        check_copy_state(state)
        if state != "verified" and (digest is not None or verification is not None):
            raise InvalidRequest("a digest or verification results are recorded with state "
                                 "'verified', not %r" % state)
        now = self._now()

        def change():
            live = load_account(self._db, account).live_server
            if server == live and state != "verified":
                raise MoveRefused("account %s is served from %s: that copy is the live data and "
                                  "cannot be recorded as %s; move the account first" % (
                                      account, server, state))
            fresh = (digest, verification or {}) if state == "verified" else None
            put_copy(self._db, now, account, server, state, fresh)
            return load_copy(self._db, account, server)
        return self._db.write(change)

    def only_verified_copy_on(self, server):
        """Accounts for which ``server`` holds the only copy in state "verified".

        The guard every destructive step calls before reinstalling or wiping a server: while
        this is not empty, doing so would lose the only verified copy of these accounts.
        """
        rows = self._db.rows(
            "SELECT c.account FROM copies c WHERE c.server = ? AND c.state = 'verified' "
            "AND NOT EXISTS (SELECT 1 FROM copies o WHERE o.account = c.account "
            "AND o.server <> c.server AND o.state = 'verified') ORDER BY c.account", (server,))
        return [row["account"] for row in rows]

    def check_wipe(self, server):
        """Raise OnlyVerifiedCopy unless ``server`` can be wiped or reinstalled without loss."""
        only = self.only_verified_copy_on(server)
        live = [account.name for account in self.accounts_live_on(server)]
        blocked = sorted(set(only) | set(live))
        if blocked:
            reasons = ["%s (%s)" % (name, "only verified copy" if name in only else "served from it")
                       for name in blocked]
            raise OnlyVerifiedCopy(
                "server %s cannot be wiped or reinstalled: it still holds %s; move these accounts "
                "and verify their copies elsewhere first" % (server, ", ".join(reasons)), blocked)

    def record_wiped(self, server):
        """Record that every copy on ``server`` is gone; the accounts whose copy was removed."""
        check_name(server, "the server")
        now = self._now()

        def change():
            self.check_wipe(server)
            rows = self._db.rows("SELECT account FROM copies WHERE server = ? "
                                 "AND state <> 'removed' ORDER BY account", (server,))
            for row in rows:
                put_copy(self._db, now, row["account"], server, "removed")
            names = [row["account"] for row in rows]
            add_event(self._db, now, "server.wiped", server=server, details={"accounts": names})
            return names
        return self._db.write(change)

    # Moves

    def start_move(self, account, source, target, direction):
        """A new planned move, or the account's unfinished move when it is the same one.

        Refused while the account has a different unfinished move, or is not live on ``source``.
        """
        ledger_moves.check_move_request(account, source, target, direction)
        now = self._now()
        return self._db.write(lambda: ledger_moves.start_move(
            self._db, now, account, source, target, direction))

    def set_step(self, move_id, step, files_bytes=None, databases_bytes=None, verification=None,
                 digest=None, error=None):
        """Take a move to ``step`` (see STEPS and NEXT_STEPS); the step it is at is a no-op.

        Bytes given are added to the move's totals; ``digest`` and ``verification`` with
        "verified" are recorded on both copies; ``error`` is required with "failed".
        """
        now = self._now()
        return self._db.write(lambda: ledger_moves.set_step(
            self._db, now, move_id, step, files_bytes, databases_bytes, verification, digest,
            error))

    def move(self, move_id):
        return load_move(self._db, move_id)

    def moves_of(self, account):
        rows = self._db.rows("SELECT * FROM moves WHERE account = ? ORDER BY id", (account,))
        return [Move.from_row(row) for row in rows]

    def unfinished_moves(self, server=None):
        """Moves not yet done, rolled back or failed; those from or to ``server`` when given."""
        if server is None:
            rows = self._db.rows("SELECT * FROM moves WHERE %s ORDER BY id" % UNFINISHED)
        else:
            rows = self._db.rows("SELECT * FROM moves WHERE %s AND (source = ? OR target = ?) "
                                 "ORDER BY id" % UNFINISHED, (server, server))
        return [Move.from_row(row) for row in rows]

    # Events

    def record_event(self, kind, server=None, account=None, move_id=None, details=None):
        check_name(kind, "the event kind")
        now = self._now()
        event_id = self._db.write(lambda: add_event(
            self._db, now, kind, server, account, move_id, details))
        return Event.from_row(self._db.row("SELECT * FROM events WHERE id = ?", (event_id,)))

    def events(self, since=None, account=None, server=None, kind=None):
        """The log, oldest first; only events at or after ``since`` (datetime or ISO text)."""
        filters, params = [], []
        since = None if since is None else normalise_time(since)
        for column, value in (("at >=", since), ("account =", account), ("server =", server),
                              ("kind =", kind)):
            if value is not None:
                filters.append(column + " ?")
                params.append(value)
        where = " WHERE " + " AND ".join(filters) if filters else ""
        rows = self._db.rows("SELECT * FROM events%s ORDER BY id" % where, params)
        return [Event.from_row(row) for row in rows]

    # Service addresses and where they are routed

    def register_address(self, address, home_server):
        """Record a service address of ``home_server`` (routed to it); again changes nothing."""
        address = _normal_address(address)
        check_name(home_server, "the server")
        now = self._now()

        def change():
            ensure_server(self._db, now, home_server)
            found = self._db.row("SELECT * FROM addresses WHERE address = ?", (address,))
            if found is not None:
                if found["home_server"] != home_server:
                    raise InvalidRequest("address %s belongs to %s, not %s" % (address, found["home_server"], home_server))
                return Address(**found)
            self._db.run("INSERT INTO addresses (address, home_server, routed_to, changed_at) VALUES (?, ?, ?, ?)",
                         (address, home_server, home_server, now))
            add_event(self._db, now, "address.registered", server=home_server, details={"address": address})
            return Address(**self._db.row("SELECT * FROM addresses WHERE address = ?", (address,)))
        return self._db.write(change)

    def route_address(self, address, routed_to, switch_s=None):
        """Record that ``address`` now reaches ``routed_to`` (with the measured switch time)."""
        address = _normal_address(address)
        check_name(routed_to, "the server")
        now = self._now()

        def change():
            found = self._db.row("SELECT * FROM addresses WHERE address = ?", (address,))
            if found is None:
                raise NotFound("address %s is not recorded; register it with its server first" % address)
            if found["routed_to"] == routed_to:
                return Address(**found)
            ensure_server(self._db, now, routed_to)
            self._db.run("UPDATE addresses SET routed_to = ?, changed_at = ?, switch_s = ? WHERE address = ?",
                         (routed_to, now, None if switch_s is None else str(switch_s), address))
            add_event(self._db, now, "address.rerouted", server=found["home_server"], details={
                "address": address, "from": found["routed_to"], "to": routed_to, "switch_s": switch_s})
            return Address(**self._db.row("SELECT * FROM addresses WHERE address = ?", (address,)))
        return self._db.write(change)

    def addresses_of_any(self, address):
        """The record of ``address`` as a list (empty when it is not recorded)."""
        rows = self._db.rows("SELECT * FROM addresses WHERE address = ?", (_normal_address(address),))
        return [Address(**row) for row in rows]

    def addresses_of(self, server):
        """The service addresses whose home is ``server``."""
        rows = self._db.rows("SELECT * FROM addresses WHERE home_server = ? ORDER BY address", (server,))
        return [Address(**row) for row in rows]

    def check_reinstall(self, server):
        """Raise ReinstallRefused unless ``server`` can be reinstalled: every account whose home
        it is lives on another server with a verified copy there, nothing is served from it or
        only verified on it, and every one of its service addresses is routed elsewhere. The
        error's ``missing`` lists each reason as a sentence."""
        missing = []
        for account in self.accounts_of(server):
            if account.live_server == server:
                missing.append("account %s is still served from %s" % (account.name, server))
                continue
            copies = {copy.server: copy.state for copy in self.copies(account.name)}
            if copies.get(account.live_server) != "verified":
                missing.append("account %s has no verified copy on %s, where it is served"
                               % (account.name, account.live_server))
        missing += ["%s holds the only verified copy of %s" % (server, name)
                    for name in self.only_verified_copy_on(server)]
        addresses = self.addresses_of(server)
        if not addresses:
            missing.append("no service address of %s is recorded" % server)
        missing += ["address %s is still routed to %s" % (item.address, server)
                    for item in addresses if not item.rerouted]
        if missing:
            raise ReinstallRefused("server %s cannot be reinstalled yet: %s" % (server, "; ".join(missing)), missing)

    # Leases of transit servers (ledger_leases)

    def lease_transit(self, customer, candidates, terms, queue=True):
        """Lease the first free server of ``candidates`` (best first) to ``customer`` or queue
        the request, first come first served. ``terms``: free_days, price_monthly (exact
        decimal text), currency, time_zone. Returns (lease, request, position in line); an
        active lease of the customer is returned as it is."""
        now = self._now()
        return self._db.write(lambda: ledger_leases.claim(self._db, now, customer, list(candidates), terms, queue))

    def withdraw_lease_request(self, customer):
        """Take the customer server's waiting request off the list; False when it had none."""
        now = self._now()
        return self._db.write(lambda: ledger_leases.withdraw(self._db, now, customer))

    def release_transit(self, transit, final_amount):
        """Close the lease of ``transit`` and hand it to the next request in line.

        Refused (OnlyVerifiedCopy) while the server holds the only verified copy of an account
        or serves one; NotLeased when it holds no lease. ``final_amount(lease, released_at)``
        returns the charge as exact decimal text. Returns (released lease, new lease or None).
        """
        check_name(transit, "the transit server")
        now = self._now()

        def change():
            self.check_wipe(transit)
            return ledger_leases.release(self._db, now, transit, final_amount)
        return self._db.write(change)

    def leases(self, customer=None, transit=None):
        return ledger_leases.leases(self._db, customer, transit)

    def active_lease(self, customer=None, transit=None):
        """The active lease of the customer server, or of the transit server; None if none."""
        if customer is not None:
            return ledger_leases.active_lease_of_customer(self._db, customer)
        return ledger_leases.active_lease_of_transit(self._db, transit)

    def waiting_list(self):
        """The waiting requests, first in line first."""
        return ledger_leases.waiting_requests(self._db)

    # Locks

    def acquire(self, name, holder, ttl_s, gone=None):
        """Take the named lock for ``ttl_s`` seconds, or raise LockHeld naming its holder.

        An expired lock is taken over (and the takeover logged), and so is one whose holder
        ``gone(holder)`` says is gone (see ledger_locks.holder_gone); the same holder acquiring
        again renews it. ``holder`` says who holds it, e.g. "awx job 42 on host x, pid 123".
        """
        now, expires = self._lock_times(name, holder, ttl_s)
        return self._db.write(lambda: ledger_locks.acquire(self._db, now, expires, name, holder, gone))

    def renew(self, name, holder, ttl_s):
        """Extend a lock ``holder`` holds to ``ttl_s`` seconds from now."""
        expires = self._lock_times(name, holder, ttl_s)[1]
        return self._db.write(lambda: ledger_locks.renew(self._db, expires, name, holder))

    def release(self, name, holder):
        """Release a lock ``holder`` holds; False if nobody held it."""
        check_name(name, "the lock name")
        return self._db.write(lambda: ledger_locks.release(self._db, name, holder))

    @contextlib.contextmanager
    def holding(self, name, holder, ttl_s):
        """``with ledger.holding(name, holder, ttl_s):`` acquire, and release at the end."""
        lock = self.acquire(name, holder, ttl_s)
        try:
            yield lock
        finally:
            self.release(name, holder)

    def lock_info(self, name):
        """The lock's record (expired or not), None when nobody holds it."""
        return ledger_locks.lock_info(self._db, name)

    def _lock_times(self, name, holder, ttl_s):
        check_name(name, "the lock name")
        check_name(holder, "the lock holder")
        if isinstance(ttl_s, bool) or not isinstance(ttl_s, (int, float)) or not ttl_s > 0:
            raise InvalidRequest("the time to live of lock %r must be a positive number of "
                                 "seconds, got %r" % (name, ttl_s))
        moment = self._clock()
        return format_time(moment), format_time(moment + timedelta(seconds=ttl_s))
