# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of hosting.migration.ledger: the state store is read and written on the
controller, where its SQLite file or its PostgreSQL connection lives, never on a server."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible.plugins.action import ActionBase

from ansible_collections.hosting.migration.plugins.module_utils.ledger import Ledger
from ansible_collections.hosting.migration.plugins.module_utils.ledger_errors import LedgerError
from ansible_collections.hosting.migration.plugins.module_utils.ledger_locks import holder_gone, process_holder
from ansible_collections.hosting.migration.plugins.module_utils.ledger_operations import (
    LEDGER_ARGUMENT_SPEC, MissingArgument, run_operation)


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec=LEDGER_ARGUMENT_SPEC)
        if args["operation"] in ("acquire", "release") and args.get("holder"):
            # This run's ansible-playbook process (the worker's parent) holds the lock.
            args = dict(args, holder=process_holder(args["holder"]))
        try:
            with Ledger.open(args["location"]) as ledger:
                outcome = run_operation(ledger, args, check_mode=self._task.check_mode, gone=holder_gone)
        except (LedgerError, MissingArgument) as error:
            # A failed result, not an exception: failed_when and ignore_errors apply to it.
            result.update(failed=True, msg=str(error))
            return result
        result.update(outcome)
        return result
