"""The lease clock and the charge of a transit server: every expected amount worked out by hand."""
import datetime
from decimal import Decimal

import pytest

from ansible_collections.hosting.migration.plugins.module_utils.transit_billing import (
    BillingError, charge, parse_price)

PRICE = {"monthly": "49.00", "currency": "EUR"}
UTC = datetime.timezone.utc


def amount(start, end, free_days=7, price=None, time_zone="UTC"):
    return charge(price or PRICE, start, end, free_days=free_days, time_zone=time_zone)["amount"]


# --- the free period -------------------------------------------------------------------------

def test_a_lease_released_during_its_free_period_costs_nothing():
    result = charge(PRICE, "2026-11-01T10:00:00Z", "2026-11-05T10:00:00Z")

    assert result["amount"] == "0.00"
    assert result["billed_days"] == 0
    assert result["breakdown"] == []
    assert result["first_billed_day"] is None
    assert result["free_until"] == "2026-11-08T10:00:00+00:00"
    assert result["running"] is False


def test_a_lease_released_exactly_at_the_end_of_its_free_period_costs_nothing():
    assert amount("2026-11-01T10:00:00Z", "2026-11-08T10:00:00Z") == "0.00"


def test_one_microsecond_past_the_free_period_bills_that_whole_day():
    result = charge(PRICE, "2026-11-01T10:00:00Z", "2026-11-08T10:00:00.000001Z")

    # 2026-11-08 only, November has 30 days: 49/30 = 1.6333.. -> 1.63
    assert result["amount"] == "1.63"
    assert result["billed_days"] == 1
    assert result["first_billed_day"] == result["last_billed_day"] == "2026-11-08"


def test_one_day_past_the_free_period_touches_two_calendar_days():
    # 2026-11-08 10:00 to 2026-11-09 10:00: the 8th and the 9th, 2 x 49/30 = 3.2666.. -> 3.27
    assert amount("2026-11-01T10:00:00Z", "2026-11-09T10:00:00Z") == "3.27"


def test_a_lease_ending_at_midnight_does_not_touch_the_day_that_begins_then():
    result = charge(PRICE, "2026-11-10T12:00:00Z", "2026-11-11T00:00:00Z", free_days=0)

    # Only the 10th: 49/30 -> 1.63
    assert (result["billed_days"], result["amount"]) == (1, "1.63")


def test_no_free_period():
    # free_days 0: the first second is billed, 49/30 -> 1.63
    assert amount("2026-11-10T10:00:00Z", "2026-11-10T10:00:01Z", free_days=0) == "1.63"
    assert amount("2026-11-10T10:00:00Z", "2026-11-10T10:00:00Z", free_days=0) == "0.00"


def test_the_free_period_is_per_lease():
    # 30 free days from 1 November end on 1 December at midnight: nothing billed up to then ...
    assert amount("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", free_days=30) == "0.00"
    # ... and 1 December is billed after: 49/31 = 1.5806.. -> 1.58
    assert amount("2026-11-01T00:00:00Z", "2026-12-02T00:00:00Z", free_days=30) == "1.58"
    # With the default 7 days, the same lease bills 8 November to 1 December: 23 x 49/30 + 49/31
    # = 37.5666.. + 1.5806.. = 39.1473.. -> 39.15
    assert amount("2026-11-01T00:00:00Z", "2026-12-02T00:00:00Z") == "39.15"


# --- calendar months -------------------------------------------------------------------------

@pytest.mark.parametrize("start,end,days", [
    ("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z", 31),
    ("2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z", 30),
    ("2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z", 28),
    ("2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z", 29),
])
@pytest.mark.parametrize("monthly", ["49.00", "99.99", "0.01", "100000.00"])
def test_a_whole_calendar_month_costs_exactly_the_monthly_price(start, end, days, monthly):
    result = charge({"monthly": monthly, "currency": "EUR"}, start, end, free_days=0)

    assert result["amount"] == monthly
    assert result["billed_days"] == days
    assert result["breakdown"][0]["subtotal"] == monthly


def test_a_whole_year_costs_twelve_months_leap_or_not():
    # 12 x 49.00 = 588.00, whatever the lengths of the months
    common = charge(PRICE, "2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z", free_days=0)
    leap = charge(PRICE, "2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z", free_days=0)

    assert (common["amount"], common["billed_days"], len(common["breakdown"])) == ("588.00", 365, 12)
    assert (leap["amount"], leap["billed_days"]) == ("588.00", 366)


def test_a_day_of_february_costs_more_in_a_common_year_than_in_a_leap_year():
    common = charge(PRICE, "2027-02-10T00:00:00Z", "2027-02-10T12:00:00Z", free_days=0)
    leap = charge(PRICE, "2028-02-10T00:00:00Z", "2028-02-10T12:00:00Z", free_days=0)

    # 49/28 = 1.75 exactly; 49/29 = 1.6896.. -> 1.69
    assert common["amount"] == "1.75"
    assert common["breakdown"] == [{"month": "2027-02", "days": 1, "days_in_month": 28,
                                    "daily_rate": "49.00/28", "subtotal": "1.75"}]
    assert leap["amount"] == "1.69"
    assert leap["breakdown"][0]["daily_rate"] == "49.00/29"


def test_29_february_is_billed_in_a_leap_year():
    # 28 and 29 February 2028 and 1 March: 2 x 49/29 + 49/31 = 3.3793.. + 1.5806.. = 4.9599.. -> 4.96
    result = charge(PRICE, "2028-02-28T08:00:00Z", "2028-03-01T08:00:00Z", free_days=0)

    assert (result["billed_days"], result["amount"]) == (3, "4.96")


def test_a_lease_across_a_month_end_is_billed_at_each_months_rate():
    result = charge(PRICE, "2027-01-30T12:00:00Z", "2027-02-01T12:00:00Z", free_days=0)

    # 30 and 31 January at 49/31 (3.1612..), 1 February at 49/28 (1.75): 4.9112.. -> 4.91
    assert result["amount"] == "4.91"
    assert result["breakdown"] == [
        {"month": "2027-01", "days": 2, "days_in_month": 31, "daily_rate": "49.00/31", "subtotal": "3.16"},
        {"month": "2027-02", "days": 1, "days_in_month": 28, "daily_rate": "49.00/28", "subtotal": "1.75"},
    ]


def test_a_lease_across_the_year_end():
    result = charge(PRICE, "2026-12-24T18:00:00Z", "2027-01-02T06:00:00Z")

    # Free until 31 December 18:00; 31 December, 1 and 2 January: 3 x 49/31 = 4.7419.. -> 4.74
    assert result["free_until"] == "2026-12-31T18:00:00+00:00"
    assert result["amount"] == "4.74"
    assert [(month["month"], month["days"]) for month in result["breakdown"]] == [("2026-12", 1), ("2027-01", 2)]
    assert (result["first_billed_day"], result["last_billed_day"]) == ("2026-12-31", "2027-01-02")


def test_the_amount_is_rounded_once_from_the_exact_sum():
    # 1 to 3 March 2026 at 10.00/31 a day: 3 x 0.32258.. = 0.96774.. -> 0.97, while three days
    # each rounded first (0.32) would give 0.96
    assert amount("2026-03-01T00:00:00Z", "2026-03-04T00:00:00Z", free_days=0,
                  price={"monthly": "10.00", "currency": "EUR"}) == "0.97"


@pytest.mark.parametrize("monthly,expected", [
    # One day of February 2027 (28 days): 0.70/28 = 0.025 -> 0.03 (half even would give 0.02)
    ("0.70", "0.03"),
    # 0.14/28 = 0.005 -> 0.01
    ("0.14", "0.01"),
    # 0.42/28 = 0.015 -> 0.02
    ("0.42", "0.02"),
    # 0.13/28 = 0.00464.. -> 0.00
    ("0.13", "0.00"),
])
def test_rounding_is_half_up(monthly, expected):
    assert amount("2027-02-10T00:00:00Z", "2027-02-10T01:00:00Z", free_days=0,
                  price={"monthly": monthly, "currency": "EUR"}) == expected


# --- time zones ------------------------------------------------------------------------------

def test_the_free_period_is_elapsed_time_across_a_daylight_saving_change():
    # Berlin moves to summer time on 29 March 2026: 7 x 24 hours after 25 March 12:00 (+01:00)
    # is 1 April 13:00 (+02:00), not 12:00.
    result = charge(PRICE, "2026-03-25T12:00:00+01:00", None, now="2026-03-26T00:00:00Z", time_zone="Europe/Berlin")

    assert result["free_until"] == "2026-04-01T13:00:00+02:00"
    assert result["started_at"] == "2026-03-25T12:00:00+01:00"


def test_calendar_days_of_the_billing_time_zone_are_billed():
    # 24 hours from 28 March 23:30 (+01:00) to 30 March 00:30 (+02:00): in Berlin the 28th, 29th
    # and 30th (3 x 49/31 = 4.7419.. -> 4.74); in UTC (22:30 to 22:30) the 28th and 29th
    # (2 x 49/31 = 3.1612.. -> 3.16).
    start, end = "2026-03-28T23:30:00+01:00", "2026-03-30T00:30:00+02:00"

    assert amount(start, end, free_days=0, time_zone="Europe/Berlin") == "4.74"
    assert amount(start, end, free_days=0, time_zone="UTC") == "3.16"


@pytest.mark.parametrize("start,end,hours", [
    ("2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00", 23),
    ("2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00", 25),
])
def test_a_daylight_saving_day_is_one_day(start, end, hours):
    result = charge(PRICE, start, end, free_days=0, time_zone="Europe/Berlin")

    assert (datetime.datetime.fromisoformat(end) - datetime.datetime.fromisoformat(start)) == \
        datetime.timedelta(hours=hours)
    # One day of a 31-day month: 49/31 -> 1.58
    assert (result["billed_days"], result["amount"]) == (1, "1.58")


def test_the_ledgers_time_text_is_understood():
    result = charge(PRICE, "2026-11-01T10:00:00.000000Z", "2026-11-08T10:00:00.000001Z")

    assert (result["started_at"], result["amount"]) == ("2026-11-01T10:00:00+00:00", "1.63")


def test_times_are_given_in_the_billing_time_zone():
    result = charge(PRICE, "2026-11-20T10:00:00Z", "2026-12-01T10:00:00Z", time_zone="Europe/Berlin")

    assert result["started_at"] == "2026-11-20T11:00:00+01:00"
    assert result["ended_at"] == "2026-12-01T11:00:00+01:00"
    assert result["time_zone"] == "Europe/Berlin"


def test_an_unknown_time_zone_is_refused():
    with pytest.raises(BillingError, match="'Europe/Atlantis' is not a known time zone"):
        charge(PRICE, "2026-11-20T10:00:00Z", None, time_zone="Europe/Atlantis")


# --- a running lease -------------------------------------------------------------------------

def test_a_running_lease_is_billed_up_to_now():
    result = charge(PRICE, "2026-11-20T10:00:00Z", None, now="2026-11-28T09:00:00Z")

    # Free until the 27th 10:00; the 27th and 28th so far: 2 x 49/30 = 3.2666.. -> 3.27
    assert result["running"] is True
    assert result["ended_at"] is None
    assert result["billed_until"] == "2026-11-28T09:00:00+00:00"
    assert (result["billed_days"], result["amount"]) == (2, "3.27")
    assert result["free_period_ends_in_days"] is None
    assert result["warning"] is None


def test_a_warning_when_the_free_period_ends_soon():
    result = charge(PRICE, "2026-11-20T10:00:00Z", None, now="2026-11-26T12:00:00Z")

    # 22 hours left: 0.916.. days, rounded down to 0.9
    assert result["free_period_ends_in_days"] == 0.9
    assert result["warning"] == ("the free period ends in 0.9 days, at 2026-11-27T10:00:00+00:00; after that every "
                                 "day started costs 49.00 EUR divided by the days of its month")
    assert result["amount"] == "0.00"


def test_the_warning_delay_is_configurable_and_inclusive():
    three_days_left = ("2026-11-20T10:00:00Z", None)

    quiet = charge(PRICE, *three_days_left, now="2026-11-24T10:00:00Z")
    warned = charge(PRICE, *three_days_left, now="2026-11-24T10:00:00Z", warn_days=3)

    assert (quiet["free_period_ends_in_days"], quiet["warning"]) == (3.0, None)
    assert warned["warning"].startswith("the free period ends in 3.0 days")


def test_a_released_lease_has_no_warning():
    result = charge(PRICE, "2026-11-20T10:00:00Z", "2026-11-26T12:00:00Z", now="2026-11-26T12:00:00Z")

    assert (result["free_period_ends_in_days"], result["warning"]) == (None, None)


def test_now_defaults_to_the_current_time():
    started = datetime.datetime.now(UTC) - datetime.timedelta(days=8)

    result = charge(PRICE, started, None)

    # Two days touched at least (the free period ended a day ago), at most three.
    assert result["running"] is True and 2 <= result["billed_days"] <= 3


# --- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("monthly,message", [
    ("-1.00", "the monthly price of dedicated1 is negative (-1.00)"),
    (49.0, "the monthly price of dedicated1 must be given as text such as \"49.00\", not as the float 49.0"),
    (True, "not as the bool True"),
    ("NaN", "must be a finite amount, not NaN"),
    ("Infinity", "must be a finite amount, not Infinity"),
    ("49,00", "the monthly price of dedicated1 '49,00' is not a number"),
    ("100000.01", "the monthly price of dedicated1 100000.01 is absurd: it is above the ceiling of 100000"),
    ("1e30", "is absurd"),
    ("49.001", "the monthly price of dedicated1 49.001 has more than two decimals"),
    (None, "must be text such as \"49.00\", got None"),
])
def test_a_bad_price_is_refused(monthly, message):
    with pytest.raises(BillingError) as caught:
        charge({"monthly": monthly, "currency": "EUR"}, "2026-11-20T10:00:00Z", None, server="dedicated1")

    assert message in str(caught.value)


@pytest.mark.parametrize("price,message", [
    ({"monthly": "49.00", "currency": "eur"}, "the currency of the price must be an ISO 4217 code such as EUR"),
    ({"monthly": "49.00"}, "the price lacks currency"),
    ({"monthly": "49.00", "currency": "EUR", "yearly": "500"}, "the price has unknown field yearly"),
    ("49.00", "the price must be {monthly, currency}"),
])
def test_a_bad_price_record_is_refused(price, message):
    with pytest.raises(BillingError, match="^" + message.replace("{", "\\{").replace("}", "\\}")):
        charge(price, "2026-11-20T10:00:00Z", None)


@pytest.mark.parametrize("monthly,kept", [
    ("49", "49.00"), (49, "49.00"), (Decimal("49.5"), "49.50"), ("49.000", "49.00"), (" 0 ", "0.00"), ("-0", "0.00"),
])
def test_good_prices_are_kept_with_two_decimals(monthly, kept):
    assert str(parse_price({"monthly": monthly, "currency": "EUR"})[0]) == kept


def test_the_ceiling_is_configurable():
    big = {"monthly": "250000.00", "currency": "EUR"}

    assert parse_price(big, max_monthly="300000")[0] == Decimal("250000.00")
    with pytest.raises(BillingError, match="above the ceiling of 500"):
        parse_price({"monthly": "600", "currency": "EUR"}, max_monthly=500)
    with pytest.raises(BillingError, match="float"):
        parse_price(big, max_monthly=300000.0)


def test_a_free_server_costs_nothing():
    assert amount("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", free_days=0,
                  price={"monthly": "0.00", "currency": "EUR"}) == "0.00"


@pytest.mark.parametrize("started,ended,now,message", [
    ("2026-11-20T10:00:00", None, "2026-11-21T10:00:00Z", "the lease's start 2026-11-20T10:00:00 has no time zone"),
    (datetime.datetime(2026, 11, 20, 10), None, "2026-11-21T10:00:00Z", "the lease's start 2026-11-20T10:00:00 has no"),
    ("2026-11-20", None, "2026-11-21T10:00:00Z", "the lease's start 2026-11-20T00:00:00 has no time zone"),
    ("2026-11-20T10:00:00Z", "2026-11-21T10:00:00", None, "the lease's end 2026-11-21T10:00:00 has no time zone"),
    ("2026-11-20T10:00:00Z", None, datetime.datetime(2026, 11, 21), "now 2026-11-21T00:00:00 has no time zone"),
    ("yesterday", None, None, "the lease's start 'yesterday' is not an ISO 8601 time"),
    (1763632800, None, None, "the lease's start must be an ISO 8601 time with a zone"),
    ("2026-11-20T10:00:00Z", "2026-11-19T10:00:00Z", None, "the lease ends (2026-11-19T10:00:00+00:00) before it starts"),
    ("2026-11-20T10:00:00Z", None, "2026-11-19T10:00:00Z", "the lease starts (2026-11-20T10:00:00+00:00) after now"),
])
def test_bad_times_are_refused(started, ended, now, message):
    with pytest.raises(BillingError) as caught:
        charge(PRICE, started, ended, now=now)

    assert message in str(caught.value)


@pytest.mark.parametrize("free_days,message", [
    (-1, "the free period cannot be negative (-1 days)"),
    (7.5, "the free period must be a whole number of days, got 7.5"),
    ("7", "the free period must be a whole number of days, got '7'"),
    (True, "got True"),
    (100000, "a free period of 100000 days is absurd"),
])
def test_bad_free_periods_are_refused(free_days, message):
    with pytest.raises(BillingError) as caught:
        charge(PRICE, "2026-11-20T10:00:00Z", None, free_days=free_days)

    assert message in str(caught.value)


@pytest.mark.parametrize("warn_days", [-1, 1.5, None])
def test_bad_warning_delays_are_refused(warn_days):
    with pytest.raises(BillingError, match="the warning delay must be a whole number of days"):
        charge(PRICE, "2026-11-20T10:00:00Z", None, warn_days=warn_days)
