import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.hosting.migration.plugins.filter.dns_expected import dns_expected


def change(name, new_ttl):
    return {"name": name, "type": "A", "old_ttl": 300, "old_addresses": ["10.77.0.21"], "new_ttl": new_ttl,
            "new_addresses": ["10.77.0.21"]}


def test_only_the_changes_since_the_last_restore_count():
    events = [
        {"kind": "dns_changed", "details": {"changes": [change("alice.hosted.test", 60)]}},
        {"kind": "move.step", "details": {"to": "done"}},
        {"kind": "dns_restored", "details": {"changes": [change("alice.hosted.test", 300)]}},
        {"kind": "dns_changed", "details": {"changes": [change("bob.hosted.test", 5)]}},
        {"kind": "dns_changed", "details": {"changes": []}},
        {"kind": "dns_changed", "details": {"changes": [change("alice.hosted.test", 5)]}},
    ]
    assert [c["name"] for c in dns_expected(events)] == ["bob.hosted.test", "alice.hosted.test"]
    assert dns_expected(events[:3]) == []
    assert dns_expected([]) == []


def test_not_a_list_is_refused():
    with pytest.raises(AnsibleFilterError, match="a list"):
        dns_expected({"events": []})


def test_settled_when_the_old_ttls_of_the_current_migration_have_passed():
    from ansible_collections.hosting.migration.plugins.filter.dns_settled_at import dns_settled_at
    events = [
        {"kind": "dns_changed", "at": "2026-01-01T00:00:00Z", "details": {"changes": [change("a.hosted.test", 5)]}},
        {"kind": "dns_restored", "at": "2026-01-02T00:00:00Z", "details": {"changes": []}},
        {"kind": "dns_changed", "at": "2026-02-01T00:00:00Z", "details": {"changes": [change("b.hosted.test", 5)]}},
        {"kind": "dns_changed", "at": "2026-02-01T00:01:00Z",
         "details": {"changes": [dict(change("b.hosted.test", 5), old_ttl=5)]}},
    ]
    feb = 1769904000.0  # 2026-02-01T00:00:00Z
    assert dns_settled_at(events) == feb + 300
    assert dns_settled_at(events[:2]) == 0.0
    with pytest.raises(AnsibleFilterError, match="valid time"):
        dns_settled_at([{"kind": "dns_changed", "details": {"changes": []}}])


def test_answers_naming_addresses_expire_after_the_changes_away_from_them():
    from ansible_collections.hosting.migration.plugins.filter.dns_settled_at import dns_settled_at
    to_transit = dict(change("a.hosted.test", 5), old_ttl=5, old_addresses=["10.77.0.21"], new_addresses=["10.77.0.30"])
    back_home = dict(change("a.hosted.test", 5), old_ttl=5, old_addresses=["10.77.0.30"], new_addresses=["10.77.0.21"])
    restored = dict(change("a.hosted.test", 300), old_ttl=5, old_addresses=["10.77.0.21"], new_addresses=["10.77.0.21"])
    events = [
        {"kind": "dns_changed", "at": "2026-02-01T00:00:00Z", "details": {"changes": [to_transit]}},
        {"kind": "dns_changed", "at": "2026-02-01T00:10:00Z", "details": {"changes": [back_home]}},
        {"kind": "dns_restored", "at": "2026-02-01T00:20:00Z", "details": {"changes": [restored]}},
    ]
    feb = 1769904000.0  # 2026-02-01T00:00:00Z
    # The switch back is the last change away from the transit server: a restore does not end it.
    assert dns_settled_at(events, naming=["10.77.0.30", "fd77:7::30"]) == feb + 600 + 5
    # Without naming, the restore ends the migration: nothing left to wait for.
    assert dns_settled_at(events) == 0.0
    assert dns_settled_at(events[:1], naming=["10.77.0.30"]) == 0.0
    with pytest.raises(AnsibleFilterError, match="a list of addresses"):
        dns_settled_at(events, naming="10.77.0.30")
