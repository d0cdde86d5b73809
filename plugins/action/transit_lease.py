# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of hosting.migration.transit_lease: runs on the controller, with the inventory
(the customer server's profile and price, the pool's profiles) and the ledger."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.hosting.migration.plugins.module_utils.ledger import Ledger
from ansible_collections.hosting.migration.plugins.module_utils.ledger_errors import LedgerError
from ansible_collections.hosting.migration.plugins.module_utils.transit_lease import (
    TRANSIT_LEASE_ARGUMENT_SPEC, LeaseFailed, run)

display = Display()


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec=TRANSIT_LEASE_ARGUMENT_SPEC)
        if self._task.check_mode and args["state"] != "info":
            args = dict(args, state="info")
            result["skipped_in_check_mode"] = True
        try:
            with Ledger.open(args["location"]) as ledger:
                outcome = run(ledger, args, task_vars["groups"], task_vars["hostvars"], say=display.display)
        except LeaseFailed as error:
            # A failed result, not an exception: failed_when and ignore_errors apply to it.
            result.update(error.details, failed=True, msg=str(error))
            return result
        except LedgerError as error:
            result.update(failed=True, msg=str(error))
            return result
        result.update(outcome)
        return result
