# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Service update checks: the path from the catalogue, the disk arithmetic, the package sources."""

from __future__ import (absolute_import, division, print_function)

__metaclass__ = type

import copy
import math
import pathlib

import pytest
import yaml

from ansible_collections.hosting.migration.plugins.module_utils import service_update as su

TOP = pathlib.Path(__file__).resolve().parents[4]
PATHS = yaml.safe_load((TOP / "roles/catalogue/defaults/main.yml").read_text())["service_update_paths"]
GiB = 1 << 30
MiB = 1 << 20

# What `apt-cache madison` and `apt-cache policy` printed on the lab's 2023 image with the provider
# repository (lab/repo) as its only source.
MADISON = """\
mariadb-server | 1:11.8.9+ds-0+deb13u1 | http://10.77.0.1:8080 provider/main amd64 Packages
mariadb-server | 1:10.11.18-0+deb12u1 | http://10.77.0.1:8080 provider/previous amd64 Packages
mariadb-client | 1:11.8.9+ds-0+deb13u1 | http://10.77.0.1:8080 provider/main amd64 Packages
mariadb-client | 1:10.11.18-0+deb12u1 | http://10.77.0.1:8080 provider/previous amd64 Packages
postgresql-17 | 17.12-0+deb13u1 | http://10.77.0.1:8080 provider/main amd64 Packages
postgresql-client-17 | 17.12-0+deb13u1 | http://10.77.0.1:8080 provider/main amd64 Packages
postgresql-common | 278+deb13u1 | http://10.77.0.1:8080 provider/main amd64 Packages
postgresql-common | 248+deb12u1 | http://10.77.0.1:8080 provider/previous amd64 Packages
"""
POLICY = """\
mariadb-server:
  Installed: 1:10.11.18-0+deb12u1
  Candidate: 1:11.8.9+ds-0+deb13u1
  Version table:
     1:11.8.9+ds-0+deb13u1 500
        500 http://10.77.0.1:8080 provider/main amd64 Packages
 *** 1:10.11.18-0+deb12u1 500
        500 http://10.77.0.1:8080 provider/previous amd64 Packages
        100 /var/lib/dpkg/status
mariadb-client:
  Installed: 1:10.11.18-0+deb12u1
  Candidate: 1:11.8.9+ds-0+deb13u1
  Version table:
     1:11.8.9+ds-0+deb13u1 500
        500 http://10.77.0.1:8080 provider/main amd64 Packages
 *** 1:10.11.18-0+deb12u1 500
        500 http://10.77.0.1:8080 provider/previous amd64 Packages
        100 /var/lib/dpkg/status
"""
# The same server before the provider repository is in its sources: only what is installed.
POLICY_NO_SOURCE = """\
mariadb-server:
  Installed: 1:10.11.18-0+deb12u1
  Candidate: 1:10.11.18-0+deb12u1
  Version table:
 *** 1:10.11.18-0+deb12u1 100
        100 /var/lib/dpkg/status
mariadb-client:
  Installed: 1:10.11.18-0+deb12u1
  Candidate: 1:10.11.18-0+deb12u1
  Version table:
 *** 1:10.11.18-0+deb12u1 100
        100 /var/lib/dpkg/status
"""


def mariadb_plan():
    return su.plan("mariadb", "10.11", "11.8", PATHS)


def postgresql_plan():
    return su.plan("postgresql", "15", "17", PATHS)


# --- the path ------------------------------------------------------------------------------------

def test_plan_mariadb_from_the_catalogue():
    plan = mariadb_plan()
    assert plan["packages"] == ["mariadb-server", "mariadb-client"]
    assert plan["method"] == "mariadb-upgrade"
    assert plan["version_package"] == "mariadb-server"
    assert plan["steps"] == ["checks", "backup", "stop", "packages", "data_upgrade", "start", "verify"]
    assert "libmariadb3" in plan["restore_packages"]


def test_plan_postgresql_from_the_catalogue():
    plan = postgresql_plan()
    assert plan["method"] == "pg_upgradecluster"
    assert plan["version_package"] == "postgresql-17"
    assert "postgresql-17" in plan["remove_packages"]


def test_plan_accepts_numbers_for_versions():
    assert su.plan("postgresql", 15, 17, PATHS)["to_version"] == "17"


@pytest.mark.parametrize("service, current, target, words", [
    ("redis", "7", "8", ["Unknown service 'redis'", "mariadb, postgresql"]),
    ("mariadb", "10.11", "10.11", ["already at version 10.11", "nothing to update"]),
    ("mariadb", "11.8", "10.11", ["older than the version on this server (11.8)", "does not downgrade"]),
    ("postgresql", "17", "15", ["does not downgrade"]),
    ("mariadb", "10.11", "12.0", ["12.0 is not a version the catalogue knows", "10.11, 11.8"]),
    ("mariadb", "10.6", "11.8", ["no update of mariadb from 10.6", "from 10.11"]),
    ("postgresql", "13", "17", ["no update of postgresql from 13"]),
    ("mariadb", "10.11", "eleven", ["'eleven' is not a version"]),
])
def test_plan_refusals(service, current, target, words):
    with pytest.raises(su.ServiceUpdateRefused) as error:
        su.plan(service, current, target, PATHS)
    for word in words:
        assert word in str(error.value)


def test_plan_refuses_a_known_version_without_a_path_from_here():
    paths = copy.deepcopy(PATHS)
    paths["postgresql"]["16"] = {"17": paths["postgresql"]["15"]["17"]}
    paths["postgresql"]["15"]["18"] = paths["postgresql"]["15"].pop("17")
    with pytest.raises(su.ServiceUpdateRefused) as error:
        su.plan("postgresql", "15", "17", paths)
    assert "no update of postgresql from 15 to 17 (from 15 it offers 18)" in str(error.value)


def test_versions_compare_as_numbers():
    # 10.5 -> 10.11 is an update, not a downgrade, though "10.5" > "10.11" as text.
    paths = {"mariadb": {"10.5": {"10.11": {"packages": ["mariadb-server"], "method": "mariadb-upgrade"}}}}
    assert su.plan("mariadb", "10.5", "10.11", paths)["to_version"] == "10.11"
    with pytest.raises(su.ServiceUpdateRefused, match="does not downgrade"):
        su.plan("mariadb", "10.11", "10.5", paths)


@pytest.mark.parametrize("entry, words", [
    ("yes", "must be a mapping"),
    ({"packages": [], "method": "mariadb-upgrade"}, "packages in the catalogue must be a non-empty list"),
    ({"packages": ["mariadb-server"], "method": "pg_upgradecluster"}, "for mariadb it must be one of mariadb-upgrade"),
    ({"packages": ["mariadb-server"], "method": "mariadb-upgrade", "version_package": "x"}, "must be one of its packages"),
])
def test_plan_refuses_a_broken_catalogue_entry(entry, words):
    with pytest.raises(su.ServiceUpdateRefused) as error:
        su.plan("mariadb", "10.11", "11.8", {"mariadb": {"10.11": {"11.8": entry}}})
    assert words in str(error.value)


def test_plan_with_no_paths_at_all():
    with pytest.raises(su.ServiceUpdateRefused, match="service_update_paths is empty"):
        su.plan("mariadb", "10.11", "11.8", None)


# --- disk ---------------------------------------------------------------------------------------

def test_human_size():
    assert su.human_size(0) == "0 B"
    assert su.human_size(1023) == "1023 B"
    assert su.human_size(1536) == "1.5 KiB"
    assert su.human_size(3 * GiB) == "3.0 GiB"
    assert su.human_size(5 * 1024 * GiB) == "5.0 TiB"


def test_disk_enough_on_separate_filesystems():
    outcome = su.disk_check(mariadb_plan(), 10 * GiB, backup_free=20 * GiB, data_free=20 * GiB)
    assert outcome["ok"], outcome["message"]
    backup, data = outcome["needs"]
    assert backup["written"] == 12 * GiB  # 1.2 times the data
    assert backup["margin"] == math.ceil(1.2 * GiB)  # 10 % of what is written, above the 1 GiB floor
    assert data["written"] == 10 * GiB


def test_disk_exactly_enough_and_one_byte_short():
    plan = mariadb_plan()
    data = 10 * GiB
    backup_need = 12 * GiB + math.ceil(1.2 * GiB)
    data_need = 10 * GiB + 1 * GiB
    assert su.disk_check(plan, data, backup_free=backup_need, data_free=data_need)["ok"]
    short = su.disk_check(plan, data, backup_free=backup_need - 1, data_free=data_need)
    assert not short["ok"]
    assert "the backup filesystem has" in short["message"] and "data filesystem" not in short["message"]
    short = su.disk_check(plan, data, backup_free=backup_need, data_free=data_need - 1)
    assert not short["ok"] and "the data filesystem has" in short["message"]


def test_disk_small_data_gets_the_minimum_margin():
    outcome = su.disk_check(postgresql_plan(), 100 * MiB, backup_free=2 * GiB, data_free=2 * GiB)
    assert outcome["ok"]
    assert all(need["margin"] == su.MIN_MARGIN_BYTES for need in outcome["needs"])
    assert not su.disk_check(postgresql_plan(), 100 * MiB, backup_free=GiB, data_free=2 * GiB)["ok"]


def test_disk_one_filesystem_must_hold_everything():
    plan = postgresql_plan()
    # 10 GiB of data: 12 GiB of dumps + 10 GiB new cluster + 2.2 GiB margin = 24.2 GiB.
    assert su.disk_check(plan, 10 * GiB, backup_free=25 * GiB, data_free=25 * GiB, same_filesystem=True)["ok"]
    refused = su.disk_check(plan, 10 * GiB, backup_free=23 * GiB, data_free=23 * GiB, same_filesystem=True)
    assert not refused["ok"]
    assert len(refused["needs"]) == 1
    message = refused["message"]
    assert "data directory 10.0 GiB" in message
    assert "has 23.0 GiB free but needs 24.2 GiB" in message
    assert "the backup (12.0 GiB) and a second data directory (10.0 GiB)" in message
    assert "Free some space" in message


def test_disk_margin_from_the_filesystem_size():
    outcome = su.disk_check(mariadb_plan(), GiB, backup_free=100 * GiB, data_free=100 * GiB,
                            backup_total=500 * GiB, data_total=200 * GiB)
    assert [need["margin"] for need in outcome["needs"]] == [50 * GiB, 20 * GiB]


def test_disk_empty_data_directory():
    outcome = su.disk_check(mariadb_plan(), 0, backup_free=GiB, data_free=GiB)
    assert outcome["ok"]
    assert not su.disk_check(mariadb_plan(), 0, backup_free=GiB - 1, data_free=GiB)["ok"]


def test_disk_custom_factor():
    outcome = su.disk_check(mariadb_plan(), 10 * GiB, backup_free=100 * GiB, data_free=100 * GiB, dump_factor=2.0)
    assert outcome["needs"][0]["written"] == 20 * GiB


@pytest.mark.parametrize("value", [-1, "10", None, 1.5, True])
def test_disk_refuses_nonsense_numbers(value):
    with pytest.raises(su.ServiceUpdateRefused, match="must be a number of bytes"):
        su.disk_check(mariadb_plan(), value, backup_free=GiB, data_free=GiB)


def test_require_disk_raises_with_the_numbers():
    with pytest.raises(su.ServiceUpdateRefused) as error:
        su.require_disk(mariadb_plan(), 10 * GiB, backup_free=GiB, data_free=GiB)
    assert "has 1.0 GiB free but needs 13.2 GiB" in str(error.value)
    assert error.value.details["needs"][0]["free"] == GiB


# --- package availability -------------------------------------------------------------------------

def test_parse_madison():
    listing = su.parse_madison(MADISON + "mariadb | 1:11.8.9+ds-0+deb13u1 | http://x trixie/main Sources\n")
    assert listing["mariadb-server"] == [("1:11.8.9+ds-0+deb13u1", "http://10.77.0.1:8080 provider/main"),
                                         ("1:10.11.18-0+deb12u1", "http://10.77.0.1:8080 provider/previous")]
    assert "mariadb" not in listing


def test_parse_madison_with_padded_names_and_noise():
    text = "   mariadb-server | 1:11.8.9 | file:/srv/repo provider/main amd64 Packages\nN: nothing\n"
    assert su.parse_madison(text) == {"mariadb-server": [("1:11.8.9", "file:/srv/repo provider/main")]}


def test_parse_policy():
    policy = su.parse_policy(POLICY)
    assert policy["mariadb-server"]["installed"] == "1:10.11.18-0+deb12u1"
    assert policy["mariadb-server"]["candidate"] == "1:11.8.9+ds-0+deb13u1"
    assert policy["mariadb-server"]["versions"] == [
        ("1:11.8.9+ds-0+deb13u1", ["http://10.77.0.1:8080 provider/main"]),
        ("1:10.11.18-0+deb12u1", ["http://10.77.0.1:8080 provider/previous"])]


def test_parse_policy_unknown_package():
    policy = su.parse_policy("mariadb-server:\n  Installed: (none)\n  Candidate: (none)\n  Version table:\n")
    assert policy["mariadb-server"] == {"installed": None, "candidate": None, "versions": []}


@pytest.mark.parametrize("version, wanted, matches", [
    ("1:11.8.9+ds-0+deb13u1", "11.8", True),
    ("1:10.11.18-0+deb12u1", "11.8", False),
    ("1:11.80.1-1", "11.8", False),
    ("17.12-0+deb13u1", "17", True),
    ("17~rc1-1", "17", True),
    ("170.1-1", "17", False),
    ("11.8", "11.8", True),
])
def test_matches_version(version, wanted, matches):
    assert su.matches_version(version, wanted) is matches


def test_check_packages_from_madison():
    chosen = su.check_packages(mariadb_plan(), MADISON)
    assert chosen == {
        "mariadb-server": {"version": "1:11.8.9+ds-0+deb13u1", "origin": "http://10.77.0.1:8080 provider/main"},
        "mariadb-client": {"version": "1:11.8.9+ds-0+deb13u1", "origin": "http://10.77.0.1:8080 provider/main"}}
    assert su.check_packages(postgresql_plan(), MADISON)["postgresql-common"]["version"] == "278+deb13u1"


def test_check_packages_from_policy():
    assert su.check_packages(mariadb_plan(), POLICY)["mariadb-server"]["version"] == "1:11.8.9+ds-0+deb13u1"


def test_check_packages_installed_only_is_not_available():
    with pytest.raises(su.ServiceUpdateRefused) as error:
        su.check_packages(mariadb_plan(), POLICY_NO_SOURCE)
    message = str(error.value)
    assert "not in any package source: mariadb-server, mariadb-client" in message
    assert "provider repository" in message


def test_check_packages_names_each_missing_one():
    madison = "\n".join(line for line in MADISON.splitlines() if not line.startswith("postgresql-client-17"))
    with pytest.raises(su.ServiceUpdateRefused) as error:
        su.check_packages(postgresql_plan(), madison)
    assert "not in any package source: postgresql-client-17" in str(error.value)
    assert error.value.details["missing"] == ["postgresql-client-17"]


def test_check_packages_wrong_major_version():
    madison = "\n".join(line for line in MADISON.splitlines() if "deb13" not in line or "mariadb-client" in line)
    with pytest.raises(su.ServiceUpdateRefused) as error:
        su.check_packages(mariadb_plan(), madison)
    message = str(error.value)
    assert "not at version 11.8: mariadb-server (the sources have 1:10.11.18-0+deb12u1 from " in message
    assert "mariadb-client" not in message.split("not at version")[1]


def test_check_packages_nothing_at_all():
    with pytest.raises(su.ServiceUpdateRefused, match="not in any package source: postgresql-17, postgresql-client-17, "
                                                      "postgresql-common"):
        su.check_packages(postgresql_plan(), "")
