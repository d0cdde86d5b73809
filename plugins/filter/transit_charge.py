# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
name: transit_charge
short_description: What a transit server lease costs, so far or in all
version_added: 0.1.0
description:
  - From a lease of a transit server, its lease clock and its charge, by the rule of
    C(docs/transit.md) ("How a lease is billed").
  - The free period ends O(_input.free_days) times 24 hours after the start. After it, every
    calendar day of O(time_zone) that the lease touches is billed in full at the monthly price
    divided by the days of that month; the exact sum is rounded once to cents, half up.
  - A running lease (no O(_input.released_at)) is billed up to O(now).
  - A bad price (a float, negative, not a number, more than two decimals, above O(max_monthly)),
    a time without a zone or an unknown time zone is refused with an error naming the lease.
author: hosting.migration developers (!UNKNOWN)
options:
  _input:
    description:
      - A lease as the state store records it.
      - The price may also be given flat, as C(price_monthly) and C(currency), the way the state
        store's lease records hold it; the lease's own C(time_zone), if any, is used when
        O(time_zone) is not given.
    type: dict
    required: true
    suboptions:
      id:
        description: The lease's identifier, for messages.
        type: raw
      transit:
        description: The transit server leased.
        type: str
      customer_server:
        description: The customer server it serves.
        type: str
      started_at:
        description: When the lease started, ISO 8601 text with an offset or C(Z).
        type: str
        required: true
      free_days:
        description: Days free of charge, a whole number, 0 or more.
        type: int
        default: 7
      released_at:
        description: When the lease ended, ISO 8601 text with an offset or C(Z); null while it runs.
        type: str
      price:
        description:
          - The customer server's price, C(server_price) in the inventory.
          - Required unless the lease gives C(price_monthly) and C(currency) instead.
        type: dict
        suboptions:
          monthly:
            description: The monthly price as text with at most two decimals, such as C("49.00").
            type: str
            required: true
          currency:
            description: An ISO 4217 code such as C(EUR).
            type: str
            required: true
  now:
    description:
      - The time a running lease is billed up to, ISO 8601 text with an offset or C(Z).
      - Defaults to the current time.
    type: str
  time_zone:
    description:
      - The IANA time zone whose calendar days are billed, such as C(UTC) or C(Europe/Berlin).
      - Defaults to the lease's own C(time_zone), else C(UTC).
    type: str
  warn_days:
    description: Warn when the free period of a running lease ends within this many days.
    type: int
    default: 2
  max_monthly:
    description: Monthly prices above this are refused as absurd.
    type: str
    default: "100000"
"""

EXAMPLES = r"""
- name: What the lease costs so far
  ansible.builtin.debug:
    msg: "{{ lease | hosting.migration.transit_charge }}"

- name: The final charge of a released lease, billed on Berlin's calendar days
  ansible.builtin.set_fact:
    final_charge: "{{ lease | hosting.migration.transit_charge(time_zone='Europe/Berlin') }}"

- name: Leases whose free period ends within 3 days
  ansible.builtin.debug:
    msg: "{{ item.warning }}"
  loop: "{{ leases | map('hosting.migration.transit_charge', warn_days=3) | selectattr('warning') }}"
"""

RETURN = r"""
_value:
  description: The lease clock and the charge. Times are ISO 8601 in the billing time zone.
  type: dict
  contains:
    lease:
      description: The lease's identifier.
      type: raw
    transit:
      description: The transit server.
      type: str
    customer_server:
      description: The customer server.
      type: str
    started_at:
      description: The start of the lease.
      type: str
    free_until:
      description: The end of the free period, exactly O(_input.free_days) x 24 hours after the start.
      type: str
    ended_at:
      description: The end of the lease, null while it runs.
      type: str
    billed_until:
      description: The end of the billed time, O(now) for a running lease.
      type: str
    running:
      description: Whether the lease is still running.
      type: bool
    free_days:
      description: The free period in days.
      type: int
    time_zone:
      description: The billing time zone.
      type: str
    monthly:
      description: The monthly price, two decimals.
      type: str
    currency:
      description: The currency.
      type: str
    billed_days:
      description: Calendar days billed.
      type: int
    first_billed_day:
      description: The first day billed (YYYY-MM-DD), null if none.
      type: str
    last_billed_day:
      description: The last day billed (YYYY-MM-DD), null if none.
      type: str
    amount:
      description: The charge, two decimals, rounded once from the exact sum.
      type: str
      sample: "9.69"
    breakdown:
      description:
        - The days billed by calendar month. C(daily_rate) is exact, as the monthly price over the
          days of the month (C(49.00/30)); C(subtotal) is rounded to cents for reading only, so
          subtotals can add up to a cent more or less than C(amount).
      type: list
      elements: dict
      sample: [{month: "2026-11", days: 4, days_in_month: 30, daily_rate: "49.00/30", subtotal: "6.53"}]
    free_period_ends_in_days:
      description: For a running lease still in its free period, the days left rounded down to a tenth; else null.
      type: float
    warning:
      description: Set when a running lease's free period ends within O(warn_days) days; else null.
      type: str
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.hosting.migration.plugins.module_utils.transit_billing import (
    DEFAULT_FREE_DAYS, DEFAULT_MAX_MONTHLY, DEFAULT_TIME_ZONE, DEFAULT_WARN_DAYS, BillingError, charge)


def describe_lease(lease):
    if not isinstance(lease, dict):
        return "lease %r" % (lease,)
    return "lease %s (%s for %s)" % (lease.get("id", "?"), lease.get("transit", "?"), lease.get("customer_server", "?"))


def _price(lease):
    """``price: {monthly, currency}``, or the ledger's flat ``price_monthly`` and ``currency``."""
    if lease.get("price") is None and lease.get("price_monthly") is not None:
        return {"monthly": lease["price_monthly"], "currency": lease.get("currency")}
    return lease.get("price")


def transit_charge(lease, now=None, time_zone=None, warn_days=DEFAULT_WARN_DAYS, max_monthly=DEFAULT_MAX_MONTHLY):
    if not isinstance(lease, dict):
        raise AnsibleFilterError("transit_charge expects a lease {id, transit, customer_server, started_at, "
                                 "free_days, released_at, price}, got %s" % type(lease).__name__)
    price = _price(lease)
    for key, value in (("started_at", lease.get("started_at")), ("price", price)):
        if value is None:
            raise AnsibleFilterError("transit_charge: %s has no %s" % (describe_lease(lease), key))
    free_days = lease.get("free_days")
    if time_zone is None:
        time_zone = lease.get("time_zone") or DEFAULT_TIME_ZONE
    try:
        result = charge(price, lease["started_at"], lease.get("released_at"),
                        free_days=DEFAULT_FREE_DAYS if free_days is None else free_days, time_zone=time_zone,
                        now=now, warn_days=warn_days, max_monthly=max_monthly, server=lease.get("customer_server"))
    except BillingError as error:
        raise AnsibleFilterError("transit_charge: %s: %s" % (describe_lease(lease), to_native(error))) from None
    head = {"lease": lease.get("id"), "transit": lease.get("transit"), "customer_server": lease.get("customer_server")}
    head.update(result)
    return head


class FilterModule(object):

    def filters(self):
        return {"transit_charge": transit_charge}
