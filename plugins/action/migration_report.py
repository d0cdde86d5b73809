# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of hosting.migration.migration_report: reads the ledger and writes the report's
files on the controller, where the ledger and the operator are, never on a server."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.hosting.migration.plugins.module_utils.ledger import Ledger
from ansible_collections.hosting.migration.plugins.module_utils.ledger_errors import LedgerError
from ansible_collections.hosting.migration.plugins.module_utils.migration_report import (
    REPORT_ARGUMENT_SPEC, ReportError, collect, render_html, write_report)


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec=REPORT_ARGUMENT_SPEC)
        basename = args["basename"] or "migration-%s" % args["server"]
        try:
            with Ledger.open(args["location"]) as ledger:
                data = collect(ledger, args["server"])
            html_path, json_path, changed = write_report(
                args["dest"], basename, data, render_html(data), check_mode=self._task.check_mode)
        except (LedgerError, ReportError) as error:
            raise AnsibleActionFail(str(error))
        result.update(changed=changed, html_path=html_path, json_path=json_path, summary=data["summary"])
        return result
