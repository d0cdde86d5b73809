# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Row-level helpers shared by the ledger's operations; each runs inside the caller's transaction."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.hosting.migration.plugins.module_utils.ledger_errors import (
    InvalidRequest, UnknownAccount, UnknownMove)
from ansible_collections.hosting.migration.plugins.module_utils.ledger_records import (
    COPY_STATES, Account, Copy, Move, to_json)

NAME_MAX = 255


def check_name(value, what):
    """Names of servers, accounts, locks: non-empty text without surrounding blanks."""
    if not isinstance(value, str) or not value or value != value.strip() or len(value) > NAME_MAX:
        raise InvalidRequest("%s must be a non-empty name of at most %d characters without "
                             "surrounding spaces, got %r" % (what, NAME_MAX, value))
    if any(ord(char) < 32 for char in value):
        raise InvalidRequest("%s must not contain control characters, got %r" % (what, value))
    return value


def check_copy_state(state):
    if state not in COPY_STATES:
        raise InvalidRequest("unknown copy state %r; the states are: %s" % (
            state, ", ".join(COPY_STATES)))
    return state


def ensure_server(db, now, name):
    """Register a server the first time anything refers to it."""
    db.run("INSERT INTO servers (name, registered_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
           (name, now))


def add_event(db, now, kind, server=None, account=None, move_id=None, details=None):
    """Append to the event log; the new event's id."""
    row = db.row("INSERT INTO events (at, kind, server, account, move_id, details) "
                 "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                 (now, kind, server, account, move_id, to_json(details or {}, "the event's details")))
    return row["id"]


def load_account(db, name):
    row = db.row("SELECT * FROM accounts WHERE name = ?", (name,))
    if row is None:
        raise UnknownAccount("the ledger has no account %r; register it first (the prepare "
                             "playbook registers every account of a server)" % name)
    return Account(**row)


def load_copy(db, account, server):
    row = db.row("SELECT * FROM copies WHERE account = ? AND server = ?", (account, server))
    return None if row is None else Copy.from_row(row)


def put_copy(db, now, account, server, state, new_verification=None, move_id=None):
    """Record the state of ``account``'s copy on ``server``.

    ``new_verification`` is the (digest, results) of a verification done now: it replaces the
    copy's last one and stamps verified_at. Without it the copy keeps what it was last verified
    with, so a copy that went stale still shows what it held.
    """
    ensure_server(db, now, server)
    if new_verification is not None:
        digest, results = new_verification
        verified_at, results = now, to_json(results, "the verification results")
    else:
        old = db.row("SELECT verified_at, digest, verification FROM copies "
                     "WHERE account = ? AND server = ?", (account, server)) or {}
        verified_at, digest, results = (old.get("verified_at"), old.get("digest"),
                                        old.get("verification"))
    db.run(
        "INSERT INTO copies (account, server, state, verified_at, digest, verification, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (account, server) DO UPDATE SET state = excluded.state, "
        "verified_at = excluded.verified_at, digest = excluded.digest, "
        "verification = excluded.verification, updated_at = excluded.updated_at",
        (account, server, state, verified_at, digest, results, now))
    add_event(db, now, "copy.state", server=server, account=account, move_id=move_id,
              details={"state": state, "digest": digest})


def load_move(db, move_id):
    row = db.row("SELECT * FROM moves WHERE id = ?", (move_id,))
    if row is None:
        raise UnknownMove("the ledger has no move %r" % (move_id,))
    return Move.from_row(row)


def unfinished_move_of(db, account):
    row = db.row("SELECT * FROM moves WHERE account = ? "
                 "AND step NOT IN ('done', 'rolled_back', 'failed')", (account,))
    return None if row is None else Move.from_row(row)
