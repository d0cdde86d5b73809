# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lease clock of a transit server and what the customer is charged for it.

The rule (``docs/transit.md``, "How a lease is billed", says the same with examples):

1. The free period ends at the exact instant ``started_at + free_days x 24 hours`` (default 7
   days; 0 allowed). It is counted in elapsed time, so a daylight saving change inside it does
   not lengthen or shorten it.
2. A lease that ends at or before that instant costs nothing.
3. Otherwise the billed time runs from the end of the free period (included) to the end of the
   lease (excluded; a running lease is billed up to ``now``). Every calendar day of the billing
   time zone (default UTC) that this time touches is billed in full: the day on which the free
   period ends is billed if the lease runs past that instant, and a lease that ends exactly at
   midnight does not touch the day that begins then. Days are calendar days, not 24-hour
   periods: a 23- or 25-hour day of a daylight saving change is one day.
4. A day costs the monthly price divided by the number of days of its calendar month, so a whole
   calendar month costs exactly the monthly price, a day of February costs more than a day of
   March, and leap years follow the calendar.
5. The amount is the exact sum of those day prices, rounded once, at the end, to cents with
   ROUND_HALF_UP. Prices have at most two decimals, in every currency.

The sum is kept as a ``fractions.Fraction`` because a daily rate such as 49.00/31 has no finite
decimal form: summing Decimals would round every term. Prices come in as text, integers or
Decimals (never floats, which cannot hold cents exactly) and leave as text with two decimals.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import calendar
import datetime
import math
import re
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from fractions import Fraction

try:
    import zoneinfo
except ImportError:  # Python < 3.9: only the controller bills, and it runs a newer Python.
    zoneinfo = None

DEFAULT_FREE_DAYS = 7
DEFAULT_TIME_ZONE = "UTC"
DEFAULT_WARN_DAYS = 2
# A monthly price above this is a typo (a missing decimal point), not a server.
DEFAULT_MAX_MONTHLY = Decimal("100000")
# A free period of more than ten years is a typo, not a lease term.
MAX_FREE_DAYS = 3650
DAY = datetime.timedelta(days=1)
MICROSECOND = datetime.timedelta(microseconds=1)
CENT = Decimal("0.01")
CURRENCY = re.compile(r"^[A-Z]{3}$")
PRICE_FIELDS = ("monthly", "currency")


class BillingError(ValueError):
    """A price, a time, a time zone or a period given to the billing cannot be used."""


# --- the inputs ------------------------------------------------------------------------------

def _decimal(value, what, example):
    """``value`` (text, integer or Decimal) as a finite Decimal; floats and booleans refused."""
    if isinstance(value, bool) or isinstance(value, float):
        raise BillingError("%s must be given as text such as %s, not as the %s %r (a float cannot hold "
                           "cents exactly)" % (what, example, type(value).__name__, value))
    if isinstance(value, int):
        value = Decimal(value)
    elif isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise BillingError("%s %r is not a number: write it as text such as %s" % (what, value, example)) from None
    elif not isinstance(value, Decimal):
        raise BillingError("%s must be text such as %s, got %r" % (what, example, value))
    if not value.is_finite():
        raise BillingError("%s must be a finite amount, not %s" % (what, value))
    return value


def parse_max_monthly(value):
    value = _decimal(value, "the ceiling of monthly prices", '"100000"')
    if value <= 0:
        raise BillingError("the ceiling of monthly prices must be more than 0, not %s" % value)
    return value


def parse_price(price, max_monthly=DEFAULT_MAX_MONTHLY, server=None):
    """``(monthly, currency)`` from ``{monthly, currency}``: a Decimal with two decimals and a code.

    ``server`` names the customer server in the errors.
    """
    owner = "the price of %s" % server if server else "the price"
    if not isinstance(price, dict):
        raise BillingError("%s must be {monthly, currency} (server_price in the inventory), got %r" % (owner, price))
    unknown = sorted(str(key) for key in price if key not in PRICE_FIELDS)
    if unknown:
        raise BillingError("%s has unknown field%s %s (known: monthly, currency)" % (
            owner, "" if len(unknown) == 1 else "s", ", ".join(unknown)))
    if "monthly" not in price or "currency" not in price:
        raise BillingError("%s lacks %s" % (owner, " and ".join(key for key in PRICE_FIELDS if key not in price)))
    ceiling = parse_max_monthly(max_monthly)
    what = "the monthly price of %s" % server if server else "the monthly price"
    monthly = _decimal(price["monthly"], what, '"49.00"')
    if monthly < 0:
        raise BillingError("%s is negative (%s): a price is 0 or more" % (what, monthly))
    if monthly > ceiling:
        raise BillingError("%s %s is absurd: it is above the ceiling of %s a month (a misplaced decimal point?)"
                           % (what, monthly, ceiling))
    if monthly != monthly.quantize(CENT, rounding=ROUND_DOWN):
        raise BillingError("%s %s has more than two decimals: prices are in cents" % (what, monthly))
    currency = price["currency"]
    if not isinstance(currency, str) or not CURRENCY.match(currency):
        raise BillingError("the currency of %s must be an ISO 4217 code such as EUR, got %r" % (
            server or "the price", currency))
    return monthly.quantize(CENT).copy_abs(), currency


def parse_instant(value, what):
    """An aware datetime (in UTC) from an aware datetime or ISO 8601 text with an offset or Z."""
    if isinstance(value, str):
        text = value.strip()
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise BillingError("%s %r is not an ISO 8601 time such as 2026-11-20T10:00:00Z" % (what, value)) from None
    elif not isinstance(value, datetime.datetime):
        raise BillingError("%s must be an ISO 8601 time with a zone or an aware datetime, got %r" % (what, value))
    if value.utcoffset() is None:
        raise BillingError("%s %s has no time zone: give its offset or Z (2026-11-20T10:00:00Z), a time "
                           "without one is ambiguous" % (what, value.isoformat()))
    return value.astimezone(datetime.timezone.utc)


def billing_zone(name):
    """The tzinfo of an IANA time zone name (``UTC``, ``Europe/Berlin``)."""
    if isinstance(name, datetime.tzinfo):
        return name
    if not isinstance(name, str) or not name.strip():
        raise BillingError("the billing time zone must be an IANA name such as UTC or Europe/Berlin, got %r" % (name,))
    if name == "UTC":
        return datetime.timezone.utc
    if zoneinfo is None:
        raise BillingError("time zone %s needs Python 3.9 or later (zoneinfo); only UTC works here" % name)
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise BillingError("%r is not a known time zone: give an IANA name such as UTC or Europe/Berlin" % name) from None


def parse_free_days(value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise BillingError("the free period must be a whole number of days, got %r" % (value,))
    if value < 0:
        raise BillingError("the free period cannot be negative (%d days): use 0 for none" % value)
    if value > MAX_FREE_DAYS:
        raise BillingError("a free period of %d days is absurd (more than %d)" % (value, MAX_FREE_DAYS))
    return value


def parse_warn_days(value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BillingError("the warning delay must be a whole number of days, 0 or more, got %r" % (value,))
    return value


# --- the arithmetic --------------------------------------------------------------------------

def billed_dates(free_until, end, zone):
    """``(first, last)`` calendar dates billed (both included), or None if nothing is billed."""
    if end <= free_until:
        return None
    first = free_until.astimezone(zone).date()
    # The billed time excludes ``end``: its last instant is one microsecond earlier.
    last = (end - MICROSECOND).astimezone(zone).date()
    return first, last


def month_spans(first, last):
    """``(year, month, billed days, days of the month)`` for every month from ``first`` to ``last``."""
    spans = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        length = calendar.monthrange(year, month)[1]
        start = first.day if (year, month) == (first.year, first.month) else 1
        stop = last.day if (year, month) == (last.year, last.month) else length
        spans.append((year, month, stop - start + 1, length))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return spans


def cents_half_up(amount):
    """A non-negative Fraction rounded to cents, half up, as text with two decimals."""
    cents = math.floor(amount * 100 + Fraction(1, 2))
    return "%d.%02d" % divmod(cents, 100)


def tenths_of_days(delta):
    """A timedelta in days, rounded down to a tenth (1.96 days gives 1.9: less than 2 days)."""
    return math.floor(Fraction(delta // MICROSECOND, DAY // MICROSECOND) * 10) / 10.0


# --- the charge ------------------------------------------------------------------------------

def charge(price, started_at, ended_at=None, free_days=DEFAULT_FREE_DAYS, time_zone=DEFAULT_TIME_ZONE,
           now=None, warn_days=DEFAULT_WARN_DAYS, max_monthly=DEFAULT_MAX_MONTHLY, server=None):
    """What a lease costs so far (running) or in all (ended), by the rule of this module.

    ``price``: ``{monthly, currency}``; ``started_at``, ``ended_at`` (None while it runs) and
    ``now`` (default: the current time): aware datetimes or ISO 8601 text with a zone;
    ``time_zone``: an IANA name, the zone of the calendar days. ``server`` names the customer
    server in the errors. Times in the result are in the billing time zone.
    """
    monthly, currency = parse_price(price, max_monthly, server)
    free_days = parse_free_days(free_days)
    warn_days = parse_warn_days(warn_days)
    zone = billing_zone(time_zone)
    started = parse_instant(started_at, "the lease's start")
    ended = None if ended_at is None else parse_instant(ended_at, "the lease's end")
    if ended is not None and ended < started:
        raise BillingError("the lease ends (%s) before it starts (%s)" % (ended.isoformat(), started.isoformat()))
    current = datetime.datetime.now(datetime.timezone.utc) if now is None else parse_instant(now, "now")
    if ended is None and current < started:
        raise BillingError("the lease starts (%s) after now (%s): is a clock wrong?" % (
            started.isoformat(), current.isoformat()))
    end = current if ended is None else ended
    free_until = started + datetime.timedelta(days=free_days)

    breakdown, total, days = [], Fraction(0), 0
    dates = billed_dates(free_until, end, zone)
    for year, month, count, length in month_spans(*dates) if dates else []:
        subtotal = Fraction(monthly) * count / length
        total += subtotal
        days += count
        breakdown.append({
            "month": "%04d-%02d" % (year, month),
            "days": count,
            "days_in_month": length,
            "daily_rate": "%s/%d" % (monthly, length),
            "subtotal": cents_half_up(subtotal),
        })

    ends_in_days, warning = None, None
    if ended is None and current < free_until:
        left = free_until - current
        ends_in_days = tenths_of_days(left)
        if left <= warn_days * DAY:
            warning = ("the free period ends in %.1f days, at %s; after that every day started costs %s %s divided "
                       "by the days of its month") % (ends_in_days, free_until.astimezone(zone).isoformat(),
                                                      monthly, currency)
    return {
        "started_at": started.astimezone(zone).isoformat(),
        "free_until": free_until.astimezone(zone).isoformat(),
        "ended_at": None if ended is None else ended.astimezone(zone).isoformat(),
        "billed_until": end.astimezone(zone).isoformat(),
        "running": ended is None,
        "free_days": free_days,
        "time_zone": getattr(zone, "key", None) or str(zone),
        "monthly": str(monthly),
        "currency": currency,
        "billed_days": days,
        "first_billed_day": dates[0].isoformat() if dates else None,
        "last_billed_day": dates[1].isoformat() if dates else None,
        "amount": cents_half_up(total),
        "breakdown": breakdown,
        "free_period_ends_in_days": ends_in_days,
        "warning": warning,
    }
