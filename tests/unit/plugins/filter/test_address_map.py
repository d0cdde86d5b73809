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
