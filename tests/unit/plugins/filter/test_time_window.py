import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hosting.migration.plugins.filter.time_window import time_window


def test_a_window_around_a_recorded_time():
    # 2025-03-01T12:00:00Z is 1740830400.
    assert time_window("2025-03-01T12:00:00.000000Z", 30, 3.5) == [1740830370.0, 1740830403.5]


@pytest.mark.parametrize("text", ["yesterday", "2025-03-01T12:00:00"])
def test_times_without_a_zone_or_not_times_are_refused(text):
    with pytest.raises(AnsibleFilterError):
        time_window(text)
