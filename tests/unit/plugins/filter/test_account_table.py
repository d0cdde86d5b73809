"""The preparation report's table."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hosting.migration.plugins.filter.account_table import account_table, human_bytes


def account(name, files, size, db_bytes):
    return {
        "name": name,
        "spec": {"uid": 10001},
        "resources": {
            "files": files, "bytes": size,
            "databases": [{"engine": "mariadb", "name": f"{name}_app", "bytes": db_bytes}],
            "database_bytes": db_bytes or 0, "cron_entries": 1, "mailboxes": 1,
            "php": ["8.2"], "domains": [f"{name}.example"],
        },
    }


def test_table_has_a_row_per_account_and_a_total():
    lines = account_table([account("alice", 3, 2048, 1048576), account("bob", 1, 10, None)]).splitlines()

    assert lines[0].split()[:3] == ["account", "uid", "files"]
    assert "alice" in lines[2] and "2.0 KiB" in lines[2] and "mariadb alice_app 1.0 MiB" in lines[2]
    assert "mariadb bob_app missing" in lines[3]
    assert lines[-1] == "2 accounts, 4 files, 2.0 KiB of files, 1.0 MiB of databases"


@pytest.mark.parametrize("count,text", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 1024 ** 4, "5120.0 GiB")])
def test_human_bytes(count, text):
    assert human_bytes(count) == text


def test_accounts_without_resources_are_refused():
    with pytest.raises(AnsibleFilterError, match="resources=true"):
        account_table([{"name": "alice", "spec": {}}])
