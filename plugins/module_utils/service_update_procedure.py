# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module hosting.migration.service_update: one database service updated in place on the
server it runs on, with the checks, the backup, the verification and the automatic rollback of
``service_update``, ``service_update_backup`` and ``service_update_runner`` put together
(``docs/service-update.md``).

``run_service_update(params, host)`` returns the module's result; a refusal before anything
changed raises ServiceUpdateRefused. The server is reached through a ``Host``
(``service_update_server``), faked in the unit tests.

From the start of the backup on, the service refuses customers' writes and serves their reads
(``service_update_runner.refuse_writes_argv``): the "before" checksums and the dumps are taken
after that, so no write falls between them and the stop. Every start of the new version, and of
the old one in a rollback, refuses them too (MariaDB's drop-in, the new PostgreSQL cluster's
postgresql.conf, the old one's postgresql.auto.conf), so nothing is written into the new version
before the verification compared it with the "before". The block is lifted at the very end,
whatever happened (the cleanup step ``allow_writes``).
A mode update holds the server's update lock (``service_update_server.UpdateLock``) from before
it reads anything to the end; while the backup, the update and the rollback run, a thread asks
every site again and again (``SiteWatch``) and measures each one's downtime.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import time

from ansible_collections.hosting.migration.plugins.module_utils import service_update_server as server
from ansible_collections.hosting.migration.plugins.module_utils.db_checksum import ChecksumError, table_checksums
from ansible_collections.hosting.migration.plugins.module_utils.service_update import (
    SERVICES, ServiceUpdateError, ServiceUpdateRefused, check_packages, plan, require_disk)
from ansible_collections.hosting.migration.plugins.module_utils.service_update_backup import (
    BackupError, backup_commands, build_manifest, compare_contents, describe_differences, require_intact,
    write_manifest)
from ansible_collections.hosting.migration.plugins.module_utils.service_update_runner import (
    NOTHING_CHANGED, ROLLBACK_FAILED, ROLLED_BACK, UPDATED, Command, UpdateRunner, allow_writes_argvs,
    default_kept_data_dir, lift_by_hand, refuse_writes_argv, refuse_writes_on_start_argv, run_step, update_steps)

# Steps a test can make fail on purpose (fail_at): each fails once its own work is done, so the
# rollback has the most to undo.
FAULT_STEPS = ("backup", "stop", "packages", "data_upgrade", "start", "verify")
CHECKED = "checked"
ALREADY = "already_updated"
# PostgreSQL's write block applies to transactions that begin after the reload: those begun before
# (they may write) are waited for, at most this long, before the "before" checksums; then the
# backup fails (nothing changed) naming them.
POSTGRESQL_DRAIN_S = 60

SERVICE_UPDATE_ARGUMENT_SPEC = dict(
    service=dict(type="str", required=True, choices=list(SERVICES)),
    to_version=dict(type="str", required=True),
    paths=dict(type="dict", required=True),
    mode=dict(type="str", default="update", choices=["check", "update"]),
    backup_dir=dict(type="path", default="/var/backups/hosting/service-update"),
    keep_old_data=dict(type="bool", default=True),
    cluster=dict(type="str", default="main"),
    update_cache=dict(type="bool", default=True),
    target_release=dict(type="str"),
    sites=dict(type="list", elements="dict", default=[], options=dict(
        host=dict(type="str", required=True),
        address=dict(type="str", required=True),
        account=dict(type="str"),
        port=dict(type="int", default=80),
        path=dict(type="str", default="/"),
    )),
    site_pattern=dict(type="str", default=r"digest: (\S+)"),
    site_attempts=dict(type="int", default=10),
    site_watch_interval_s=dict(type="float", default=0.5),
    lock_file=dict(type="path", default=server.LOCK_FILE),
    fail_at=dict(type="str", choices=list(FAULT_STEPS)),
)
SERVICE_UPDATE_MODULE_KWARGS = dict(argument_spec=SERVICE_UPDATE_ARGUMENT_SPEC, supports_check_mode=True)


class Checksums(object):
    """Per-table row counts and checksums of every database, through the host."""

    def __init__(self, host, service, databases):
        self.host, self.service, self.databases = host, service, databases

    def read(self, when):
        contents = {}
        for database in self.databases:
            try:
                contents[database] = table_checksums(self.host.checked, self.service, database)
            except (ChecksumError, ServiceUpdateError) as error:
                raise ServiceUpdateRefused(
                    "The %s database %s cannot be read %s (%s). The update needs every database's checksums: "
                    "repair or remove it first." % (self.service, database, when, error), database=database)
        return contents


def service_window(steps):
    """When the service was down: from the start of the update's stop to the end of the last
    start that succeeded (the new version's, or the old one's after a rollback); None when it
    never stopped."""
    stops = [step for step in steps if step["name"] == "stop" and step["phase"] == "update"]
    starts = [step for step in steps if step["name"] in ("start", "start_old") and step["outcome"] == "ok"]
    if not stops:
        return None
    if not starts:
        return {"stopped_at": stops[0]["started_at"], "running_at": None, "seconds": None}
    running_at = round(starts[-1]["started_at"] + starts[-1]["elapsed_s"], 3)
    return {"stopped_at": stops[0]["started_at"], "running_at": running_at,
            "seconds": round(running_at - stops[0]["started_at"], 3)}


def writes_refused(refused_from, steps, lifted_at):
    """When customers' writes were refused while the service ran: from the block to the start of
    the stop (from there on the service was down: service_window), or to the lift when it never
    stopped. None when writes were never refused."""
    if refused_from is None:
        return None
    stops = [step for step in steps if step["name"] == "stop" and step["phase"] == "update"]
    to = stops[0]["started_at"] if stops else lifted_at
    return {"from": refused_from, "to": to, "seconds": round(to - refused_from, 3) if to is not None else None,
            "lifted_at": lifted_at}


def summarise_contents(contents):
    """{database: {tables, rows}} for the report (the checksums themselves stay on the server)."""
    return dict((database, {"tables": len(tables or {}), "rows": sum(table["rows"] for table in (tables or {}).values())})
                for database, tables in contents.items())


class ServiceUpdate(object):
    """One run of the module: facts, plan, the runner's context (checks, backup, verify,
    verify_old as actions), and the result."""

    def __init__(self, params, host, facts, watch_factory=None):
        self.params, self.host, self.facts = params, host, facts
        self.watch_factory = watch_factory or server.SiteWatch
        self.watch = None
        self.refusing_writes = False
        self.writes_refused_from = None
        self.service, self.to_version = params["service"], str(params["to_version"])
        self.sites = server.check_sites(params.get("sites"))
        self.plan = plan(self.service, self.facts["current_version"], self.to_version, params["paths"])
        if self.plan["method"] == "dump-restore":
            raise ServiceUpdateRefused(
                "The catalogue updates %s %s to %s by dump-restore, which this module does not do yet; use the "
                "method pg_upgradecluster." % (self.service, self.plan["from_version"], self.to_version))
        self.checksums = Checksums(host, self.service, self.facts["databases"])
        self.report = {"checks": {}, "backup": None, "comparison": None, "sites": None, "version_after": None}
        self.refusal = None
        self.before = None
        self.sites_before = []
        self.fault = params.get("fail_at")
        data_dir = self.facts["data_dir"]
        self.context = {
            "checks": self._guarded(self.checks), "backup": self._fault("backup", self.backup),
            "before_backup": [self.watch_sites, self.refuse_writes, self.read_before],
            "verify": self._fault("verify", self.verify), "verify_old": self.verify_old,
            "data_dir": data_dir, "kept_data_dir": default_kept_data_dir(data_dir, self.plan["from_version"]),
            "cluster": self.facts["cluster"] or "main", "port": self.facts["port"] or 5432,
            "old_versions": self.facts["packages"], "backup_dir": None,
            "target_release": params.get("target_release"),
        }

    # --- the actions the runner calls ----------------------------------------------------------

    def _guarded(self, action):
        def checks(run):
            try:
                action(run)
            except ServiceUpdateRefused as refusal:
                self.refusal = refusal
                raise
        return checks

    def _fault(self, step, action):
        def injected(run):
            action(run)
            if self.fault == step:
                self.fault = None
                raise ServiceUpdateError("Failure injected after the step %s (fail_at, for testing)." % step)
        injected.__name__ = action.__name__
        return injected

    def checks(self, run):
        facts, plan_ = self.facts, self.plan
        report = self.report["checks"]
        kept = self.context["kept_data_dir"]
        if plan_["service"] == "mariadb" and self.host.exists(kept):
            raise ServiceUpdateRefused(
                "%s is there already: a copy of the data directory from an earlier update that did not finish. Look "
                "at it, then remove it or move it away; the update makes a new one." % kept, kept_data_dir=kept)
        if plan_["service"] == "postgresql":
            already = [item for item in facts["clusters"]
                       if item["version"] == plan_["to_version"] and item["cluster"] == facts["cluster"]]
            if already:
                raise ServiceUpdateRefused(
                    "This server has a PostgreSQL %s cluster %s already (%s); the update makes it from the %s cluster. "
                    "If it holds nothing, remove it with pg_dropcluster --stop %s %s." % (
                        plan_["to_version"], facts["cluster"], already[0]["data_dir"], plan_["from_version"],
                        plan_["to_version"], facts["cluster"]), clusters=facts["clusters"])
        disk = server.disk_facts(self.host, self.params["backup_dir"], facts["data_dir"])
        data_bytes = server.directory_bytes(self.host, facts["data_dir"])
        report["disk"] = require_disk(plan_, data_bytes, disk["backup_free"], disk["data_free"],
                                      same_filesystem=disk["same_filesystem"], backup_total=disk["backup_total"],
                                      data_total=disk["data_total"])
        report["disk"]["data_bytes"] = data_bytes
        if self.params.get("update_cache", True):
            rc, _stdout, stderr = run(["apt-get", "update", "-q"])
            if rc != 0:
                reason = (stderr.strip().splitlines() or ["no message"])[-1]
                raise ServiceUpdateRefused("apt-get update failed (%s): check the server's APT sources (the provider "
                                           "repository) and its network." % reason)
        rc, madison, stderr = run(["apt-cache", "madison"] + plan_["packages"])
        if rc != 0:
            raise ServiceUpdateRefused("apt-cache madison failed: %s." % (stderr.strip() or "no message"))
        chosen = check_packages(plan_, madison)
        report["packages"] = chosen
        self.context["new_versions"] = dict((name, item["version"]) for name, item in chosen.items())
        self.before = self.checksums.read("before the update")
        report["databases"] = summarise_contents(self.before)
        self.sites_before = server.site_answers(self.host, self.sites, self.params["site_pattern"])
        self.report["sites"] = self.sites_before

    def watch_sites(self, run):
        """The site watch starts, just before the backup (mode update, sites given, an interval > 0)."""
        interval = self.params.get("site_watch_interval_s", 0.5)
        if self.sites and interval and interval > 0 and self.watch is None:
            self.watch = self.watch_factory(
                self.sites_before or self.sites, self.params["site_pattern"], self.host.fetch, clock=self.host.clock,
                wall_clock=self.host.wall_time, interval_s=interval)
            self.watch.start()

    def refuse_writes(self, run):
        """Customers' writes refused from here on, their reads served; every later start of the
        service refuses them too, until allow_writes."""
        self.refusing_writes = True
        rc, stdout, stderr = run(refuse_writes_argv(self.service))
        if rc != 0:
            reason = (stderr.strip().splitlines() or ["no message"])[-1]
            raise ServiceUpdateError("%s would not refuse writes (exited with %d: %s)." % (self.service, rc, reason))
        self.writes_refused_from = round(self.host.wall_time(), 3)
        on_start = refuse_writes_on_start_argv(self.service)
        if on_start is not None:
            rc, _stdout, stderr = run(on_start)
            if rc != 0:
                reason = (stderr.strip().splitlines() or ["no message"])[-1]
                raise ServiceUpdateError("%s would not refuse writes at its next start: %s could not be written "
                                         "(exited with %d: %s)." % (self.service, on_start[4], rc, reason))
        if self.service == "postgresql":
            self._drain(run, stdout)

    def _drain(self, run, reload_output):
        """Waits until no transaction begun before the reload (which may write) is open."""
        fields = (reload_output.strip().splitlines() or [""])[-1].split("|")
        if len(fields) != 2 or fields[0] != "t":
            raise ServiceUpdateError("pg_reload_conf() answered %r." % reload_output.strip())
        query = ("SELECT pid || ' ' || coalesce(usename, '?') || '@' || coalesce(datname, '?') FROM pg_stat_activity "
                 "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND xact_start < "
                 "'%s'::timestamptz + interval '1 second' ORDER BY 1" % fields[1].replace("'", ""))
        waited = 0
        while True:
            self.host.sleep(1.0)
            waited += 1
            rc, stdout, stderr = run(list(server.PSQL_ARGV) + ["-d", "postgres", "-c", query])
            if rc != 0:
                raise ServiceUpdateError("pg_stat_activity cannot be read: %s." % (stderr.strip() or "no message"))
            open_ = [line for line in stdout.splitlines() if line.strip()]
            if not open_:
                return
            if waited >= POSTGRESQL_DRAIN_S:
                raise ServiceUpdateError(
                    "%d transaction(s) begun before writes were refused are still open after %d s (%s): their writes "
                    "could come after the backup. Nothing was changed; end them, then run again." % (
                        len(open_), waited, ", ".join(open_[:10])))

    def read_before(self, run):
        """The "before" of the verification, read once writes are refused."""
        self.before = self.checksums.read("once writes were refused")
        self.report["checks"]["databases"] = summarise_contents(self.before)

    def allow_writes(self, run):
        """The write block lifted on the server that serves, and the configuration that makes every
        start refuse writes removed, whatever happened (idempotent)."""
        started_at = round(self.host.wall_time(), 3)
        commands = [Command(argv) for argv in allow_writes_argvs(self.service, self.plan["to_version"],
                                                                 self.context["cluster"])]
        record = run_step("allow_writes", commands, run, self.host.clock, phase="cleanup")
        record["started_at"] = started_at
        return record

    def backup(self, run):
        started = time.gmtime(self.host.wall_time())
        directory = os.path.join(self.params["backup_dir"], "%s-%s-to-%s-%s" % (
            self.service, self.plan["from_version"], self.to_version, time.strftime("%Y%m%dT%H%M%SZ", started)))
        self.host.makedirs(directory)
        self.context["backup_dir"] = directory
        dump_tool = self.host.which("mariadb-dump") and "mariadb-dump" or "mysqldump"
        files = []
        for name, argv in backup_commands(self.service, self.facts["databases"], dump_tool):
            rc, _stdout, stderr = run(argv, stdout_path=os.path.join(directory, name))
            if rc != 0:
                tool = argv[4] if argv[0] == "runuser" else argv[0]
                reason = (stderr.strip().splitlines() or ["no message"])[-1]
                raise BackupError("The dump %s failed (%s exited with %d: %s)." % (name, tool, rc, reason))
            files.append(name)
        manifest = build_manifest(
            directory, files, service=self.service, from_version=self.plan["from_version"], to_version=self.to_version,
            server_version=self.facts["server_version"], data_dir=self.facts["data_dir"],
            databases=self.facts["databases"], created=time.strftime("%Y-%m-%dT%H:%M:%SZ", started),
            packages=dict((name, self.facts["packages"][name]) for name in self.plan["restore_packages"]
                          + self.plan["keep_packages"] if name in self.facts["packages"]))
        write_manifest(directory, manifest)
        require_intact(directory, manifest)
        self.report["backup"] = {"directory": directory, "manifest": os.path.join(directory, "MANIFEST.json"),
                                 "files": manifest["files"], "bytes": sum(entry["size"] for entry in manifest["files"])}

    def _compare(self, when, expected_version):
        version = server.running_version(self.host, self.service)
        self.report["version_after"] = version
        if not server.server_version_matches(version, expected_version):
            raise ServiceUpdateError("%s reports version %s %s, not %s." % (self.service, version, when, expected_version))
        after = self.checksums.read(when)
        found = compare_contents(self.before, after)
        self.report["comparison"] = {
            "equal": not found, "databases": len(after), "tables": sum(len(tables or {}) for tables in after.values()),
            "rows": sum(item["rows"] for item in summarise_contents(after).values()),
            "differences": describe_differences(found)}
        if found:
            sentences = describe_differences(found)
            raise ServiceUpdateError("The databases differ %s: %s%s." % (
                when, "; ".join(sentences[:10]), " and %d more" % (len(sentences) - 10) if len(sentences) > 10 else ""))

    def _sites(self):
        self.report["sites"] = server.compare_sites(self.host, self.sites_before, self.params["site_pattern"],
                                                    self.params.get("site_attempts", 10))
        return server.describe_sites(self.report["sites"])

    def verify(self, run):
        self._compare("after the update", self.to_version)
        different = self._sites()
        if different:
            raise ServiceUpdateError("Sites answer differently after the update: %s." % "; ".join(different[:10]))

    def verify_old(self, run):
        # The sites after a rollback are reported, not a reason to call the rollback failed: the
        # databases are back as they were (compared here), and a site's own trouble is for people.
        self._compare("after the rollback", self.plan["from_version"])
        self._sites()

    # --- the run ---------------------------------------------------------------------------------

    def injecting_run(self):
        """run(argv, stdout_path) for the runner; with fail_at on a step of commands, the step's last
        command runs and is then reported as failed."""
        def run(argv, stdout_path=None):
            rc, stdout, stderr = self.host.run(argv, stdout_path=stdout_path)
            if self.fault in ("stop", "packages", "data_upgrade", "start") and rc == 0:
                last = [action for action in update_steps(self.plan, self.context)[self.fault]
                        if isinstance(action, Command)][-1]
                if list(argv) == last.argv:
                    step, self.fault = self.fault, None
                    return 1, stdout, "Failure injected after the step %s (fail_at, for testing)." % step
            return rc, stdout, stderr
        return run

    def cleanup(self, run):
        """The old data, once the new version is verified (keep_old_data=false)."""
        if self.service == "mariadb":
            actions = [Command(["rm", "-rf", "--", self.context["kept_data_dir"]])]
        else:
            actions = [Command(["pg_dropcluster", self.plan["from_version"], self.context["cluster"]])]
        return run_step("drop_old_data", actions, run, self.host.clock, phase="cleanup")

    def kept_data(self, outcome):
        if outcome != UPDATED or not self.params.get("keep_old_data", True):
            return None
        if self.service == "mariadb":
            return {"path": self.context["kept_data_dir"], "what": "the MariaDB %s data directory as it was before the "
                    "update" % self.plan["from_version"]}
        return {"path": self.facts["data_dir"], "what": "the PostgreSQL %s cluster %s, stopped and set to manual start "
                "(pg_upgradecluster left it); it refuses writes when started (default_transaction_read_only in its "
                "postgresql.auto.conf, from the update's write block)"
                % (self.plan["from_version"], self.context["cluster"])}

    def execute(self, check_only):
        run = self.injecting_run()
        runner = UpdateRunner(self.plan, self.context, run, clock=self.host.clock, wall_clock=self.host.wall_time)
        try:
            outcome = runner.execute(stop_after="checks" if check_only else None)
            warnings, lifted_at = [], None
            if self.refusing_writes:
                record = self.allow_writes(run)
                outcome["steps"].append(record)
                if record["outcome"] == "ok":
                    lifted_at = round(record["started_at"] + record["elapsed_s"], 3)
                else:
                    warnings.append(
                        "The service may still refuse customers' writes, now or from its next start: lifting the block "
                        "failed (%s). On the server: %s." % (record["error"], lift_by_hand(
                            self.service, self.plan["to_version"], self.context["cluster"])))
        finally:
            site_downtime = self.watch.stop() if self.watch is not None else []
        if outcome["failed_step"] == "checks" and self.refusal is not None:
            self.refusal.details.update(plan=self.plan, steps=outcome["steps"])
            raise self.refusal
        self.report["writes_refused"] = writes_refused(self.writes_refused_from, outcome["steps"], lifted_at)
        self.report["site_downtime"] = site_downtime
        if outcome["outcome"] == UPDATED and not self.params.get("keep_old_data", True):
            record = self.cleanup(run)
            outcome["steps"].append(record)
            if record["outcome"] != "ok":
                warnings.append("The update succeeded, but the old data could not be removed (%s); remove it by hand."
                                % record["error"])
        if self.service == "mariadb" and self.host.exists(self.context["data_dir"] + ".failed"):
            warnings.append("%s.failed holds the data directory of a failed update, kept for a look; remove it when "
                            "done." % self.context["data_dir"])
        return self.result(outcome, check_only, warnings)

    def result(self, outcome, check_only, warnings):
        name = CHECKED if check_only and outcome["outcome"].startswith("stopped_after_") else outcome["outcome"]
        if name == CHECKED:
            message = ("Every check passed: %s %s can be updated to %s on this server (%s). Nothing was changed." % (
                self.service, self.plan["from_version"], self.to_version, self.report["checks"]["disk"]["message"]))
        else:
            message = outcome["message"]
            if outcome["outcome"] == ROLLBACK_FAILED and self.service == "mariadb":
                message += " The data directory as it was before the update is %s, unless the rollback moved it back." % (
                    self.context["kept_data_dir"])
        return {
            "ok": name in (CHECKED, UPDATED),
            "changed": name not in (CHECKED, NOTHING_CHANGED),
            "msg": message,
            "outcome": name,
            "rolled_back": name in (ROLLED_BACK, ROLLBACK_FAILED),
            "service": self.service,
            "from_version": self.plan["from_version"],
            "to_version": self.to_version,
            "version_before": self.facts["server_version"],
            # What the server last said; None when it did not answer after a failed rollback.
            "version_after": self.facts["server_version"] if name in (CHECKED, NOTHING_CHANGED)
            else self.report["version_after"],
            "plan": self.plan,
            "failed_step": outcome["failed_step"],
            "error": outcome["error"],
            "rollback_error": outcome["rollback_error"],
            "steps": outcome["steps"],
            "elapsed_s": outcome["elapsed_s"],
            "service_window": service_window(outcome["steps"]),
            "writes_refused": self.report.get("writes_refused"),
            "site_downtime": self.report.get("site_downtime") or [],
            "checks": self.report["checks"],
            "backup": self.report["backup"],
            "comparison": self.report["comparison"],
            "sites": self.report["sites"] or [],
            "kept_data": self.kept_data(name),
            "databases": self.facts["databases"],
            "warnings": warnings,
        }


def already_updated(params, facts):
    """The result of a run on a server that runs the version asked for already (a second run
    after an update): nothing to do, nothing changed."""
    service = params["service"]
    return {"ok": True, "changed": False, "outcome": ALREADY, "rolled_back": False, "service": service,
            "msg": "%s already runs version %s on this server (%s): nothing to update." % (
                service, facts["current_version"], facts["server_version"]),
            "from_version": facts["current_version"], "to_version": str(params["to_version"]),
            "version_before": facts["server_version"], "version_after": facts["server_version"], "plan": None,
            "failed_step": None, "error": None, "rollback_error": None, "steps": [], "elapsed_s": 0.0,
            "service_window": None, "writes_refused": None, "site_downtime": [], "checks": {}, "backup": None,
            "comparison": None, "sites": [], "kept_data": None,
            "databases": facts["databases"], "warnings": []}


def take_lock(host, params):
    """The server's update lock, held by this run; ServiceUpdateRefused when another run holds it."""
    path = params.get("lock_file") or server.LOCK_FILE
    holder = {"pid": os.getpid(), "service": params["service"], "from_version": None,
              "to_version": str(params["to_version"]), "started_at": round(host.wall_time(), 3),
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(host.wall_time()))}
    try:
        return host.lock(path, holder), holder
    except server.LockHeld as held:
        raise ServiceUpdateRefused(
            "Another service update runs on this server since %s; wait for it to end, then run again." % (
                server.describe_holder(held.holder)), lock_file=path, lock_holder=held.holder)
    except OSError as error:
        raise ServiceUpdateRefused("The update lock %s cannot be taken (%s): a service update runs only with it."
                                   % (path, error.strerror or error), lock_file=path)


def run_service_update(params, host=None, check_mode=False, watch_factory=None):
    """The module's result (``ok`` says whether it succeeded); ServiceUpdateRefused when a check
    refuses, or another update holds the server's lock, before anything changed. ``watch_factory``
    makes the site watch (SiteWatch's arguments; the unit tests give a fake)."""
    host = host or server.Host()
    check_only = check_mode or params.get("mode") == "check"
    lock = None
    if not check_only:
        lock, holder = take_lock(host, params)
    try:
        facts = server.server_facts(host, params["service"], params["paths"], params.get("cluster") or "main",
                                    str(params["to_version"]))
        if facts["current_version"] == str(params["to_version"]):
            return already_updated(params, facts)
        if lock is not None:
            holder["from_version"] = facts["current_version"]
            lock.write(holder)
        update = ServiceUpdate(params, host, facts, watch_factory=watch_factory)
        return update.execute(check_only=check_only)
    finally:
        if lock is not None:
            lock.release()
