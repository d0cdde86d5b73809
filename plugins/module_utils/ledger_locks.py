# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Named locks between controllers, with a holder and an expiry time.

A lock that expired stays in the table until someone takes it over, so a run that was killed
while holding it is named in the event log when the next run takes over. Each function runs in
the caller's transaction, which is what makes "exactly one of two racing controllers wins".

A holder made by :func:`process_holder` names the controller and its process; a lock whose
holder ran on this controller and whose process is gone (killed, crashed) is taken over at once
rather than after it expires (:func:`holder_gone`).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re
import socket

from ansible_collections.hosting.migration.plugins.module_utils.ledger_errors import (
    LockHeld, LockNotHeld)
from ansible_collections.hosting.migration.plugins.module_utils.ledger_records import Lock
from ansible_collections.hosting.migration.plugins.module_utils.ledger_rows import add_event


def lock_info(db, name):
    row = db.row("SELECT * FROM locks WHERE name = ?", (name,))
    return None if row is None else Lock(**row)


PROCESS_RE = re.compile(r" \[controller (?P<host>[^ \]]+) pid (?P<pid>[0-9]+) started (?P<started>[0-9]+)\]$")


def _process_start(pid, proc="/proc"):
    """When process ``pid`` started (clock ticks since boot), None when there is no such process."""
    try:
        with open(os.path.join(proc, str(pid), "stat")) as handle:
            stat = handle.read()
    except (OSError, ValueError):
        return None
    # The command name (field 2) is in parentheses and may hold spaces; field 22 is the start time.
    fields = stat[stat.rfind(")") + 2:].split()
    return int(fields[19]) if len(fields) > 19 else None


def process_holder(label, pid=None, hostname=None, proc="/proc"):
    """``label`` with this controller's name and process (``pid``, default the parent: an Ansible
    worker's parent is the ansible-playbook process), which :func:`holder_gone` can check later."""
    pid = os.getppid() if pid is None else pid
    hostname = socket.gethostname() if hostname is None else hostname
    return "%s [controller %s pid %d started %s]" % (label, hostname, pid, _process_start(pid, proc) or 0)


def holder_gone(holder, hostname=None, proc="/proc"):
    """True when ``holder`` names a process of this controller that no longer runs."""
    found = PROCESS_RE.search(holder or "")
    if not found or found.group("host") != (socket.gethostname() if hostname is None else hostname):
        return False
    return _process_start(int(found.group("pid")), proc) != int(found.group("started"))


def acquire(db, now, expires, name, holder, gone=None):
    """Take the lock until ``expires``; the same holder again renews it. ``gone(holder)`` says
    whether another holder's process is known to be gone, so its lock can be taken over now."""
    lock = lock_info(db, name)
    if lock is None:
        db.run("INSERT INTO locks (name, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?)",
               (name, holder, now, expires))
    elif lock.holder == holder:
        db.run("UPDATE locks SET expires_at = ? WHERE name = ?", (expires, name))
    elif lock.expires_at <= now or (gone is not None and gone(lock.holder)):
        db.run("UPDATE locks SET holder = ?, acquired_at = ?, expires_at = ? WHERE name = ?",
               (holder, now, expires, name))
        add_event(db, now, "lock.taken_over", details={
            "lock": name, "holder": holder, "previous_holder": lock.holder,
            "expired_at": lock.expires_at,
            "reason": "expired" if lock.expires_at <= now else "its process is gone"})
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
