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
from ansible_collections.hosting.migration.plugins.module_utils import service_update_runner as sr
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
    runs, the dumps written for real under tmp_path, the sites answering with a digest.

    The write block: ``read_only`` is what the running service does now. A start (systemctl start
    or restart) comes up refusing writes only from its configuration: MariaDB's drop-in
    (``drop_in``; SET GLOBAL is not persisted), the old PostgreSQL cluster's postgresql.auto.conf
    (``auto_conf_block``, ALTER SYSTEM), the new cluster's postgresql.conf (``new_conf_block``,
    pg_conftool; the copy of postgresql.auto.conf that postgresql-common 278 makes is left out, so
    that the update is shown not to rely on it). ``starts``: (argv, version, refusing) of each."""

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
        self.open_transactions = []
        self.read_only = False
        self.drop_in = self.auto_conf_block = self.new_conf_block = self.new_cluster = False
        self.starts = []
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
        if "SET GLOBAL read_only = ON" in text or "ALTER SYSTEM SET default_transaction_read_only" in text:
            self.read_only = True
            if self.service == "postgresql":
                self.auto_conf_block = True
            return "t|2026-11-18 11:06:40.5+00\n" if self.service == "postgresql" else ""
        if "SET GLOBAL read_only = OFF" in text or "ALTER SYSTEM RESET default_transaction_read_only" in text:
            # The reload also reads the new cluster's postgresql.conf.
            self.read_only = self.service == "postgresql" and self.version == self.server["new"] and self.new_conf_block
            if self.service == "postgresql" and self.version == self.server["old"]:
                self.auto_conf_block = False
            return "t\n" if self.service == "postgresql" else ""
        if argv[:2] == ["sh", "-c"] and sr.MARIADB_READ_ONLY_DROP_IN in argv and "printf" in text:
            self.drop_in = True
        if argv == ["rm", "-f", sr.MARIADB_READ_ONLY_DROP_IN]:
            self.drop_in = False
        if argv[0] == "pg_upgradecluster":
            self.new_cluster = True
        if "pg_dropcluster --stop 17 main" in text and self.new_cluster:
            self.new_cluster = self.new_conf_block = False
        if argv == ["pg_conftool", "17", "main", "set", "default_transaction_read_only", "on"]:
            self.new_conf_block = True
        if "pg_conftool 17 main remove default_transaction_read_only" in text and self.new_cluster:
            self.new_conf_block = False
        if argv[0] == "systemctl" and argv[1] in ("start", "restart") and argv[2] == self.service:
            if self.service == "mariadb":
                refusing = self.drop_in
            else:
                refusing = self.new_conf_block if self.version == self.server["new"] else self.auto_conf_block
            self.read_only = refusing
            self.starts.append((argv, self.version, refusing))
        if "pg_stat_activity" in text:
            return "".join("%s\n" % item for item in (self.open_transactions.pop(0) if self.open_transactions else []))
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

    lock = staticmethod(ss.UpdateLock.acquire)

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


class FakeWatch(object):
    """The site watch without its thread: a real SiteWatch asked once when it starts and once when
    it stops, on the fake server; ``started``/``stopped`` say how many commands had run then."""
    made = []

    def __init__(self, sites, pattern, fetch, clock, wall_clock, interval_s):
        self.server = fetch.__self__
        self.watch = ss.SiteWatch(sites, pattern, fetch, clock=clock, wall_clock=wall_clock, interval_s=interval_s)
        self.interval_s, self.started, self.stopped = interval_s, None, None
        self.made.append(self)

    def start(self):
        self.started = len(self.server.calls)
        self.watch.poll()

    def stop(self):
        self.stopped = len(self.server.calls)
        self.watch.poll()
        return self.watch.stop()


@pytest.fixture(autouse=True)
def no_watch_threads():
    FakeWatch.made = []


def params(tmp_path, service="mariadb", **changes):
    values = dict(service=service, to_version="11.8" if service == "mariadb" else "17", paths=PATHS, mode="update",
                  backup_dir=str(tmp_path / "backups"), keep_old_data=True, cluster="main", update_cache=True,
                  sites=[{"account": "alice", "host": "alice.example", "address": "10.77.0.21", "port": 80, "path": "/"},
                         {"account": "bob", "host": "bob.example", "address": "fd77:7::21", "port": 80, "path": "/"}],
                  site_pattern=r"digest: (\S+)", site_attempts=3, fail_at=None, site_watch_interval_s=0.5,
                  lock_file=str(tmp_path / "lock" / "service-update.lock"))
    values.update(changes)
    return values


def update(tmp_path, service="mariadb", server=None, check_mode=False, **changes):
    server = server or FakeServer(service, tmp_path)
    return sp.run_service_update(params(tmp_path, service, **changes), host=server, check_mode=check_mode,
                                 watch_factory=FakeWatch), server


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
        sp.run_service_update(params(tmp_path, service, **changes), host=server, watch_factory=FakeWatch)
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


def test_a_second_postgresql_run_sees_the_new_cluster_and_not_the_kept_old_one(tmp_path, fake_checksums):
    # After an update the old cluster stays, stopped, on another port (kept for going back by hand).
    server = FakeServer("postgresql", tmp_path)
    server.version = SERVERS["postgresql"]["new"]
    server.clusters = ("15 main 5433 down   postgres /var/lib/postgresql/15/main /var/log/postgresql/15.log\n"
                       "17 main 5432 online postgres /var/lib/postgresql/17/main /var/log/postgresql/17.log\n")
    result, _server = update(tmp_path, "postgresql", server=server)
    assert result["ok"] and not result["changed"] and result["outcome"] == "already_updated", result
    assert not server.ran("apt-get") and not server.ran("systemctl")


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
    assert server.ran("pg_upgradecluster", "-v", "17", "-m", "upgrade", "--no-start", "15", "main")
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
    # One second for the write block to reach PostgreSQL's sessions, then two tries a second apart.
    assert server.slept == [1.0, 1.0, 1.0]
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


# --- writes refused from the backup on -------------------------------------------------------------------

def _index(server, *words):
    return server.calls.index(server.ran(*words)[0])


@pytest.mark.parametrize("service, block, dump", [
    ("mariadb", "SET GLOBAL read_only = ON", "mariadb-dump"),
    ("postgresql", "ALTER SYSTEM SET default_transaction_read_only = on", "pg_dump"),
])
def test_writes_are_refused_before_the_before_checksums_and_the_dumps(tmp_path, monkeypatch, service, block, dump):
    read = []

    def table_checksums(checked, engine, database):
        server = checked.__self__
        read.append((len(server.calls), server.read_only))
        return json.loads(json.dumps(server.contents.get(database, {})))
    monkeypatch.setattr(sp, "table_checksums", table_checksums)
    server = FakeServer(service, tmp_path)
    result, _server = update(tmp_path, service, server=server)
    assert result["outcome"] == "updated", result["msg"]
    blocked = _index(server, block)
    # The checks read every database (a refusal changes nothing); the "before" is read again once
    # writes are refused, and the dumps come after it, all before the stop.
    before = [at for at, read_only in read if read_only]
    assert before and all(blocked < at for at in before)
    assert blocked < _index(server, dump) < _index(server, "systemctl", "stop")
    backup = [step for step in result["steps"] if step["name"] == "backup"][0]
    assert [entry["action"] for entry in backup["commands"]] == ["watch_sites", "refuse_writes", "read_before",
                                                                 "backup"]
    # The service serves writable at the end, and the result says when writes were refused.
    assert not server.read_only
    assert result["steps"][-1]["name"] == "allow_writes" and result["steps"][-1]["phase"] == "cleanup"
    refused = result["writes_refused"]
    assert refused["from"] == 1795000000.0 and refused["to"] == result["service_window"]["stopped_at"]
    lift = result["steps"][-1]
    assert refused["seconds"] == 0.0 and refused["lifted_at"] == round(lift["started_at"] + lift["elapsed_s"], 3)


def test_a_write_between_the_checks_and_the_stop_no_longer_fails_the_verification(tmp_path, fake_checksums):
    class Server(FakeServer):
        def answer(self, argv, text, stdin):
            answered = super(Server, self).answer(argv, text, stdin)
            # A customer's write lands whenever the service still takes writes.
            if not self.read_only and self.version == self.server["old"] and "alice_app" in self.contents:
                items = self.contents["alice_app"]["items"]
                items.update(rows=items["rows"] + 1, checksum=str(int(items["checksum"]) + 1))
            return answered
    server = Server("mariadb", tmp_path)
    result, _server = update(tmp_path, server=server)
    assert result["outcome"] == "updated", result["msg"]
    assert result["comparison"]["equal"] is True


def test_postgresql_waits_for_transactions_begun_before_the_block(tmp_path, fake_checksums):
    server = FakeServer("postgresql", tmp_path)
    server.open_transactions = [["4711 alice@alice_app"], ["4711 alice@alice_app"], []]
    result, _server = update(tmp_path, "postgresql", server=server)
    assert result["outcome"] == "updated", result["msg"]
    query = server.ran("pg_stat_activity")[0][-1]
    assert "xact_start < '2026-11-18 11:06:40.5+00'::timestamptz + interval '1 second'" in query
    assert len(server.ran("pg_stat_activity")) == 3


def test_postgresql_transactions_that_stay_open_fail_the_backup_and_lift_the_block(tmp_path, fake_checksums,
                                                                                  monkeypatch):
    monkeypatch.setattr(sp, "POSTGRESQL_DRAIN_S", 3)
    server = FakeServer("postgresql", tmp_path)
    server.open_transactions = [["4711 alice@alice_app"]] * 5
    result, _server = update(tmp_path, "postgresql", server=server)
    assert result["outcome"] == "failed_nothing_changed"
    assert result["error"].startswith("1 transaction(s) begun before writes were refused are still open after 3 s "
                                      "(4711 alice@alice_app)")
    assert not server.ran("pg_dump") and not server.ran("systemctl")
    assert not server.read_only and server.calls[-1] == sr.allow_writes_argv("postgresql")


@pytest.mark.parametrize("service", ["mariadb", "postgresql"])
def test_a_failed_backup_lifts_the_write_block(tmp_path, fake_checksums, service):
    result, server = update(tmp_path, service, fail_at="backup")
    assert result["outcome"] == "failed_nothing_changed"
    assert not server.read_only
    # Nothing is left that would make the next start refuse writes.
    assert not server.drop_in and not server.auto_conf_block and not server.new_conf_block
    if service == "mariadb":
        assert _index(server, "printf", sr.MARIADB_READ_ONLY_DROP_IN) < _index(server, "rm", "-f",
                                                                              sr.MARIADB_READ_ONLY_DROP_IN)
    assert [step["name"] for step in result["steps"]] == ["checks", "backup", "allow_writes"]
    lift = result["steps"][-1]
    assert [command["argv"] for command in lift["commands"]] == sr.allow_writes_argvs(service, "17", "main")
    assert all(command["rc"] == 0 for command in lift["commands"])
    assert result["writes_refused"]["to"] == result["writes_refused"]["lifted_at"] == round(
        lift["started_at"] + lift["elapsed_s"], 3)
    assert result["writes_refused"]["from"] == 1795000000.0 and result["writes_refused"]["seconds"] > 0
    assert result["service_window"] is None


def test_a_block_that_cannot_be_set_fails_the_backup_and_is_lifted_anyway(tmp_path, fake_checksums):
    server = FakeServer("mariadb", tmp_path, always_fail=["SET GLOBAL read_only = ON"])
    result, _server = update(tmp_path, server=server)
    assert result["outcome"] == "failed_nothing_changed"
    assert result["error"] == "mariadb would not refuse writes (exited with 2: still failing)."
    assert not server.ran("mariadb-dump") and not server.ran("printf")
    assert server.calls[-2:] == sr.allow_writes_argvs("mariadb")
    assert result["writes_refused"] is None


def test_a_drop_in_that_cannot_be_written_fails_the_backup_and_the_block_is_lifted(tmp_path, fake_checksums):
    server = FakeServer("mariadb", tmp_path, always_fail=["printf", sr.MARIADB_READ_ONLY_DROP_IN])
    result, _server = update(tmp_path, server=server)
    assert result["outcome"] == "failed_nothing_changed"
    assert result["error"] == ("mariadb would not refuse writes at its next start: "
                               "/etc/mysql/mariadb.conf.d/99-hosting-service-update.cnf could not be written (exited "
                               "with 2: still failing).")
    assert not server.ran("mariadb-dump") and not server.ran("systemctl")
    assert server.calls[-2:] == sr.allow_writes_argvs("mariadb") and not server.read_only


@pytest.mark.parametrize("service", ["mariadb", "postgresql"])
@pytest.mark.parametrize("fail_at", [None, "stop", "packages", "data_upgrade", "start", "verify"])
def test_every_start_until_the_end_refuses_customers_writes(tmp_path, fake_checksums, service, fail_at):
    result, server = update(tmp_path, service, fail_at=fail_at)
    assert result["outcome"] == ("updated" if fail_at is None else "rolled_back"), result["msg"]
    # The new version from its first start (MariaDB: before mariadb-upgrade; PostgreSQL:
    # pg_upgradecluster --no-start, then the setting), and the old one started again.
    assert server.starts and all(refusing for _argv, _version, refusing in server.starts), server.starts
    versions = [version for _argv, version, _refusing in server.starts]
    # (MariaDB's new version starts in data_upgrade, for mariadb-upgrade; PostgreSQL's in start.)
    if fail_at in (None, "start", "verify") or (service, fail_at) == ("mariadb", "data_upgrade"):
        assert SERVERS[service]["new"] in versions
    if fail_at is not None:
        assert versions[-1] == SERVERS[service]["old"]
    # Still refused while the verification (or verify_old) reads, lifted only by the cleanup step
    # after it: nothing is left that would make a later start refuse writes.
    lift = [step for step in result["steps"] if step["name"] == "allow_writes"]
    assert [step["name"] for step in result["steps"]][-1] == "allow_writes" and lift[0]["outcome"] == "ok"
    assert not server.read_only and not server.drop_in and not server.new_conf_block
    if fail_at is not None:
        # The old PostgreSQL cluster serves again: its ALTER SYSTEM block is reset.
        assert not server.auto_conf_block
    lift_at = server.calls.index(sr.allow_writes_argvs(service, "17", "main")[0])
    assert lift_at > max(server.calls.index(argv) for argv, _version, _refusing in server.starts)
    if service == "postgresql":
        # The new cluster's setting is in place before its first start.
        setting = ["pg_conftool", "17", "main", "set", "default_transaction_read_only", "on"]
        if fail_at in (None, "data_upgrade", "start", "verify"):
            assert server.calls.index(setting) < server.calls.index(["systemctl", "start", "postgresql"],
                                                                    server.calls.index(setting))
    else:
        assert _index(server, "printf", sr.MARIADB_READ_ONLY_DROP_IN) < _index(server, "systemctl", "stop")


@pytest.mark.parametrize("service", ["mariadb", "postgresql"])
def test_a_customers_write_into_the_new_version_before_the_verification_cannot_happen(tmp_path, fake_checksums,
                                                                                     service):
    class Server(FakeServer):
        def answer(self, argv, text, stdin):
            answered = super(Server, self).answer(argv, text, stdin)
            # A customer's write lands whenever the running service takes writes, of either version.
            if not self.read_only and "alice_app" in self.contents:
                items = self.contents["alice_app"]["items"]
                items.update(rows=items["rows"] + 1, checksum=str(int(items["checksum"]) + 1))
            return answered
    server = Server(service, tmp_path)
    result, _server = update(tmp_path, service, server=server)
    assert result["outcome"] == "updated", result["msg"]
    assert result["comparison"]["equal"] is True
    assert [refusing for _argv, _version, refusing in server.starts] == [True] * len(server.starts)


@pytest.mark.parametrize("service", ["mariadb", "postgresql"])
def test_after_a_rollback_the_old_version_takes_writes_again(tmp_path, fake_checksums, service):
    result, server = update(tmp_path, service, fail_at="data_upgrade")
    assert result["outcome"] == "rolled_back"
    assert not server.read_only and not server.drop_in and not server.auto_conf_block
    # The old version started again refuses writes through verify_old (MariaDB's drop-in, the old
    # cluster's postgresql.auto.conf); the cleanup step lifts the block afterwards.
    start_old = [step for step in result["steps"] if step["name"] == "start_old"][0]
    assert sr.allow_writes_argv(service) not in [command.get("argv") for command in start_old["commands"]]
    assert server.starts[-1][1:] == (SERVERS[service]["old"], True)
    names = [step["name"] for step in result["steps"]]
    assert names[-2:] == ["verify_old", "allow_writes"]
    if service == "postgresql":
        # The new cluster is gone: its configuration is left alone, the old cluster's reset.
        assert not server.new_cluster


def test_a_lift_that_fails_is_a_warning(tmp_path, fake_checksums):
    server = FakeServer("mariadb", tmp_path, always_fail=["SET GLOBAL read_only = OFF"])
    result, _server = update(tmp_path, server=server)
    assert result["outcome"] == "updated" and result["ok"]
    assert result["warnings"][0].startswith("The service may still refuse customers' writes, now or from its next "
                                            "start: lifting the block failed")
    assert result["warnings"][0].endswith("On the server: rm -f /etc/mysql/mariadb.conf.d/99-hosting-service-update.cnf"
                                          "; then, in mariadb, SET GLOBAL read_only = OFF.")
    assert result["writes_refused"]["lifted_at"] is None


def test_a_postgresql_lift_that_fails_names_both_settings(tmp_path, fake_checksums):
    server = FakeServer("postgresql", tmp_path, always_fail=["pg_conftool 17 main remove"])
    result, _server = update(tmp_path, "postgresql", server=server)
    assert result["outcome"] == "updated"
    assert server.new_conf_block
    assert "pg_conftool 17 main remove default_transaction_read_only (if that cluster is there); then, in psql as " \
        "postgres, ALTER SYSTEM RESET default_transaction_read_only; SELECT pg_reload_conf()." in result["warnings"][0]


def test_the_checks_refuse_no_writes(tmp_path, fake_checksums):
    result, server = update(tmp_path, mode="check")
    assert not server.ran("read_only") and result["writes_refused"] is None and result["site_downtime"] == []
    assert FakeWatch.made == []


# --- the sites watched during the update ------------------------------------------------------------------

def test_the_sites_are_watched_from_before_the_backup_to_after_the_rollback(tmp_path, fake_checksums):
    result, server = update(tmp_path, "postgresql", fail_at="start", site_watch_interval_s=0.25)
    assert result["outcome"] == "rolled_back"
    watch = FakeWatch.made[0]
    assert watch.interval_s == 0.25
    assert watch.started <= _index(server, "ALTER SYSTEM SET default_transaction_read_only")
    assert watch.stopped >= len(server.calls) - 1 and watch.stopped > _index(server, "--allow-downgrades")
    assert [(item["account"], item["host"], item["requests"], item["failed"]) for item in result["site_downtime"]] \
        == [("alice", "alice.example", 2, 0), ("bob", "bob.example", 2, 0)]


def test_no_sites_or_an_interval_of_0_watch_nothing(tmp_path, fake_checksums):
    assert update(tmp_path, sites=[])[0]["site_downtime"] == []
    assert update(tmp_path / "b", site_watch_interval_s=0)[0]["site_downtime"] == []
    assert FakeWatch.made == []


class Clock(object):
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _watch(answers, clock, digest="aaa", pattern=r"digest: (\S+)"):
    """A SiteWatch over one site whose fetch pops ``answers`` ((status, body) or an exception),
    each request taking a second of the fake clock."""
    def fetch(url, host_header, timeout_s):
        assert url == "http://10.77.0.21/" and host_header == "alice.example" and timeout_s == 2.0
        answer = answers.pop(0)
        clock.now += 1.0
        if isinstance(answer, Exception):
            raise answer
        return answer
    site = {"account": "alice", "host": "alice.example", "address": "10.77.0.21", "port": 80, "path": "/",
            "status": 200, "digest": digest}
    return ss.SiteWatch([site], pattern, fetch, clock=clock, wall_clock=lambda: clock.now + 1795000000.0,
                        interval_s=0.5)


def test_the_watch_measures_the_longest_run_of_failures():
    clock = Clock()
    ok, down = (200, "digest: aaa"), (None, "timed out")
    answers = [ok, down, (502, "Bad Gateway"), ok, (200, "digest: other"), ok, down, down, down, ok]
    watch = _watch(answers, clock)
    for _ in range(10):
        watch.poll()
        clock.now += 0.5
    report = watch.stop()
    # Requests start at 100, 101.5, 103, ... (1 s each, 0.5 s between): the longest outage runs
    # from the start of the first of three failures (109) to the start of the next success (113.5).
    assert report == [{"account": "alice", "host": "alice.example", "address": "10.77.0.21", "requests": 10,
                       "failed": 6, "longest_outage_s": 4.5, "first_failure_at": 1795000101.5,
                       "last_failure_at": 1795000112.0, "failing_at_end": False,
                       "failures": {"no answer": 4, "status 502": 1, "digest other": 1}}]


def test_an_outage_still_open_at_the_end_counts_to_the_end():
    clock = Clock()
    watch = _watch([(200, "digest: aaa"), (500, "oops"), RuntimeError("connection reset")], clock)
    for _ in range(3):
        watch.poll()
    clock.now += 2.0
    report = watch.stop()[0]
    assert report["failed"] == 2 and report["failing_at_end"] is True
    assert report["longest_outage_s"] == 4.0
    assert report["failures"] == {"status 500": 1, "no answer": 1}


def test_a_page_without_a_digest_before_is_judged_by_its_status():
    clock = Clock()
    watch = _watch([(200, "hello"), (301, "moved"), (404, "gone")], clock, digest=None)
    for _ in range(3):
        watch.poll()
    assert [(item["requests"], item["failed"]) for item in watch.stop()] == [(3, 1)]


def test_the_watch_thread_polls_until_stopped():
    calls = []
    done = threading.Event()

    def fetch(url, host_header, timeout_s):
        calls.append(url)
        if len(calls) >= 3:
            done.set()
        return 200, "digest: aaa"
    site = {"account": None, "host": "a.example", "address": "10.0.0.1", "port": 80, "path": "/", "digest": "aaa"}
    watch = ss.SiteWatch([site], r"digest: (\S+)", fetch, interval_s=0.01).start()
    assert done.wait(5)
    report = watch.stop()
    assert not watch.thread.is_alive()
    assert report[0]["requests"] == len(calls) >= 3 and report[0]["failed"] == 0


# --- one update at a time --------------------------------------------------------------------------------

def test_an_update_holds_the_lock_and_says_who_holds_it(tmp_path, fake_checksums):
    path = str(tmp_path / "lock" / "service-update.lock")
    seen = []

    class Server(FakeServer):
        def run(self, argv, stdout_path=None, stdin=None):
            if argv[:2] == ["systemctl", "stop"]:
                seen.append(json.loads(pathlib.Path(path).read_text()))
                with pytest.raises(ss.LockHeld):
                    ss.UpdateLock.acquire(path, {"pid": 1})
            return super(Server, self).run(argv, stdout_path, stdin)
    result, _server = update(tmp_path, server=Server("mariadb", tmp_path))
    assert result["outcome"] == "updated"
    assert seen == [{"pid": os.getpid(), "service": "mariadb", "from_version": "10.11", "to_version": "11.8",
                     "started_at": 1795000000.0, "started": "2026-11-18T11:06:40Z"}]
    # Released at the end: the next run takes it.
    ss.UpdateLock.acquire(path, {"pid": 2}).release()


def test_a_second_update_is_refused_before_anything_runs(tmp_path, fake_checksums):
    path = str(tmp_path / "lock" / "service-update.lock")
    held = ss.UpdateLock.acquire(path, {"pid": 4711, "service": "mariadb", "from_version": "10.11",
                                        "to_version": "11.8", "started": "2026-11-26T05:12:00Z"})
    try:
        server = FakeServer("mariadb", tmp_path)
        with pytest.raises(ServiceUpdateRefused) as caught:
            sp.run_service_update(params(tmp_path), host=server, watch_factory=FakeWatch)
        assert str(caught.value) == ("Another service update runs on this server since 2026-11-26T05:12:00Z (pid "
                                     "4711, mariadb 10.11 -> 11.8); wait for it to end, then run again.")
        assert caught.value.details["lock_file"] == path and caught.value.details["lock_holder"]["pid"] == 4711
        assert server.calls == []
        # The checks need no lock.
        assert update(tmp_path, mode="check")[0]["outcome"] == "checked"
    finally:
        held.release()


def test_the_lock_is_released_after_a_refusal_and_after_a_rollback(tmp_path, fake_checksums):
    path = str(tmp_path / "lock" / "service-update.lock")
    refused(tmp_path, to_version="10.6")
    ss.UpdateLock.acquire(path, {"pid": 2}).release()
    update(tmp_path / "b", fail_at="start")
    ss.UpdateLock.acquire(str(tmp_path / "b" / "lock" / "service-update.lock"), {"pid": 3}).release()


def test_a_lock_whose_holder_died_is_free(tmp_path):
    path = str(tmp_path / "service-update.lock")
    child = os.fork()
    if child == 0:  # pragma: no cover - the child takes the lock and dies without releasing it
        ss.UpdateLock.acquire(path, {"pid": os.getpid()})
        os._exit(0)
    os.waitpid(child, 0)
    assert json.loads(pathlib.Path(path).read_text())["pid"] == child
    lock = ss.UpdateLock.acquire(path, {"pid": os.getpid(), "service": "postgresql"})
    assert json.loads(pathlib.Path(path).read_text()) == {"pid": os.getpid(), "service": "postgresql"}
    lock.release()


def test_a_garbled_lock_file_still_refuses_with_what_it_says(tmp_path):
    path = str(tmp_path / "service-update.lock")
    held = ss.UpdateLock.acquire(path, {"pid": 1})
    try:
        with open(path, "w") as handle:
            handle.write("not json")
        with pytest.raises(ss.LockHeld) as caught:
            ss.UpdateLock.acquire(path, {"pid": 2})
        assert ss.describe_holder(caught.value.holder) == "an unknown time (the lock file says 'not json')"
    finally:
        held.release()
