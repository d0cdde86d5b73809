"""Tests of the lab's account definitions (lab/bin/accounts.py): accounts numbered across several
customer servers, each with its own service addresses, and bad --server values refused."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ACCOUNTS = Path(__file__).resolve().parents[3] / "lab" / "bin" / "accounts.py"


def run(state, *servers):
    return subprocess.run(
        [sys.executable, str(ACCOUNTS), *("--server=" + server for server in servers),
         "--name-server=10.77.0.10", "--state=" + str(state)],
        capture_output=True, text=True, check=False)


def test_accounts_numbered_across_servers_with_their_own_addresses(tmp_path):
    done = run(tmp_path, "dedicated1:3:10.77.0.21,10.77.0.22,fd77:7::21", "dedicated2:1:10.77.0.25,fd77:7::25")
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "accounts.json").read_text())
    placed = [(account["name"], account["server"], account["service_addresses"]) for account in summary["accounts"]]
    assert placed == [
        ("alice", "dedicated1", ["10.77.0.21", "fd77:7::21"]),
        ("bob", "dedicated1", ["10.77.0.22", "fd77:7::21"]),
        ("carol", "dedicated1", ["10.77.0.21", "fd77:7::21"]),
        ("dave", "dedicated2", ["10.77.0.25", "fd77:7::25"]),
    ]
    dave = summary["accounts"][3]
    assert {"name": "dave.shop.test", "type": "A", "address": "10.77.0.25"} in dave["records"]
    assert {"name": "dave.hosted.test", "type": "AAAA", "address": "fd77:7::25"} in dave["records"]
    assert "uid: 10004" in (tmp_path / "accounts" / "dave.yml").read_text()
    assert sorted(json.loads((tmp_path / "accounts" / "passwords.json").read_text())) == ["alice", "bob", "carol", "dave"]


def test_same_secret_same_accounts(tmp_path):
    servers = ("dedicated1:2:10.77.0.21,fd77:7::21",)
    assert run(tmp_path, *servers).returncode == 0
    first = (tmp_path / "accounts" / "passwords.json").read_text()
    assert run(tmp_path, *servers).returncode == 0
    assert (tmp_path / "accounts" / "passwords.json").read_text() == first


@pytest.mark.parametrize("server, says", [
    ("dedicated1", "is not NAME:COUNT:ADDRESS"),
    ("dedicated1:x:10.77.0.21", "is not NAME:COUNT:ADDRESS"),
    ("dedicated1:0:10.77.0.21", "between 1 and 999"),
    (":2:10.77.0.21", "a server name"),
    ("dedicated1:2:fd77:7::21", "at least one IPv4 service address"),
])
def test_bad_server_refused_before_anything_is_written(tmp_path, server, says):
    done = run(tmp_path, server)
    assert done.returncode == 2
    assert says in done.stderr
    assert not (tmp_path / "accounts.json").exists()
