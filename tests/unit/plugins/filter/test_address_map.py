import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hosting.migration.plugins.filter.address_map import address_map


def test_each_address_maps_to_the_first_of_its_family():
    assert address_map(["10.77.0.21", "10.77.0.22", "fd77:7::21"], ["10.77.0.30", "fd77:7::30", "10.77.0.99"]) == {
        "10.77.0.21": "10.77.0.30", "10.77.0.22": "10.77.0.30", "fd77:7::21": "fd77:7::30"}


def test_a_missing_family_is_named():
    with pytest.raises(AnsibleFilterError, match="no IPv6 address among 10.77.0.30 for fd77:7::21"):
        address_map(["fd77:7::21"], ["10.77.0.30"])


def test_not_an_address():
    with pytest.raises(AnsibleFilterError, match="address_map"):
        address_map(["alice.example"], ["10.77.0.30"])


def test_freeze_window_in_unix_seconds_with_slack():
    from ansible_collections.hosting.migration.plugins.filter.freeze_window import freeze_window
    move = {"id": 1, "account": "alice", "freeze_started_at": "2026-01-01T00:00:10.000000Z",
            "freeze_ended_at": "2026-01-01T00:00:14.500000Z"}
    start, end = freeze_window(move, 1.0)
    assert end - start == pytest.approx(6.5)
    with pytest.raises(AnsibleFilterError, match="no complete freeze window"):
        freeze_window({"id": 2, "account": "bob", "freeze_started_at": None, "freeze_ended_at": None})
