# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
name: account_table
short_description: Format the accounts of a server as a readable table
version_added: 0.1.0
description:
  - Turns the C(accounts) returned by M(hosting.migration.account_info) (with resources) into a
    plain-text table, one line per account, and a total line.
author: hosting.migration developers (!UNKNOWN)
options:
  _input:
    description: The C(accounts) list returned by M(hosting.migration.account_info).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Print the preparation report
  ansible.builtin.debug:
    msg: "{{ found.accounts | hosting.migration.account_table }}"
"""

RETURN = r"""
_value:
  description: The table, lines separated by newlines.
  type: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.hosting.migration.plugins.module_utils.text_table import table_lines


def human_bytes(count):
    if count is None:
        return "missing"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return ("%d %s" % (count, unit)) if unit == "B" else ("%.1f %s" % (count, unit))
        count /= 1024.0
    return None


def _database_cell(databases):
    return ", ".join("%s %s %s" % (db["engine"], db["name"], human_bytes(db["bytes"])) for db in databases) or "-"


def account_table(accounts):
    if not isinstance(accounts, list):
        raise AnsibleFilterError("account_table expects the accounts list of account_info, got %s" % type(accounts).__name__)
    header = ["account", "uid", "files", "size", "databases", "cron", "mail", "php", "domains"]
    rows = []
    for account in accounts:
        resources = account.get("resources")
        if resources is None:
            raise AnsibleFilterError("account_table needs account_info with resources=true (account %s has none)" % account.get("name"))
        rows.append([
            account["name"], str(account["spec"]["uid"]), str(resources["files"]), human_bytes(resources["bytes"]),
            _database_cell(resources["databases"]), str(resources["cron_entries"]), str(resources["mailboxes"]),
            ",".join(resources["php"]), " ".join(resources["domains"]),
        ])
    total_files = sum(a["resources"]["files"] for a in accounts)
    total_bytes = sum(a["resources"]["bytes"] for a in accounts)
    total_db = sum(a["resources"]["database_bytes"] for a in accounts)
    lines = table_lines(header, rows)
    lines.append("%d accounts, %d files, %s of files, %s of databases" % (
        len(accounts), total_files, human_bytes(total_bytes), human_bytes(total_db)))
    return "\n".join(lines)


class FilterModule(object):

    def filters(self):
        return {"account_table": account_table}
