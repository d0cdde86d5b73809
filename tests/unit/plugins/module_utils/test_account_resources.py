"""What an account holds: file counting (hard links once), database size parsing, selection."""
import dataclasses
import os

import pytest

from ansible_collections.hosting.migration.plugins.module_utils import account_resources
from ansible_collections.hosting.migration.plugins.module_utils.account_inventory import (
    AccountNotFound, select_accounts)
from ansible_collections.hosting.migration.plugins.module_utils.account_spec import validate_spec


def make_spec(name, home, databases=()):
    spec = validate_spec({
        "name": name, "uid": 10001, "gid": 10001,
        "databases": [{"engine": engine, "name": f"{name}_{db}", "users": []} for engine, db in databases],
        "cron": [{"schedule": "@daily", "command": "true"}],
    }, f"/etc/hosting/accounts/{name}.yml")
    # Specs only allow homes under /home or /srv; the tests measure a temporary directory.
    return dataclasses.replace(spec, home=str(home))


def test_home_usage_counts_hard_links_once_and_symlinks_as_entries(tmp_path):
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.php").write_bytes(b"x" * 100)
    os.link(tmp_path / "www" / "index.php", tmp_path / "www" / "copy.php")
    (tmp_path / "link").symlink_to("www/index.php")
    (tmp_path / "empty").write_bytes(b"")

    usage = account_resources.home_usage(str(tmp_path))

    assert usage == {"files": 4, "bytes": 100}


def test_database_sizes_are_parsed_per_name_and_missing_ones_are_none():
    calls = []

    def run(argv):
        calls.append(argv)
        return "alice_app\t4096\nother_db\t1\n"

    sizes = account_resources.mariadb_sizes(run, ["alice_app", "alice_gone"])

    assert sizes == {"alice_app": 4096, "alice_gone": None}
    assert "'alice_app', 'alice_gone'" in calls[0][-1]


def test_no_database_asks_no_server():
    def run(argv):
        raise AssertionError("no query expected")

    assert account_resources.postgresql_sizes(run, []) == {}


def test_account_resources_combines_files_and_both_engines(tmp_path):
    spec = make_spec("alice", tmp_path, [("mariadb", "app"), ("postgresql", "app")])
    (tmp_path / "a.txt").write_text("hello")

    def run(argv):
        return "alice_app\t2000\n" if argv[0] == "mariadb" else "alice_app\t3000\n"

    resources = account_resources.account_resources(spec, run)

    assert resources["files"] == 1 and resources["bytes"] == 5
    assert resources["database_bytes"] == 5000
    assert [(db["engine"], db["exists"]) for db in resources["databases"]] == [("mariadb", True), ("postgresql", True)]
    assert resources["cron_entries"] == 1


def test_select_accounts_names_the_missing_and_the_existing(tmp_path):
    specs = [make_spec("alice", tmp_path / "a"), make_spec("bob", tmp_path / "b")]

    assert [s.name for s in select_accounts(specs, [])] == ["alice", "bob"]
    assert [s.name for s in select_accounts(specs, ["bob"])] == ["bob"]
    with pytest.raises(AccountNotFound, match=r"no account named 'carol' on this server \(it has: alice, bob\)"):
        select_accounts(specs, ["carol"])
