# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
name: lease_table
short_description: Format transit server leases and their charges as a readable table
version_added: 0.1.0
description:
  - One row per lease of a transit server (lease, transit, customer server, started, free until,
    days billed, amount, warning) and a summary line with the total per currency.
  - Each entry is either a lease as the state store records it (its charge is computed here, as
    P(hosting.migration.transit_charge#filter) does) or what that filter returned.
  - The amount of a running lease reads C(so far). Times are shown in O(time_zone).
author: hosting.migration developers (!UNKNOWN)
options:
  _input:
    description: Leases, or the results of P(hosting.migration.transit_charge#filter).
    type: list
    elements: dict
    required: true
  now:
    description: The time running leases are billed up to (ISO 8601 with a zone); defaults to the current time.
    type: str
  time_zone:
    description:
      - The IANA time zone whose calendar days are billed; ignored for entries already charged.
      - Defaults to each lease's own C(time_zone), else C(UTC).
    type: str
  warn_days:
    description: Warn when the free period of a running lease ends within this many days.
    type: int
    default: 2
"""

EXAMPLES = r"""
- name: Every lease with what it costs
  ansible.builtin.debug:
    msg: "{{ leases | hosting.migration.lease_table(time_zone='Europe/Berlin') }}"
"""

RETURN = r"""
_value:
  description: The table, lines separated by newlines.
  type: str
"""

import datetime

from ansible.errors import AnsibleFilterError
from ansible_collections.hosting.migration.plugins.filter.transit_charge import transit_charge
from ansible_collections.hosting.migration.plugins.module_utils.text_table import table_lines
from ansible_collections.hosting.migration.plugins.module_utils.transit_billing import DEFAULT_WARN_DAYS

HEADER = ["lease", "transit", "customer server", "started", "free until", "days billed", "amount", "warning"]


def _is_charge(entry):
    return isinstance(entry, dict) and "amount" in entry and "billed_days" in entry


def _moment(text):
    return datetime.datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M")


def _row(result):
    amount = "%s %s%s" % (result["amount"], result["currency"], " so far" if result["running"] else "")
    return [str(result.get("lease", "?")), str(result.get("transit") or "?"), str(result.get("customer_server") or "?"),
            _moment(result["started_at"]), _moment(result["free_until"]), str(result["billed_days"]), amount,
            _warning_cell(result)]


def _warning_cell(result):
    # The full warning names the time and the price, which the row shows already.
    if not result.get("warning"):
        return "-"
    if result.get("free_period_ends_in_days") is None:
        return result["warning"]
    return "free period ends in %.1f days" % result["free_period_ends_in_days"]


def _summary(results):
    running = len([result for result in results if result["running"]])
    totals = {}
    for result in results:
        cents = int(result["amount"].replace(".", ""))
        totals[result["currency"]] = totals.get(result["currency"], 0) + cents
    text = "%d lease%s, %d running" % (len(results), "" if len(results) == 1 else "s", running)
    if totals:
        text += "; billed %s" % ", ".join("%d.%02d %s" % (divmod(cents, 100) + (currency,))
                                          for currency, cents in sorted(totals.items()))
    zones = sorted({result["time_zone"] for result in results})
    if zones:
        text += " (times in %s)" % ", ".join(zones)
    return text


def lease_table(leases, now=None, time_zone=None, warn_days=DEFAULT_WARN_DAYS):
    if not isinstance(leases, list):
        raise AnsibleFilterError("lease_table expects a list of leases, got %s" % type(leases).__name__)
    results = [entry if _is_charge(entry) else transit_charge(entry, now=now, time_zone=time_zone, warn_days=warn_days)
               for entry in leases]
    try:
        return "\n".join(table_lines(HEADER, [_row(result) for result in results]) + [_summary(results)])
    except (KeyError, TypeError, ValueError, AttributeError):
        raise AnsibleFilterError("lease_table: an entry is neither a lease nor a result of "
                                 "hosting.migration.transit_charge") from None


class FilterModule(object):

    def filters(self):
        return {"lease_table": lease_table}
