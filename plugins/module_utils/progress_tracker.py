# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the hosting.migration.progress callback says, worked out from task results alone.

Few lines, meant to be read in AWX's job output: one per phase (play), one when an account's move
starts (i of N, elapsed, estimate of the time left) and one when it is done (its duration, its
freeze window, the bytes copied). The estimate is the mean duration of the moves done so far in
this phase times the moves left.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import time


def _human_time(seconds):
    seconds = int(round(seconds))
    if seconds < 60:
        return "%d s" % seconds
    if seconds < 3600:
        return "%d min %02d s" % divmod(seconds, 60)
    hours, rest = divmod(seconds, 3600)
    return "%d h %02d min" % (hours, rest // 60)


def _human_bytes(count):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return ("%d %s" % (count, unit)) if unit == "B" else ("%.1f %s" % (count, unit))
        count /= 1024.0
    return "%d B" % count  # pragma: no cover - the loop returns


class ProgressTracker:
    """Feed it play starts and task results; it returns the lines to print (maybe none)."""

    PREFIX = "[hosting.migration]"

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.phase = None
        self.phase_started = None
        self.pending = []
        self.started = {}   # move id -> (account, started at)
        self.finished = {}  # move id -> seconds
        self.bytes = {}     # account -> bytes copied in this phase

    def play_start(self, name):
        self.phase, self.phase_started = name, self.clock()
        self.pending, self.started, self.finished, self.bytes = [], {}, {}, {}
        return ["%s phase: %s" % (self.PREFIX, name)]

    def result(self, action, result):
        """Lines for one task result (``action``: the task's action, ``result``: its result dict)."""
        facts = result.get("ansible_facts") or {}
        if "migrate_pending" in facts:
            self.pending = list(facts["migrate_pending"] or [])
            if self.pending:
                return ["%s %d account(s) to move: %s" % (self.PREFIX, len(self.pending), ", ".join(self.pending))]
            return ["%s no account left to move" % self.PREFIX]
        if action.endswith("account_sync"):
            return self._count(result, (result.get("stats") or {}).get("bytes_sent"))
        if action.endswith("database_copy"):
            return self._count(result, result.get("bytes"))
        move = result.get("move")
        if action.endswith("ledger") and isinstance(move, dict) and move.get("id") is not None:
            return self._move(move)
        return []

    def _current_account(self):
        for move_id, (account, _started) in reversed(list(self.started.items())):
            if move_id not in self.finished:
                return account
        return None

    def _count(self, result, count):
        account = self._current_account()
        if account is not None and isinstance(count, int) and not result.get("failed"):
            self.bytes[account] = self.bytes.get(account, 0) + count
        return []

    def _move(self, move):
        move_id, account = move["id"], move.get("account")
        now = self.clock()
        if move_id not in self.started and move.get("step") not in ("done", "rolled_back", "failed"):
            self.started[move_id] = (account, now)
            total = len(self.pending) or 1
            number = self.pending.index(account) + 1 if account in self.pending else len(self.started)
            left = ""
            if self.finished:
                mean = sum(self.finished.values()) / len(self.finished)
                left = ", about %s left" % _human_time(mean * (total - len(self.finished)))
            resumed = "" if move.get("step") == "planned" else ", resumed at step %s" % move.get("step")
            return ["%s move %d of %d: %s, %s to %s (%s elapsed%s%s)" % (
                self.PREFIX, number, total, account, move.get("source"), move.get("target"),
                _human_time(now - self.phase_started), left, resumed)]
        if move.get("step") in ("done", "rolled_back", "failed") and move_id in self.started \
                and move_id not in self.finished:
            self.finished[move_id] = now - self.started[move_id][1]
            freeze = move.get("freeze_window_s")
            return ["%s %s %s in %s: freeze %s, %s copied" % (
                self.PREFIX, account, move["step"].replace("_", " "), _human_time(self.finished[move_id]),
                "%.1f s" % freeze if isinstance(freeze, (int, float)) else "none",
                _human_bytes(self.bytes.get(account, 0)))]
        return []
