# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The errors of the state store. Each message is a sentence an operator can act on."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class LedgerError(Exception):
    """Base of everything the ledger raises on purpose."""


class InvalidRequest(LedgerError, ValueError):
    """An argument the ledger cannot record (unknown step, empty name, negative TTL...)."""


class LedgerUnavailable(LedgerError):
    """The ledger cannot be opened or reached: wrong location, missing driver, server down."""


class LedgerBusy(LedgerError):
    """Other controllers kept the ledger locked longer than the timeout allows."""


class SchemaTooNew(LedgerError):
    """The ledger was migrated by a newer release of the collection than this one."""


class NotFound(LedgerError, LookupError):
    """Base of the errors for a server, account or move the ledger has no record of."""


class UnknownServer(NotFound):
    pass


class UnknownAccount(NotFound):
    pass


class UnknownMove(NotFound):
    pass


class AccountConflict(LedgerError):
    """An account is registered again with a different home or live server."""


class MoveConflict(LedgerError):
    """A move was requested while a different move of the same account is unfinished."""


class MoveRefused(LedgerError):
    """A move, rollback or copy change that would contradict what the ledger records."""


class IllegalTransition(LedgerError):
    """A move was asked to go to a step its step machine does not allow from where it is."""


class OnlyVerifiedCopy(LedgerError):
    """A destructive step on a server that still holds the only verified copy of accounts."""

    def __init__(self, message, accounts):
        super(OnlyVerifiedCopy, self).__init__(message)
        self.accounts = list(accounts)


class LockHeld(LedgerError):
    """A named lock is held by someone else and has not expired."""

    def __init__(self, name, holder, expires_at):
        super(LockHeld, self).__init__(
            "lock %r is held by %s until %s; wait for it to finish or, if that run is gone, "
            "for the lock to expire" % (name, holder, expires_at))
        self.name = name
        self.holder = holder
        self.expires_at = expires_at


class LockNotHeld(LedgerError):
    """Release or renewal of a lock by someone who does not hold it."""


class NotLeased(NotFound):
    """A release, or a question about a lease, for a transit server that holds no lease."""


class ReinstallRefused(LedgerError):
    """A server cannot be reinstalled yet; ``missing`` says why, one sentence per reason."""

    def __init__(self, message, missing):
        super(ReinstallRefused, self).__init__(message)
        self.missing = missing
