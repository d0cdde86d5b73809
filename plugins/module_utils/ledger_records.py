# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the ledger hands back: frozen records, the step machine of a move, UTC time text.

Times are stored and returned as ISO 8601 text in UTC with a fixed width
(``2025-03-01T12:00:00.000000Z``): the same column type on SQLite and PostgreSQL, readable in a
plain ``sqlite3``/``psql`` session, and ordered correctly by a text comparison.
"""

from __future__ import (absolute_import, division, print_function)

# No "from __future__ import annotations": dataclasses then look the module up in sys.modules,
# which fails when a file is loaded by path.
__metaclass__ = type

import dataclasses
import json
from datetime import datetime, timezone
from typing import Optional

from ansible_collections.hosting.migration.plugins.module_utils.ledger_errors import (
    IllegalTransition, InvalidRequest)

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

COPY_STATES = ("copying", "verified", "stale", "removed")
DIRECTIONS = ("out", "back")
STEPS = ("planned", "precopied", "frozen", "synced", "verified", "switched", "done",
         "rolled_back", "failed")
FINISHED_STEPS = ("done", "rolled_back", "failed")

# Where a move may go from each step. "rolled_back" and "failed" both leave the account served
# from the source; after "switched" the account runs on the target, so only "done" or an
# explicit rollback make sense (a failure there is retried, not recorded as the end).
NEXT_STEPS = {
    "planned": ("precopied", "failed", "rolled_back"),
    "precopied": ("frozen", "failed", "rolled_back"),
    "frozen": ("synced", "failed", "rolled_back"),
    "synced": ("verified", "failed", "rolled_back"),
    "verified": ("switched", "failed", "rolled_back"),
    "switched": ("done", "rolled_back"),
    "done": ("rolled_back",),
    "rolled_back": (),
    "failed": (),
}


def utc_now():
    return datetime.now(timezone.utc)


def format_time(moment):
    """Fixed-width UTC text for an aware datetime."""
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise InvalidRequest("times must be timezone-aware datetimes, got %r (a clock given to "
                             "Ledger.open must return aware datetimes)" % (moment,))
    return moment.astimezone(timezone.utc).strftime(TIME_FORMAT)


def parse_time(text):
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=timezone.utc)


def normalise_time(value):
    """An aware datetime or ISO 8601 text (with an offset or Z) as the ledger's time text."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidRequest("%r is not an ISO 8601 time" % value) from None
    return format_time(value)


def to_json(value, what):
    if value is None:
        return None
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest("%s cannot be stored as JSON: %s" % (what, exc)) from None


def from_json(text):
    return None if text is None else json.loads(text)


def check_transition(move, step):
    """True when ``move`` must change to reach ``step``, False when it is already there."""
    if step not in STEPS:
        raise InvalidRequest("unknown move step %r; the steps are: %s" % (step, ", ".join(STEPS)))
    if step == move.step:
        return False
    allowed = NEXT_STEPS[move.step]
    if step in allowed:
        return True
    if allowed:
        hint = "from %r it can go to: %s" % (move.step, ", ".join(allowed))
    else:
        hint = "the move is finished; start a new move for the account instead"
    raise IllegalTransition("%s is at step %r and cannot go to %r: %s" % (
        move.describe(), move.step, step, hint))


class _Record:
    def to_dict(self):
        """Plain JSON-friendly dict, e.g. for a module's result."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Server(_Record):
    name: str
    infra_version: Optional[str]
    phase: Optional[str]
    phase_since: Optional[str]
    registered_at: str


@dataclasses.dataclass(frozen=True)
class PhaseChange(_Record):
    server: str
    phase: str
    previous_phase: Optional[str]
    at: str


@dataclasses.dataclass(frozen=True)
class Account(_Record):
    name: str
    home_server: str
    live_server: str
    registered_at: str


@dataclasses.dataclass(frozen=True)
class Copy(_Record):
    account: str
    server: str
    state: str
    verified_at: Optional[str]
    digest: Optional[str]
    verification: Optional[dict]
    updated_at: str

    @classmethod
    def from_row(cls, row):
        return cls(**dict(row, verification=from_json(row["verification"])))


@dataclasses.dataclass(frozen=True)
class Move(_Record):
    id: int
    account: str
    source: str
    target: str
    direction: str
    step: str
    step_times: dict  # step -> time, for every step the move has reached
    freeze_started_at: Optional[str]
    freeze_ended_at: Optional[str]
    files_bytes: int
    databases_bytes: int
    verification: Optional[dict]
    error: Optional[str]
    updated_at: str

    @classmethod
    def from_row(cls, row):
        times = {step: row[step + "_at"] for step in STEPS if row[step + "_at"] is not None}
        return cls(
            id=int(row["id"]), account=row["account"], source=row["source"],
            target=row["target"], direction=row["direction"], step=row["step"],
            step_times=times, freeze_started_at=row["freeze_started_at"],
            freeze_ended_at=row["freeze_ended_at"], files_bytes=int(row["files_bytes"]),
            databases_bytes=int(row["databases_bytes"]),
            verification=from_json(row["verification"]), error=row["error"],
            updated_at=row["updated_at"])

    @property
    def finished(self):
        return self.step in FINISHED_STEPS

    @property
    def freeze_window_s(self):
        """Seconds the account was frozen, once the freeze has ended; None before."""
        if self.freeze_started_at is None or self.freeze_ended_at is None:
            return None
        delta = parse_time(self.freeze_ended_at) - parse_time(self.freeze_started_at)
        return delta.total_seconds()

    def describe(self):
        return "move %d (account %s, %s to %s, %s)" % (
            self.id, self.account, self.source, self.target, self.direction)

    def to_dict(self):
        result = dataclasses.asdict(self)
        result.update(finished=self.finished, freeze_window_s=self.freeze_window_s)
        return result


@dataclasses.dataclass(frozen=True)
class Event(_Record):
    id: int
    at: str
    kind: str
    server: Optional[str]
    account: Optional[str]
    move_id: Optional[int]
    details: dict

    @classmethod
    def from_row(cls, row):
        move_id = None if row["move_id"] is None else int(row["move_id"])
        return cls(**dict(row, id=int(row["id"]), move_id=move_id,
                          details=from_json(row["details"])))


@dataclasses.dataclass(frozen=True)
class Lock(_Record):
    name: str
    holder: str
    acquired_at: str
    expires_at: str


@dataclasses.dataclass(frozen=True)
class Lease(_Record):
    id: int
    transit: str
    customer_server: str
    state: str
    started_at: str
    free_days: int
    price_monthly: str
    currency: str
    time_zone: str
    released_at: Optional[str]
    final_amount: Optional[str]
    wiped_at: Optional[str]

    @classmethod
    def from_row(cls, row):
        return cls(**dict(row, id=int(row["id"]), free_days=int(row["free_days"])))

    @property
    def price(self):
        return {"monthly": self.price_monthly, "currency": self.currency}


@dataclasses.dataclass(frozen=True)
class LeaseRequest(_Record):
    id: int
    customer_server: str
    state: str
    requested_at: str
    candidates: list
    free_days: int
    price_monthly: str
    currency: str
    time_zone: str
    lease_id: Optional[int]
    settled_at: Optional[str]

    @classmethod
    def from_row(cls, row):
        lease_id = None if row["lease_id"] is None else int(row["lease_id"])
        return cls(**dict(row, id=int(row["id"]), free_days=int(row["free_days"]),
                          candidates=from_json(row["candidates"]), lease_id=lease_id))


@dataclasses.dataclass(frozen=True)
class Address(_Record):
    address: str
    home_server: str
    routed_to: str
    changed_at: str
    switch_s: Optional[str]

    @property
    def rerouted(self):
        return self.routed_to != self.home_server
