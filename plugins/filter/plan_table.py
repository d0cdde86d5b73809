# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
name: plan_table
short_description: Format a migration plan as a readable table
version_added: 0.1.0
description:
  - Turns what M(hosting.migration.account_plan_info) returns into a plain-text table, one row
    per account with its estimated freeze, its changes (one per line) and its blockers (one per
    line), and a summary line.
  - Given the whole registered result, it also prints the versions, the OS change shared by every
    account and the blockers of the target itself; given only its C(accounts) list, the rows and
    the summary.
author: hosting.migration developers (!UNKNOWN)
options:
  _input:
    description: The result of M(hosting.migration.account_plan_info), or its C(accounts) list.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Print the preparation plan
  ansible.builtin.debug:
    msg: "{{ plan | hosting.migration.plan_table }}"

- name: Only the accounts' rows
  ansible.builtin.debug:
    msg: "{{ plan.accounts | hosting.migration.plan_table }}"
"""

RETURN = r"""
_value:
  description: The table, lines separated by newlines.
  type: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.hosting.migration.plugins.module_utils.text_table import table_lines

HEADER = ["account", "freeze", "changes", "blockers"]


def _seconds(value):
    return "%.1f s" % value


def _change_cell(change):
    what = str(change.get("what", "")).split(" ", 1)[-1]
    old = "?" if change.get("from") is None else change["from"]
    return "%s %s %s -> %s" % (change.get("kind"), what, old, change.get("to"))


def _blocker_cell(name, text):
    prefix = "account %s: " % name
    return text[len(prefix):] if text.startswith(prefix) else text


def _accounts_of(plan):
    if isinstance(plan, dict) and isinstance(plan.get("accounts"), list):
        return plan, plan["accounts"]
    if isinstance(plan, list):
        return None, plan
    raise AnsibleFilterError("plan_table expects the result of hosting.migration.account_plan_info "
                             "or its accounts list, got %s" % type(plan).__name__)


def _rows(accounts):
    """Lines of cells: an account takes as many lines as its longest list of changes or blockers."""
    lines = []
    for account in accounts:
        try:
            name, seconds = account["name"], account["freeze_estimate_s"]
            changes = [_change_cell(change) for change in account["changes"] if change.get("kind") != "os"]
            blockers = [_blocker_cell(name, text) for text in account["blockers"]]
        except (KeyError, TypeError, AttributeError):
            raise AnsibleFilterError("plan_table: %r is not an account of hosting.migration.account_plan_info"
                                     % (account,)) from None
        height = max(len(changes), len(blockers), 1)
        changes += [""] * (height - len(changes))
        blockers += [""] * (height - len(blockers))
        for index in range(height):
            first = index == 0
            label = "%s (resumed)" % name if account.get("resumed") else name
            lines.append([label if first else "", _seconds(seconds) if first else "",
                          changes[index] or ("-" if first else ""), blockers[index] or ("-" if first else "")])
    return lines


def _summary(accounts, target_blockers):
    # A blocker of the target blocks every account.
    ready = 0 if target_blockers else len([account for account in accounts if not account["blockers"]])
    count = sum(len(account["blockers"]) for account in accounts) + len(target_blockers)
    text = "%d account%s: %d ready, %d blocked; %d blocker%s" % (
        len(accounts), "" if len(accounts) == 1 else "s", ready, len(accounts) - ready,
        count, "" if count == 1 else "s")
    if target_blockers:
        text += " (%d on the target)" % len(target_blockers)
    if accounts:
        total = sum(account["freeze_estimate_s"] for account in accounts)
        longest = max(accounts, key=lambda account: account["freeze_estimate_s"])
        text += "; estimated freeze %s in all, longest %s (%s)" % (
            _seconds(total), _seconds(longest["freeze_estimate_s"]), longest["name"])
    return text


def plan_table(plan):
    result, accounts = _accounts_of(plan)
    rows = _rows(accounts)
    lines = table_lines(HEADER, rows)
    head = []
    target_blockers = []
    if result is not None:
        target_blockers = list(result.get("target_blockers") or [])
        head.append("Infrastructure %s -> %s: %s" % (
            result.get("source_version", "?"), result.get("target_version", "?"),
            "ready" if result.get("ready") else "NOT ready"))
    os_changes = sorted({(change.get("from"), change.get("to")) for account in accounts
                         for change in account.get("changes") or [] if change.get("kind") == "os"},
                        key=str)
    head.extend("OS: %s -> %s" % (old or "?", new) for old, new in os_changes)
    tail = ["blocks every account: %s" % text for text in target_blockers]
    return "\n".join(head + lines + tail + [_summary(accounts, target_blockers)])


class FilterModule(object):

    def filters(self):
        return {"plan_table": plan_table}
