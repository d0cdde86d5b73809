# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Named locks between controllers, with a holder and an expiry time.

A lock that expired stays in the table until someone takes it over, so a run that was killed
while holding it is named in the event log when the next run takes over. Each function runs in
the caller's transaction, which is what makes "exactly one of two racing controllers wins".
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.hosting.migration.plugins.module_utils.ledger_errors import (
    LockHeld, LockNotHeld)
from ansible_collections.hosting.migration.plugins.module_utils.ledger_records import Lock
from ansible_collections.hosting.migration.plugins.module_utils.ledger_rows import add_event


def lock_info(db, name):
    row = db.row("SELECT * FROM locks WHERE name = ?", (name,))
    return None if row is None else Lock(**row)


def acquire(db, now, expires, name, holder):
    """Take the lock until ``expires``; the same holder again renews it."""
    lock = lock_info(db, name)
    if lock is None:
        db.run("INSERT INTO locks (name, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?)",
               (name, holder, now, expires))
    elif lock.holder == holder:
        db.run("UPDATE locks SET expires_at = ? WHERE name = ?", (expires, name))
    elif lock.expires_at <= now:
        db.run("UPDATE locks SET holder = ?, acquired_at = ?, expires_at = ? WHERE name = ?",
               (holder, now, expires, name))
        add_event(db, now, "lock.taken_over", details={
            "lock": name, "holder": holder, "previous_holder": lock.holder,
            "expired_at": lock.expires_at})
    else:
        raise LockHeld(name, lock.holder, lock.expires_at)
    return lock_info(db, name)


def renew(db, expires, name, holder):
    """Extend the lock; also when it expired, as long as nobody has taken it over."""
    check_holder(db, name, holder, "renew")
    db.run("UPDATE locks SET expires_at = ? WHERE name = ?", (expires, name))
    return lock_info(db, name)


def release(db, name, holder):
    """Remove the lock; False when nobody held it (a release is safe to repeat)."""
    if lock_info(db, name) is None:
        return False
    check_holder(db, name, holder, "release")
    db.run("DELETE FROM locks WHERE name = ?", (name,))
    return True


def check_holder(db, name, holder, action):
    lock = lock_info(db, name)
    if lock is None:
        raise LockNotHeld("cannot %s lock %r: nobody holds it; acquire it again" % (action, name))
    if lock.holder != holder:
        raise LockNotHeld("cannot %s lock %r for %s: it is held by %s (until %s)" % (
            action, name, holder, lock.holder, lock.expires_at))
