"""The transit_charge and lease_table filters over leases as the state store records them."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hosting.migration.plugins.filter.lease_table import lease_table
from ansible_collections.hosting.migration.plugins.filter.transit_charge import transit_charge

NOW = "2026-11-26T12:00:00Z"


def lease(lease_id=1, transit="transit1", started_at="2026-11-20T10:00:00Z", released_at=None, free_days=7,
          monthly="49.00", currency="EUR", customer_server="dedicated1"):
    return {"id": lease_id, "transit": transit, "customer_server": customer_server, "started_at": started_at,
            "free_days": free_days, "released_at": released_at, "price": {"monthly": monthly, "currency": currency}}


# --- transit_charge --------------------------------------------------------------------------

def test_the_charge_of_a_released_lease_names_the_lease():
    result = transit_charge(lease(released_at="2026-12-03T00:00:00Z"), now=NOW)

    # Free until 27 November 10:00; 27 to 30 November (4 x 49/30 = 6.5333..) and 1 to 2 December
    # (2 x 49/31 = 3.1612..): 9.6946.. -> 9.69
    assert (result["lease"], result["transit"], result["customer_server"]) == (1, "transit1", "dedicated1")
    assert (result["billed_days"], result["amount"], result["currency"]) == (6, "9.69", "EUR")
    assert [month["subtotal"] for month in result["breakdown"]] == ["6.53", "3.16"]
    assert result["running"] is False


def test_the_free_days_of_the_lease_are_used_and_default_to_seven():
    short = transit_charge(lease(free_days=2), now=NOW)
    unset = transit_charge(dict(lease(), free_days=None), now=NOW)

    # Free until 22 November 10:00; 22 to 26 November so far: 5 x 49/30 = 8.1666.. -> 8.17
    assert (short["free_until"], short["amount"]) == ("2026-11-22T10:00:00+00:00", "8.17")
    assert (unset["free_days"], unset["amount"]) == (7, "0.00")


def test_time_zone_and_warning_delay_are_passed_on():
    result = transit_charge(lease(), now=NOW, time_zone="Europe/Berlin", warn_days=0)

    assert result["started_at"] == "2026-11-20T11:00:00+01:00"
    assert (result["free_period_ends_in_days"], result["warning"]) == (0.9, None)


def test_a_lease_record_of_the_ledger_is_understood():
    record = {"id": 4, "transit": "transit1", "customer_server": "dedicated1", "state": "released",
              "started_at": "2026-03-28T22:30:00.000000Z", "free_days": 0, "price_monthly": "49.00",
              "currency": "EUR", "time_zone": "Europe/Berlin", "released_at": "2026-03-29T22:30:00.000000Z",
              "final_amount": "4.74", "wiped_at": None}

    # Berlin's 28, 29 and 30 March: 3 x 49/31 = 4.7419.. -> 4.74; in UTC only the 28th and 29th: 3.16
    assert transit_charge(record)["amount"] == "4.74"
    assert transit_charge(record, time_zone="UTC")["amount"] == "3.16"


@pytest.mark.parametrize("bad,message", [
    (lease(monthly=49.0), "transit_charge: lease 1 (transit1 for dedicated1): the monthly price of dedicated1 must be"),
    (lease(monthly="-5"), "the monthly price of dedicated1 is negative"),
    (lease(started_at="2026-11-20T10:00:00"), "has no time zone"),
    (dict(lease(), started_at=None), "transit_charge: lease 1 (transit1 for dedicated1) has no started_at"),
    (dict(lease(), price=None), "has no price"),
    ("lease 1", "transit_charge expects a lease"),
])
def test_bad_leases_are_refused_naming_the_lease(bad, message):
    with pytest.raises(AnsibleFilterError) as caught:
        transit_charge(bad, now=NOW)

    assert message in str(caught.value)


# --- lease_table -----------------------------------------------------------------------------

def test_the_table_has_a_row_per_lease_and_the_totals():
    leases = [
        lease(),
        lease(2, "transit3", "2026-10-01T10:00:00Z", "2026-10-20T08:00:00Z", free_days=3, customer_server="vps9"),
        lease(3, "transit4", "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", free_days=0, monthly="10.00",
              currency="USD", customer_server="vps10"),
    ]

    lines = lease_table(leases, now=NOW).splitlines()

    assert [cell.strip() for cell in lines[0].split("  ") if cell] == [
        "lease", "transit", "customer server", "started", "free until", "days billed", "amount", "warning"]
    # Lease 1: in its free period, 0.9 days left.
    assert lines[2].split() == ["1", "transit1", "dedicated1", "2026-11-20", "10:00", "2026-11-27", "10:00", "0",
                                "0.00", "EUR", "so", "far", "free", "period", "ends", "in", "0.9", "days"]
    # Lease 2: free until 4 October 10:00, 4 to 20 October: 17 x 49/31 = 26.8709.. -> 26.87
    assert lines[3].split() == ["2", "transit3", "vps9", "2026-10-01", "10:00", "2026-10-04", "10:00", "17",
                                "26.87", "EUR", "-"]
    # Lease 3: the whole of October, 10.00 USD
    assert lines[4].split()[-4:] == ["31", "10.00", "USD", "-"]
    assert lines[-1] == "3 leases, 1 running; billed 26.87 EUR, 10.00 USD (times in UTC)"


def test_the_table_takes_charges_already_computed():
    charged = [transit_charge(lease(released_at="2026-12-03T00:00:00Z"), now=NOW)]

    assert lease_table(charged).splitlines()[-1] == "1 lease, 0 running; billed 9.69 EUR (times in UTC)"


def test_an_empty_table():
    assert lease_table([]).splitlines()[-1] == "0 leases, 0 running"


@pytest.mark.parametrize("bad,message", [
    ({"id": 1}, "lease_table expects a list of leases"),
    ([{"amount": "1.00", "billed_days": 1}], "an entry is neither a lease nor a result of"),
    ([lease(monthly="abc")], "transit_charge: lease 1 (transit1 for dedicated1)"),
])
def test_bad_entries_are_refused(bad, message):
    with pytest.raises(AnsibleFilterError) as caught:
        lease_table(bad, now=NOW)

    assert message in str(caught.value)
