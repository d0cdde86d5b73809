# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The service update as the module runs it, on a fake server: the checks and their refusals
(nothing changes), a whole update with its backup and comparison, the rollback after a failure
injected at each step, and the sites compared before and after."""

from __future__ import (absolute_import, division, print_function)

__metaclass__ = type

import collections
import json
import os
import pathlib
import stat
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import yaml

from ansible_collections.hosting.migration.plugins.module_utils import service_update_procedure as sp
from ansible_collections.hosting.migration.plugins.module_utils import service_update_server as ss
from ansible_collections.hosting.migration.plugins.module_utils.db_checksum import ChecksumError
from ansible_collections.hosting.migration.plugins.module_utils.manifest import file_sha256
from ansible_collections.hosting.migration.plugins.module_utils.service_update import ServiceUpdateRefused

TOP = pathlib.Path(__file__).resolve().parents[4]
PATHS = yaml.safe_load((TOP / "roles/catalogue/defaults/main.yml").read_text())["service_update_paths"]
GiB = 1 << 30
StatVfs = collections.namedtuple("StatVfs", "f_bavail f_frsize f_blocks")

SERVERS = {
    "mariadb": {"old": "10.11.14-MariaDB-0+deb12u2", "new": "11.8.3-MariaDB-0+deb13u1 from Debian",
                "packages": {"mariadb-server": "1:10.11.14-0+deb12u2", "mariadb-server-core": "1:10.11.14-0+deb12u2",
                             "mariadb-client": "1:10.11.14-0+deb12u2", "mariadb-common": "1:10.11.14-0+deb12u2",
                             "libmariadb3": "1:10.11.14-0+deb12u2"},
                "madison": (" mariadb-server | 1:11.8.3-0+deb13u1 | http://10.77.0.1:8080 provider/main amd64 Packages\n"
                            " mariadb-server | 1:10.11.14-0+deb12u2 | http://10.77.0.1:8080 provider/previous amd64 Packages\n"
                            " mariadb-client | 1:11.8.3-0+deb13u1 | http://10.77.0.1:8080 provider/main amd64 Packages\n")},
    "postgresql": {"old": "15.14 (Debian 15.14-0+deb12u1)", "new": "17.6 (Debian 17.6-0+deb13u1)",
                   "packages": {"postgresql-15": "15.14-0+deb12u1", "postgresql-client-15": "15.14-0+deb12u1",
                                "postgresql-common": "248+deb12u1", "postgresql-client-common": "248+deb12u1"},
                   "madison": (" postgresql-17 | 17.6-0+deb13u1 | http://10.77.0.1:8080 provider/main amd64 Packages\n"
                               " postgresql-client-17 | 17.6-0+deb13u1 | http://10.77.0.1:8080 provider/main amd64 Packages\n"
                               " postgresql-common | 278 | http://10.77.0.1:8080 provider/main amd64 Packages\n")},
}
CONTENTS = {"alice_app": {"items": {"rows": 100, "checksum": "123", "columns": "c1"}},
            "bob_app": {"items": {"rows": 7, "checksum": "456", "columns": "c1"},
                        "logs": {"rows": 0, "checksum": "0", "columns": "c2"}}}


class FakeServer(object):
    """A server with one database service: commands recorded, the version changing with the apt
    runs, the dumps written for real under tmp_path, the sites answering with a digest."""

    def __init__(self, service, tmp_path, fail_words=None, always_fail=None, free=100 * GiB, simulation=""):
        self.service, self.tmp_path = service, tmp_path
        self.server = json.loads(json.dumps(SERVERS[service]))
        self.version = self.server["old"]
        self.running = True
        self.environment = {}
        self.fail_words, self.always_fail = fail_words, always_fail
        self.free, self.simulation = free, simulation
        self.calls, self.slept = [], []
        self.existing = set()
        self.madison = self.server["madison"]
        self.contents = json.loads(json.dumps(CONTENTS))
        self.contents_after_update = self.contents_after_rollback = None
        self.unreadable = None
        self.digests = {"alice.example": "aaa", "bob.example": "bbb"}
        self.digests_after_update = None
        self.now = 1000.0
        self.clusters = "15 main 5432 online postgres /var/lib/postgresql/15/main /var/log/postgresql/15.log\n"

    # --- the Host interface ----------------------------------------------------------------------

    def run(self, argv, stdout_path=None, stdin=None):
        argv = list(argv)
        self.calls.append(argv)
        self.now += 0.25
        text = " ".join(argv)
        if self.fail_words and all(word in text for word in self.fail_words):
            self.fail_words = None
            return 1, "", "injected failure\n"
        if self.always_fail and all(word in text for word in self.always_fail):
            return 2, "", "still failing\n"
        if stdout_path:
            with open(stdout_path, "w") as handle:
                handle.write("-- dump of %s\n" % argv[-1])
            return 0, "", ""
        return 0, self.answer(argv, text, stdin or ""), ""

    def answer(self, argv, text, stdin):
        if argv[0] == "dpkg-query":
            return "".join("%s\t%s\tii \n" % item for item in sorted(self.server["packages"].items())) + "gone\t1\trc \n"
        if "SELECT VERSION(), @@datadir" in text:
            return "%s\t/var/lib/mysql/\n" % self.version
        if "SELECT VERSION()" in text or "SHOW server_version" in stdin:
            return self.version + "\n"
        if "SHOW DATABASES" in text:
            return "information_schema\nalice_app\nbob_app\nmysql\nperformance_schema\nsys\n"
        if "SELECT datname" in stdin:
            return "alice_app\nbob_app\npostgres\n"
        if argv[0] == "pg_lsclusters":
            return self.clusters
        if argv[0] == "du":
            return "%d\t%s\n" % (2 * GiB, argv[-1])
        if argv[:2] == ["apt-cache", "madison"]:
            return self.madison
        if argv[:2] == ["apt-get", "-s"]:
            return self.simulation
        if argv[0] == "env" and "install" in argv:
            # The new version (with whatever it does to the data), or the old one and its data back.
            if "--allow-downgrades" in argv:
                self.version, self.digests = self.server["old"], self.old_digests
                self.contents = self.contents_after_rollback or self.old_contents
            else:
                self.old_contents, self.old_digests = self.contents, self.digests
                self.version = self.server["new"]
                self.contents = self.contents_after_update or self.contents
                self.digests = self.digests_after_update or self.digests
        return ""

    def checked(self, argv, stdin=None):
        rc, stdout, stderr = self.run(argv, stdin=stdin)
        if rc:
            raise ss.ServiceUpdateError("%s exited with %d: %s" % (argv[0], rc, stderr.strip()))
        return stdout

    def statvfs(self, path):
        return StatVfs(self.free // 4096, 4096, 200 * GiB // 4096)

    def device(self, path):
        return 1

    def exists(self, path):
        return path in self.existing or os.path.lexists(path)

    def makedirs(self, path):
        os.makedirs(path, mode=0o700)

    def which(self, name):
        return "/usr/bin/" + name

    def sleep(self, seconds):
        self.slept.append(seconds)

    def clock(self):
        self.now += 0.5
        return self.now

    def wall_time(self):
        return 1795000000.0

    def fetch(self, url, host_header, timeout_s):
        return 200, "account: x\nphp: 8.2\ndigest: %s\n" % self.digests[host_header]

    # --- what the tests look at ------------------------------------------------------------------

    def ran(self, *words):
        return [call for call in self.calls if all(word in " ".join(call) for word in words)]


@pytest.fixture
def fake_checksums(monkeypatch):
    """The per-table checksums come from the fake server's contents (db_checksum has its own tests)."""
    def table_checksums(checked, engine, database):
        server = checked.__self__
        if server.unreadable == database:
            raise ChecksumError("unexpected line in the table listing")
        return json.loads(json.dumps(server.contents.get(database, {})))
    monkeypatch.setattr(sp, "table_checksums", table_checksums)


def params(tmp_path, service="mariadb", **changes):
    values = dict(service=service, to_version="11.8" if service == "mariadb" else "17", paths=PATHS, mode="update",
                  backup_dir=str(tmp_path / "backups"), keep_old_data=True, cluster="main", update_cache=True,
                  sites=[{"account": "alice", "host": "alice.example", "address": "10.77.0.21", "port": 80, "path": "/"},
                         {"account": "bob", "host": "bob.example", "address": "fd77:7::21", "port": 80, "path": "/"}],
                  site_pattern=r"digest: (\S+)", site_attempts=3, fail_at=None)
    values.update(changes)
    return values


def update(tmp_path, service="mariadb", server=None, check_mode=False, **changes):
    server = server or FakeServer(service, tmp_path)
    return sp.run_service_update(params(tmp_path, service, **changes), host=server, check_mode=check_mode), server


def step_names(result, phase):
    return [step["name"] for step in result["steps"] if step["phase"] == phase]


# --- checks only ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["mode", "check_mode"])
def test_the_checks_change_nothing_and_say_so(tmp_path, fake_checksums, how):
    result, server = update(tmp_path, check_mode=how == "check_mode", **({"mode": "check"} if how == "mode" else {}))
    assert result["ok"] and not result["changed"]
    assert result["outcome"] == "checked"
    assert result["msg"].startswith("Every check passed: mariadb 10.11 can be updated to 11.8 on this server")
    assert "Nothing was changed" in result["msg"]
    assert step_names(result, "update") == ["checks"]
    assert server.ran("apt-get", "update") and server.ran("apt-cache", "madison", "mariadb-server")
    assert not server.ran("systemctl") and not server.ran("install")
    assert not (tmp_path / "backups").exists()
    assert result["checks"]["packages"]["mariadb-server"]["version"] == "1:11.8.3-0+deb13u1"
    assert result["checks"]["databases"] == {"alice_app": {"tables": 1, "rows": 100},
                                             "bob_app": {"tables": 2, "rows": 7}}
    assert [(site["host"], site["status"], site["digest"]) for site in result["sites"]] == [
        ("alice.example", 200, "aaa"), ("bob.example", 200, "bbb")]
    assert result["version_before"] == result["version_after"] == SERVERS["mariadb"]["old"]


def test_the_system_databases_are_neither_dumped_nor_compared(tmp_path, fake_checksums):
    result, _server = update(tmp_path, mode="check")
    assert result["databases"] == ["alice_app", "bob_app"]


def test_without_update_cache_the_package_lists_are_not_refreshed(tmp_path, fake_checksums):
    _result, server = update(tmp_path, mode="check", update_cache=False)
    assert not server.ran("apt-get", "update")


# --- refusals: nothing changes -------------------------------------------------------------------------

def refused(tmp_path, service="mariadb", prepare=None, **changes):
    server = FakeServer(service, tmp_path)
    if prepare:
        prepare(server)
    with pytest.raises(ServiceUpdateRefused) as caught:
        sp.run_service_update(params(tmp_path, service, **changes), host=server)
    assert not server.ran("systemctl") and not server.ran("install") and not server.ran("apt-get", "-s")
    assert not (tmp_path / "backups").exists()
    return str(caught.value), caught.value.details


@pytest.mark.parametrize("to_version, words", [
    ("10.6", "service_update does not downgrade"),
    ("12.0", "not a version the catalogue knows (it knows 10.11, 11.8)"),
    ("eleven", "is not a version"),
])
def test_a_path_the_catalogue_does_not_have_is_refused(tmp_path, fake_checksums, to_version, words):
    message, _details = refused(tmp_path, to_version=to_version)
    assert words in message


@pytest.mark.parametrize("service", ["mariadb", "postgresql"])
def test_a_second_run_after_the_update_changes_nothing(tmp_path, fake_checksums, service):
    server = FakeServer(service, tmp_path)
    server.server["packages"]["mariadb-server"] = "1:11.8.3-0+deb13u1"
    server.version = SERVERS[service]["new"]
    server.clusters = "17 main 5432 online postgres /var/lib/postgresql/17/main /var/log/postgresql/17.log\n"
    result, _server = update(tmp_path, service, server=server)
    assert result["ok"] and not result["changed"] and result["outcome"] == "already_updated"
    assert result["msg"] == "%s already runs version %s on this server (%s): nothing to update." % (
        service, "11.8" if service == "mariadb" else "17", SERVERS[service]["new"])
    assert not server.ran("apt-get") and not server.ran("systemctl")


def test_a_version_without_a_path_from_the_servers_version_is_refused(tmp_path, fake_checksums):
    def older(server):
        server.server["packages"] = dict(server.server["packages"], **{"mariadb-server": "1:10.6.18-0+deb11u1"})
    paths = {"mariadb": {"10.11": {"11.8": PATHS["mariadb"]["10.11"]["11.8"]}, "10.6": {}}}
    message, _details = refused(tmp_path, prepare=older, paths=paths)
    assert "from 10.6 it offers nothing" in message


def test_packages_not_in_the_sources_are_refused(tmp_path, fake_checksums):
    def no_repository(server):
        server.madison = ""
    message, details = refused(tmp_path, prepare=no_repository)
    assert message.startswith("The packages of mariadb 11.8 are not available on this server")
    assert "not in any package source: mariadb-server, mariadb-client" in message
    assert "Check the provider repository in the server's APT sources" in message
    assert [step["name"] for step in details["steps"]] == ["checks"]
    assert details["plan"]["to_version"] == "11.8"


def test_packages_at_another_version_are_refused(tmp_path, fake_checksums):
    def old_repository(server):
        server.madison = " mariadb-server | 1:11.4.5-1 | http://mirror trixie/main amd64 Packages\n" \
                         " mariadb-client | 1:11.4.5-1 | http://mirror trixie/main amd64 Packages\n"
    message, _details = refused(tmp_path, prepare=old_repository)
    assert "not at version 11.8: mariadb-server (the sources have 1:11.4.5-1 from http://mirror trixie/main)" in message


def test_a_failing_apt_get_update_is_refused(tmp_path, fake_checksums):
    def broken(server):
        server.always_fail = ["apt-get", "update"]
    message, _details = refused(tmp_path, prepare=broken)
    assert message.startswith("apt-get update failed (still failing): check the server's APT sources")


def test_too_little_disk_is_refused_with_the_numbers(tmp_path, fake_checksums):
    def small(server):
        server.free = 3 * GiB
    message, details = refused(tmp_path, prepare=small)
    assert message.startswith("Not enough disk space to update mariadb (data directory 2.0 GiB")
    assert "has 3.0 GiB free but needs" in message
    assert details["needs"][0]["free"] == 3 * GiB


def test_a_database_that_cannot_be_read_is_refused(tmp_path, fake_checksums):
    def broken(server):
        server.unreadable = "bob_app"
    message, details = refused(tmp_path, prepare=broken)
    assert message.startswith("The mariadb database bob_app cannot be read before the update")
    assert details["database"] == "bob_app"


def test_a_server_that_does_not_answer_is_refused(tmp_path, fake_checksums):
    def down(server):
        server.always_fail = ["mariadb", "SELECT VERSION()"]
    message, _details = refused(tmp_path, prepare=down)
    assert message.startswith("MariaDB does not answer on this server")
    assert "start it, or repair it, first" in message


def test_a_server_without_mariadb_is_refused(tmp_path, fake_checksums):
    def missing(server):
        server.server["packages"] = {}
    message, _details = refused(tmp_path, prepare=missing)
    assert message == "MariaDB is not installed on this server (no mariadb-server package): there is nothing to update."


def test_the_kept_copy_of_an_earlier_update_is_never_overwritten(tmp_path, fake_checksums):
    def leftover(server):
        server.existing.add("/var/lib/mysql.pre-update-10.11")
    message, _details = refused(tmp_path, prepare=leftover)
    assert message.startswith("/var/lib/mysql.pre-update-10.11 is there already")


def test_a_postgresql_cluster_of_the_new_version_is_refused(tmp_path, fake_checksums):
    def new_cluster(server):
        server.clusters += "17 main 5433 down postgres /var/lib/postgresql/17/main /var/log/postgresql/17.log\n"
    message, _details = refused(tmp_path, "postgresql", prepare=new_cluster)
    assert message.startswith("This server has a PostgreSQL 17 cluster main already (/var/lib/postgresql/17/main)")
    assert "pg_dropcluster --stop 17 main" in message


def test_a_postgresql_cluster_that_is_not_there_is_refused(tmp_path, fake_checksums):
    message, _details = refused(tmp_path, "postgresql", cluster="other")
    assert message == "This server has no PostgreSQL cluster named other (it has 15/main)."


def test_dump_restore_is_refused_until_it_is_automated(tmp_path, fake_checksums):
    paths = json.loads(json.dumps(PATHS))
    paths["postgresql"]["15"]["17"]["method"] = "dump-restore"
    message, _details = refused(tmp_path, "postgresql", paths=paths)
    assert "by dump-restore, which this module does not do yet" in message


def test_a_site_without_an_address_is_refused(tmp_path, fake_checksums):
    message, _details = refused(tmp_path, sites=[{"host": "alice.example"}])
    assert message.startswith("sites[0] must be a dict with host")


# --- a whole update ------------------------------------------------------------------------------------

def test_a_mariadb_update_backs_up_updates_and_verifies(tmp_path, fake_checksums):
    result, server = update(tmp_path)
    assert result["ok"] and result["changed"] and not result["rolled_back"]
    assert result["outcome"] == "updated"
    assert result["msg"] == "Updated mariadb 10.11 -> 11.8."
    assert step_names(result, "update") == ["checks", "backup", "stop", "packages", "data_upgrade", "start", "verify"]
    assert all(step["outcome"] == "ok" and step["elapsed_s"] >= 0 for step in result["steps"])
    assert result["version_before"] == SERVERS["mariadb"]["old"]
    assert result["version_after"] == SERVERS["mariadb"]["new"]
    install = server.ran("env", "apt-get", "install")[0]
    assert install[-2:] == ["mariadb-server=1:11.8.3-0+deb13u1", "mariadb-client=1:11.8.3-0+deb13u1"]
    assert server.ran("mariadb-upgrade")
    assert result["comparison"] == {"equal": True, "databases": 2, "tables": 3, "rows": 107, "differences": []}
    assert [site["same"] for site in result["sites"]] == [True, True]
    assert result["kept_data"]["path"] == "/var/lib/mysql.pre-update-10.11"
    assert result["warnings"] == []
    window = result["service_window"]
    assert window["stopped_at"] == 1795000000.0 and window["seconds"] > 0


def test_the_checks_and_a_failed_backup_have_no_service_window(tmp_path, fake_checksums):
    assert update(tmp_path, mode="check")[0]["service_window"] is None
    assert update(tmp_path / "b", fail_at="backup")[0]["service_window"] is None


def test_the_backup_has_a_manifest_with_each_files_size_and_sha256(tmp_path, fake_checksums):
    result, server = update(tmp_path)
    backup = result["backup"]
    directory = pathlib.Path(backup["directory"])
    assert directory.name == "mariadb-10.11-to-11.8-20261118T110640Z"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert [entry["name"] for entry in backup["files"]] == ["db-alice_app.sql", "db-bob_app.sql", "users.sql"]
    for entry in backup["files"]:
        assert entry["sha256"] == file_sha256(str(directory / entry["name"]))
        assert entry["size"] == (directory / entry["name"]).stat().st_size
    manifest = json.loads((directory / "MANIFEST.json").read_text())
    assert manifest["from_version"] == "10.11" and manifest["to_version"] == "11.8"
    assert manifest["packages"]["mariadb-server"] == "1:10.11.14-0+deb12u2"
    assert backup["bytes"] == sum(entry["size"] for entry in backup["files"])
    # The dumps are made while the old version runs, before it stops.
    assert server.calls.index(server.ran("mariadb-dump", "--system=users")[0]) < \
        server.calls.index(["systemctl", "stop", "mariadb"])


def test_a_postgresql_update_upgrades_the_cluster_and_keeps_the_old_one(tmp_path, fake_checksums):
    result, server = update(tmp_path, "postgresql")
    assert result["outcome"] == "updated", result["msg"]
    assert server.ran("pg_upgradecluster", "-v", "17", "-m", "upgrade", "15", "main")
    assert server.ran("pg_dumpall", "--globals-only")
    assert [entry["name"] for entry in result["backup"]["files"]] == [
        "db-alice_app.sql", "db-bob_app.sql", "db-postgres.sql", "globals.sql"]
    assert result["kept_data"]["path"] == "/var/lib/postgresql/15/main"


def test_without_keep_old_data_the_old_data_goes_once_verified(tmp_path, fake_checksums):
    result, server = update(tmp_path, keep_old_data=False)
    assert result["steps"][-1]["name"] == "drop_old_data" and result["steps"][-1]["phase"] == "cleanup"
    assert server.ran("rm", "-rf", "--", "/var/lib/mysql.pre-update-10.11")
    assert result["kept_data"] is None
    result, server = update(tmp_path / "pg", "postgresql", keep_old_data=False)
    assert server.calls[-1] == ["pg_dropcluster", "15", "main"]


def test_old_data_that_cannot_be_removed_is_a_warning_not_a_rollback(tmp_path, fake_checksums):
    server = FakeServer("mariadb", tmp_path, always_fail=["rm", "-rf", "--"])
    result, _server = update(tmp_path, server=server, keep_old_data=False)
    assert result["ok"] and result["outcome"] == "updated"
    assert result["warnings"][0].startswith("The update succeeded, but the old data could not be removed")


# --- failures after the backup: rolled back ------------------------------------------------------------

MARIADB_ROLLBACK = ["stop_new", "restore_data", "reinstall_old", "start_old", "verify_old"]
POSTGRESQL_ROLLBACK = ["stop_new", "drop_new_cluster", "restore_old_cluster", "reinstall_old", "start_old",
                       "verify_old"]


@pytest.mark.parametrize("service, step, expected", [
    ("mariadb", "stop", ["stop_new", "start_old", "verify_old"]),
    ("mariadb", "packages", MARIADB_ROLLBACK),
    ("mariadb", "data_upgrade", MARIADB_ROLLBACK),
    ("mariadb", "start", MARIADB_ROLLBACK),
    ("mariadb", "verify", MARIADB_ROLLBACK),
    ("postgresql", "stop", ["stop_new", "start_old", "verify_old"]),
    ("postgresql", "packages", ["stop_new", "drop_new_cluster", "reinstall_old", "start_old", "verify_old"]),
    ("postgresql", "data_upgrade", POSTGRESQL_ROLLBACK),
    ("postgresql", "start", POSTGRESQL_ROLLBACK),
    ("postgresql", "verify", POSTGRESQL_ROLLBACK),
])
def test_fail_at_rolls_back_after_the_steps_work_is_done(tmp_path, fake_checksums, service, step, expected):
    result, server = update(tmp_path, service, fail_at=step)
    assert not result["ok"] and result["changed"] and result["rolled_back"]
    assert result["outcome"] == "rolled_back", result["msg"]
    assert result["failed_step"] == step
    assert "Failure injected after the step %s (fail_at, for testing)" % step in result["error"]
    assert step_names(result, "rollback") == expected
    assert result["version_after"] == SERVERS[service]["old"]
    assert result["comparison"]["equal"] is True
    assert "was rolled back" in result["msg"] and result["backup"]["directory"] in result["msg"]
    assert result["kept_data"] is None
    if step == "data_upgrade":
        # The step's work was done before it was reported as failed.
        assert server.ran("mariadb-upgrade" if service == "mariadb" else "pg_upgradecluster")


def test_fail_at_backup_changes_nothing(tmp_path, fake_checksums):
    result, server = update(tmp_path, fail_at="backup")
    assert not result["ok"] and not result["changed"] and not result["rolled_back"]
    assert result["outcome"] == "failed_nothing_changed"
    assert not server.ran("systemctl")
    assert "nothing was changed" in result["msg"]


def test_databases_that_differ_after_the_update_roll_it_back(tmp_path, fake_checksums):
    server = FakeServer("mariadb", tmp_path)
    server.contents_after_update = {"alice_app": {"items": {"rows": 99, "checksum": "999", "columns": "c1"}},
                                    "bob_app": CONTENTS["bob_app"]}
    result, _server = update(tmp_path, server=server)
    assert result["outcome"] == "rolled_back"
    assert result["failed_step"] == "verify"
    assert result["error"].startswith("The databases differ after the update: alice_app/items: rows was 100, is 99; "
                                      "alice_app/items: checksum was 123, is 999")
    assert result["comparison"]["equal"] is True
    assert result["version_after"] == SERVERS["mariadb"]["old"]


def test_databases_that_differ_after_the_rollback_make_it_a_failed_rollback(tmp_path, fake_checksums):
    server = FakeServer("mariadb", tmp_path, fail_words=["mariadb-upgrade"])
    server.contents_after_rollback = {"alice_app": {}, "bob_app": CONTENTS["bob_app"]}
    result, _server = update(tmp_path, server=server)
    assert result["outcome"] == "rollback_failed"
    assert result["rollback_error"].startswith("verify_old: The databases differ after the rollback: "
                                               "alice_app/items exists only before the update")
    assert result["comparison"]["equal"] is False
    assert "/var/lib/mysql.pre-update-10.11" in result["msg"]


def test_a_site_that_answers_differently_rolls_the_update_back(tmp_path, fake_checksums):
    server = FakeServer("postgresql", tmp_path)
    server.digests_after_update = {"alice.example": "aaa", "bob.example": "changed"}
    result, _server = update(tmp_path, "postgresql", server=server)
    assert result["failed_step"] == "verify"
    assert result["error"].startswith("Sites answer differently after the update: bob.example (bob on fd77:7::21) "
                                      "answered 200 with bbb before and 200 with changed after")
    assert server.slept == [1.0, 1.0]
    assert step_names(result, "rollback") == POSTGRESQL_ROLLBACK


def test_a_rollback_that_fails_says_the_service_needs_a_person(tmp_path, fake_checksums):
    server = FakeServer("mariadb", tmp_path, fail_words=["mariadb-upgrade"], always_fail=["--allow-downgrades"])
    result, _server = update(tmp_path, server=server)
    assert result["outcome"] == "rollback_failed"
    assert result["rollback_error"].startswith("reinstall_old:")
    assert "the service needs a person" in result["msg"]
    assert result["backup"]["directory"] in result["msg"]


def test_an_apt_run_that_would_remove_a_kept_package_is_refused_and_rolled_back(tmp_path, fake_checksums):
    server = FakeServer("postgresql", tmp_path, simulation="Remv postgresql-15 [15.14-0+deb12u1]\n")
    result, _server = update(tmp_path, "postgresql", server=server)
    assert result["failed_step"] == "packages"
    assert "apt-get would remove postgresql-15 as well" in result["error"]
    assert not server.ran("env", "apt-get", "install", "postgresql-17=")


# --- pieces --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, known, parts, expected", [
    ("1:10.11.14-0+deb12u2", {"10.11", "11.8"}, 2, "10.11"),
    ("1:11.8.3-0+deb13u1", {"10.11", "11.8"}, 2, "11.8"),
    ("1:10.6.18-0+deb11u1", {"10.11", "11.8"}, 2, "10.6"),
    ("15", {"15", "17"}, 1, "15"),
    ("16", {"15", "17"}, 1, "16"),
])
def test_major_version(text, known, parts, expected):
    assert ss.major_version(text, known, parts) == expected


@pytest.mark.parametrize("reported, wanted, expected", [
    ("11.8.3-MariaDB-0+deb13u1 from Debian", "11.8", True),
    ("11.80.1-MariaDB", "11.8", False),
    ("17.6 (Debian 17.6-0+deb13u1)", "17", True),
    ("15.14 (Debian 15.14-0+deb12u1)", "17", False),
    ("", "17", False),
])
def test_server_version_matches(reported, wanted, expected):
    assert ss.server_version_matches(reported, wanted) is expected


def test_clusters_are_read_from_pg_lsclusters():
    assert ss.parse_clusters("15 main 5432 online postgres /var/lib/postgresql/15/main /var/log/x.log\n") == [
        {"version": "15", "cluster": "main", "port": 5432, "status": "online", "owner": "postgres",
         "data_dir": "/var/lib/postgresql/15/main"}]


def test_site_urls_bracket_ipv6_and_name_other_ports():
    assert ss.site_url({"address": "fd77:7::21", "port": 80, "path": "/"}) == "http://[fd77:7::21]/"
    assert ss.site_url({"address": "10.77.0.21", "port": 8080, "path": "/x"}) == "http://10.77.0.21:8080/x"


def test_a_page_without_a_digest_is_compared_by_its_status():
    class Host(object):
        @staticmethod
        def fetch(url, host, timeout):
            return 200, "<html>hello</html>"
    answer = ss.site_answer(Host(), {"address": "10.0.0.1", "port": 80, "path": "/", "host": "a.example"}, "digest: (\\S+)")
    assert answer == {"status": 200, "digest": None, "error": None}


def test_the_real_host_writes_dumps_to_new_private_files(tmp_path):
    host = ss.Host()
    target = str(tmp_path / "out.sql")
    assert host.run(["echo", "hello"], stdout_path=target) == (0, "", "")
    assert pathlib.Path(target).read_text() == "hello\n"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert host.run(["cat"], stdin="text") == (0, "text", "")
    with pytest.raises(ss.ServiceUpdateError) as caught:
        host.checked(["sh", "-c", "echo bad >&2; exit 3"])
    assert str(caught.value) == "sh -c echo bad >&2; exit 3 exited with 3: bad"
    assert host.run(["/nonexistent/tool"])[0] == 127


def test_the_real_host_fetches_a_site_by_address_with_its_host_header_and_follows_no_redirect():
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/moved":
                self.send_response(301)
                self.send_header("Location", "http://elsewhere.invalid/")
                self.end_headers()
                return
            body = ("digest: %s\n" % self.headers["Host"]).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        site = {"address": "127.0.0.1", "port": server.server_address[1], "path": "/", "host": "alice.example"}
        assert ss.site_answer(ss.Host(), site, r"digest: (\S+)") == {"status": 200, "digest": "alice.example",
                                                                       "error": None}
        assert ss.site_answer(ss.Host(), dict(site, path="/moved"), r"digest: (\S+)")["status"] == 301
    finally:
        server.shutdown()
        server.server_close()


def test_a_dump_that_fails_changes_nothing_and_names_the_dump(tmp_path, fake_checksums):
    server = FakeServer("postgresql", tmp_path, always_fail=["pg_dump", "bob_app"])
    result, _server = update(tmp_path, "postgresql", server=server)
    assert result["outcome"] == "failed_nothing_changed"
    assert result["error"] == "The dump db-bob_app.sql failed (pg_dump exited with 2: still failing)."
    assert not server.ran("systemctl")
