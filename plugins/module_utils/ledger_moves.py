# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Moves of an account between servers: starting or resuming one, and its step machine.

Each function runs in the caller's transaction and keeps the ledger's invariants together with
the step (see docs/state-store.md, "The step machine"):

- the copy an account is served from ("live") is always in state "verified";
- "switched" needs the target's copy verified, and moves the live server with it;
- a rollback after the switch needs the source's copy still there, and makes it live again.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.hosting.migration.plugins.module_utils.ledger_errors import (
    InvalidRequest, MoveConflict, MoveRefused)
from ansible_collections.hosting.migration.plugins.module_utils.ledger_records import (
    DIRECTIONS, check_transition, to_json)
from ansible_collections.hosting.migration.plugins.module_utils.ledger_rows import (
    add_event, check_name, ensure_server, load_account, load_copy, load_move, put_copy,
    unfinished_move_of)

# Terminal steps that leave the account where it was before the switch.
ABANDONED = ("rolled_back", "failed")


def check_move_request(account, source, target, direction):
    check_name(account, "the account")
    check_name(source, "the source server")
    check_name(target, "the target server")
    if direction not in DIRECTIONS:
        raise InvalidRequest("the direction of a move is 'out' (to a transit server) or 'back', "
                             "not %r" % (direction,))
    if source == target:
        raise InvalidRequest("account %s cannot move from %s to itself" % (account, source))


def start_move(db, now, account, source, target, direction):
    """The account's unfinished move if it is this one (resume), else a new planned move."""
    existing = unfinished_move_of(db, account)
    if existing is not None:
        if (existing.source, existing.target, existing.direction) == (source, target, direction):
            return existing
        raise MoveConflict(
            "account %s already has an unfinished %s at step %r; finish it or roll it back before "
            "moving the account %s to %s" % (account, existing.describe(), existing.step,
                                             direction, target))
    record = load_account(db, account)
    if record.live_server != source:
        raise MoveRefused("account %s is served from %s, not from %s; a move starts where the "
                          "account is live" % (account, record.live_server, source))
    if direction == "back" and target != record.home_server:
        raise MoveRefused("account %s belongs on %s: a move back goes there, not to %s" % (
            account, record.home_server, target))
    ensure_server(db, now, target)
    row = db.row(
        "INSERT INTO moves (account, source, target, direction, step, planned_at, updated_at) "
        "VALUES (?, ?, ?, ?, 'planned', ?, ?) RETURNING id",
        (account, source, target, direction, now, now))
    # From now on the target may hold partial data of the account.
    put_copy(db, now, account, target, "copying", move_id=row["id"])
    add_event(db, now, "move.started", server=source, account=account, move_id=row["id"],
              details={"target": target, "direction": direction})
    return load_move(db, row["id"])


def set_step(db, now, move_id, step, files_bytes=None, databases_bytes=None,
             verification=None, digest=None, error=None):
    """Take the move to ``step``; asking for the step it is at changes nothing."""
    move = load_move(db, move_id)
    if not check_transition(move, step):
        return move
    _check_details(move, step, files_bytes, databases_bytes, digest, error)
    if step == "switched":
        _switch(db, now, move)
    elif step == "rolled_back" and move.step in ("switched", "done"):
        _switch_back(db, now, move)
    elif step == "verified":
        # Both sides were frozen and compared equal: both now hold this verified content.
        for server in (move.target, move.source):
            put_copy(db, now, move.account, server, "verified", (digest, verification), move.id)
    elif step in ABANDONED:
        put_copy(db, now, move.account, move.target, "stale", move_id=move.id)
    _update_move(db, now, move, step, files_bytes, databases_bytes, verification, error)
    add_event(db, now, "move.step", server=move.target, account=move.account, move_id=move.id,
              details={"from": move.step, "to": step, "error": error})
    return load_move(db, move_id)


def _switch(db, now, move):
    copy = load_copy(db, move.account, move.target)
    if copy is None or copy.state != "verified":
        raise MoveRefused("%s cannot switch: the copy on %s is %s, not verified" % (
            move.describe(), move.target, copy.state if copy else "missing"))
    db.run("UPDATE accounts SET live_server = ? WHERE name = ?", (move.target, move.account))
    # Served from the target, the account changes there: the source copy falls behind.
    put_copy(db, now, move.account, move.source, "stale", move_id=move.id)


def _switch_back(db, now, move):
    account = load_account(db, move.account)
    latest = db.row("SELECT MAX(id) AS id FROM moves WHERE account = ?", (move.account,))
    if int(latest["id"]) != move.id:
        raise MoveRefused("%s cannot be rolled back: move %s of the account came after it; roll "
                          "that one back instead" % (move.describe(), latest["id"]))
    if account.live_server != move.target:
        raise MoveRefused("%s cannot be rolled back: the account is served from %s, not %s" % (
            move.describe(), account.live_server, move.target))
    copy = load_copy(db, move.account, move.source)
    if copy is None or copy.state == "removed":
        raise MoveRefused("%s cannot be rolled back: the copy on %s was removed (the server was "
                          "reinstalled or wiped), so there is nothing to go back to" % (
                              move.describe(), move.source))
    db.run("UPDATE accounts SET live_server = ? WHERE name = ?", (move.source, move.account))
    put_copy(db, now, move.account, move.source, "verified", move_id=move.id)
    put_copy(db, now, move.account, move.target, "stale", move_id=move.id)


def _check_details(move, step, files_bytes, databases_bytes, digest, error):
    if step == "failed" and not error:
        raise InvalidRequest("%s: a failed move needs the error text that stopped it" % move.describe())
    if digest is not None and step != "verified":
        raise InvalidRequest("%s: a digest is recorded with step 'verified', not %r" % (
            move.describe(), step))
    for name, amount in (("files_bytes", files_bytes), ("databases_bytes", databases_bytes)):
        if amount is not None and (not isinstance(amount, int) or isinstance(amount, bool) or amount < 0):
            raise InvalidRequest("%s: %s must be a whole number of bytes, got %r" % (
                move.describe(), name, amount))


def _update_move(db, now, move, step, files_bytes, databases_bytes, verification, error):
    # Only this step's time column is set: step names come from STEPS, never from input.
    assignments = ["step = ?", "%s_at = ?" % step, "updated_at = ?"]
    params = [step, now, now]
    if step == "frozen":
        assignments.append("freeze_started_at = ?")
        params.append(now)
    elif move.freeze_started_at and not move.freeze_ended_at and (
            step == "switched" or step in ABANDONED):
        # Served again, from the target or from the source: the freeze is over.
        assignments.append("freeze_ended_at = ?")
        params.append(now)
    # Bytes add up: a pre-copy and a final sync each report what they transferred.
    for column, amount in (("files_bytes", files_bytes), ("databases_bytes", databases_bytes)):
        if amount is not None:
            assignments.append("%s = %s + ?" % (column, column))
            params.append(amount)
    if verification is not None:
        assignments.append("verification = ?")
        params.append(to_json(verification, "the verification results"))
    if error is not None:
        assignments.append("error = ?")
        params.append(str(error))
    db.run("UPDATE moves SET %s WHERE id = ?" % ", ".join(assignments), params + [move.id])
