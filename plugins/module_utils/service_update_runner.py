# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The steps of a service update and its automatic rollback, as a small state machine.

checks -> backup -> stop -> packages -> data_upgrade -> start -> verify. A failure in checks or
backup changes nothing on the service (it never stopped); a failure in any later step runs the
rollback: the new version stopped (and a new PostgreSQL cluster dropped), the old packages
installed again, the old data directory put back, the old version started. Every step, of the
update and of the rollback, is recorded with its commands, timing and outcome.

Commands run through an injected ``run(argv, stdout_path=None) -> (rc, stdout, stderr)``; a step
may also hold Python callables ``action(run)`` (the backup's manifest, the verification), so the
unit tests fake every command and inject a failure anywhere. Standard library only.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re
import time

from ansible_collections.hosting.migration.plugins.module_utils.db_checksum import MARIADB_ARGV, PSQL_ARGV
from ansible_collections.hosting.migration.plugins.module_utils.service_update import STEPS, ServiceUpdateError

UPDATED = "updated"
NOTHING_CHANGED = "failed_nothing_changed"
ROLLED_BACK = "rolled_back"
ROLLBACK_FAILED = "rollback_failed"

APT_INSTALL = ("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q", "--no-install-recommends",
               # Configuration files the provider changed stay as they are (carried over).
               "-o", "Dpkg::Options::=--force-confold", "-o", "Dpkg::Options::=--force-confdef")


# Customers' writes refused, reads served, from the backup on (the "before" checksums and the
# dumps are taken after) to the cleanup step allow_writes at the very end, after the verification
# (or the rollback's verify_old): every start of either version in between comes up refusing them,
# so that no customer writes into a new version before it was compared with the "before" (the
# comparison would fail, and the rollback would throw the write away with the new version).
# MariaDB: read_only (customers' users have neither SUPER nor READ_ONLY ADMIN; root writes on:
# the dumps, mariadb-upgrade). SET GLOBAL read_only is not persisted, so a drop-in that every start
# of mariadbd reads (10.11 and 11.8 both read [mysqld] from /etc/mysql/mariadb.conf.d/, 99- after
# the packages' 50-server.cnf and the infrastructure's 90-hosting.cnf) keeps it across the restarts
# of the update and of the rollback. It is no package's conffile: apt (--force-confold) and dpkg
# leave it alone, and it lives outside the data directory (the copy kept for the rollback holds
# nothing of it). SET GLOBAL read_only waits for running writes; lock_wait_timeout bounds that wait.
# PostgreSQL: the default for new transactions, ALTER SYSTEM on the old cluster (kept in its
# postgresql.auto.conf until reset: the old cluster started again by a rollback refuses writes as
# well), and on the new cluster, made by pg_upgradecluster --no-start, in its postgresql.conf
# (pg_conftool) before its first start.
MARIADB_REFUSE_WRITES = "SET SESSION lock_wait_timeout = 60; SET GLOBAL read_only = ON"
MARIADB_ALLOW_WRITES = "SET GLOBAL read_only = OFF"
MARIADB_READ_ONLY_DROP_IN = "/etc/mysql/mariadb.conf.d/99-hosting-service-update.cnf"
MARIADB_READ_ONLY_CONFIG = ("# Written by hosting.migration.service_update: customers' writes are refused until the\n"
                            "# update has been verified (or rolled back); the module removes this file then.\n"
                            "[mysqld]\nread_only = ON\n")
# Each -c is a transaction of its own (ALTER SYSTEM cannot run in a transaction block); the
# session's own SET first, so that the reset runs on a cluster that refuses writes as well.
POSTGRESQL_REFUSE_WRITES = ("ALTER SYSTEM SET default_transaction_read_only = on",
                            "SELECT pg_reload_conf(), clock_timestamp()")
POSTGRESQL_ALLOW_WRITES = ("SET default_transaction_read_only = off",
                           "ALTER SYSTEM RESET default_transaction_read_only", "SELECT pg_reload_conf()")
POSTGRESQL_READ_ONLY_SETTING = "default_transaction_read_only"


def _psql(statements):
    argv = list(PSQL_ARGV) + ["-d", "postgres"]
    for statement in statements:
        argv.extend(["-c", statement])
    return argv


def refuse_writes_argv(service):
    """The command after which the service refuses customers' writes and still serves reads."""
    if service == "mariadb":
        return list(MARIADB_ARGV) + ["-e", MARIADB_REFUSE_WRITES]
    return _psql(POSTGRESQL_REFUSE_WRITES)


def refuse_writes_on_start_argv(service):
    """The command after which every start of the service refuses customers' writes from its
    first moment on (MariaDB: the drop-in, written whole or not at all); None where the block
    set by refuse_writes_argv persists by itself (PostgreSQL's ALTER SYSTEM)."""
    if service == "mariadb":
        return ["sh", "-c", 'umask 022 && printf "%s" "$2" > "$1.tmp" && mv -f "$1.tmp" "$1"', "refuse-writes-on-start",
                MARIADB_READ_ONLY_DROP_IN, MARIADB_READ_ONLY_CONFIG]
    return None


def postgresql_refuse_writes_on_start_argv(version, cluster):
    """The new cluster's postgresql.conf says default_transaction_read_only = on (pg_conftool:
    the cluster's own configuration, read at its first start)."""
    return ["pg_conftool", version, cluster, "set", POSTGRESQL_READ_ONLY_SETTING, "on"]


def allow_writes_argv(service):
    """The SQL command that lifts the write block on the server that serves (idempotent: on a
    server that never refused writes it changes nothing)."""
    if service == "mariadb":
        return list(MARIADB_ARGV) + ["-e", MARIADB_ALLOW_WRITES]
    return _psql(POSTGRESQL_ALLOW_WRITES)


def allow_writes_argvs(service, new_version=None, cluster="main"):
    """The commands of the cleanup step allow_writes, in order: the configuration that makes every
    start refuse writes goes (MariaDB's drop-in; the new PostgreSQL cluster's setting in its
    postgresql.conf, when that cluster is there: a rollback dropped it), then allow_writes_argv,
    whose reload (PostgreSQL) reads that change too. Each succeeds when nothing was blocked."""
    if service == "mariadb":
        return [["rm", "-f", MARIADB_READ_ONLY_DROP_IN], allow_writes_argv(service)]
    config = "/etc/postgresql/%s/%s/postgresql.conf" % (new_version, cluster)
    return [["sh", "-c", "! test -f %s || pg_conftool %s %s remove %s" % (config, new_version, cluster,
                                                                          POSTGRESQL_READ_ONLY_SETTING)],
            allow_writes_argv(service)]


def lift_by_hand(service, new_version=None, cluster="main"):
    """What a person runs when the cleanup step allow_writes failed."""
    if service == "mariadb":
        return "rm -f %s; then, in mariadb, SET GLOBAL read_only = OFF" % MARIADB_READ_ONLY_DROP_IN
    return ("pg_conftool %s %s remove %s (if that cluster is there); then, in psql as postgres, ALTER SYSTEM RESET "
            "default_transaction_read_only; SELECT pg_reload_conf()"
            % (new_version, cluster, POSTGRESQL_READ_ONLY_SETTING))


# pg_upgradecluster runs the hook scripts of /etc/postgresql-common/pg_upgradecluster.d in their
# finish phase only when it starts the new cluster itself; with --no-start the start step runs
# them, as the cluster's owner, like pg_upgradecluster does. postgresql-common's own hook analyze
# gives the new cluster its planner statistics (vacuumdb --analyze-in-stages: pg_upgrade does not
# carry them before PostgreSQL 18); ANALYZE runs in a read-only transaction.
UPGRADE_HOOKS_DIR = "/etc/postgresql-common/pg_upgradecluster.d"


def upgrade_hooks_argv(old_version, cluster, new_version, phase="finish"):
    return ["sh", "-c", "! test -d {hooks} || (cd / && runuser -u postgres -- run-parts --lsbsysinit -a {old} -a "
            "{cluster} -a {new} -a {phase} {hooks})".format(hooks=UPGRADE_HOOKS_DIR, old=old_version,
                                                            cluster=cluster, new=new_version, phase=phase)]


# apt-get run under a policy-rc.d that refuses every service start (exit 101), removed again
# whatever happens. Without it the packages' maintainer scripts start and restart the service on
# their own: MariaDB 11.8's socket unit, started by its postinst, let the sites' first request
# start mariadbd, and the postinst's restart a moment later left it hanging in its shutdown. The
# steps start the service themselves, once the data is ready. A policy-rc.d the server has
# already is used as it is.
NO_SERVICE_STARTS = (
    'policy=/usr/sbin/policy-rc.d; '
    'if [ -e "$policy" ]; then exec "$@"; fi; '
    'trap \'rm -f "$policy"\' EXIT; trap \'exit 129\' HUP; trap \'exit 130\' INT; trap \'exit 143\' TERM; '
    'printf \'#!/bin/sh\\n# hosting.migration.service_update: no service starts while packages change\\nexit 101\\n\' '
    '> "$policy" && chmod 0755 "$policy" || exit 1; '
    '"$@"')


# MariaDB 11.8's package brings a socket unit, and enables it: with the socket listening, the
# sites' next request starts mariadbd again right after a stop (and writes into a data directory
# the rollback is moving). The update runs the service without it, as infrastructure 2025 does.
MARIADB_SOCKET_OFF = ["sh", "-c", "if systemctl cat mariadb.socket >/dev/null 2>&1; "
                                  "then systemctl disable --now --quiet mariadb.socket; fi"]


class Command(object):
    """One command of a step: argv, and the file its standard output goes to (a dump)."""

    def __init__(self, argv, stdout_path=None):
        self.argv = list(argv)
        self.stdout_path = stdout_path

    def __repr__(self):
        return "Command(%r%s)" % (self.argv, ", stdout_path=%r" % self.stdout_path if self.stdout_path else "")


class StepFailed(ServiceUpdateError):
    """A command of a step exited non-zero, or an action raised."""


def simulated_removals(apt_output):
    """The packages an ``apt-get -s`` run would remove or purge."""
    return re.findall(r"^(?:Remv|Purg) (\S+)", apt_output, re.M)


def apt_transaction(install, remove=(), downgrade=False, allowed_removals=None, protected=(), target_release=None):
    """[guard, command]: one apt-get run that installs ``install`` and removes ``remove``, after a
    simulation of the same run made sure it removes no package in ``protected`` and (when
    ``allowed_removals`` is given) nothing else. apt resolves a removal by removing whatever
    depends on it: a rollback that removed postgresql-17 that way once took postgresql-15, whose
    removal deletes the old cluster, with it. ``target_release``: the suite whose packages this
    run prefers (the provider repository is pinned low, so that nothing else comes from it)."""
    options = list(APT_INSTALL[2:]) + (["--allow-downgrades"] if downgrade else []) \
        + (["-t", target_release] if target_release else [])
    packages = list(install) + ["%s-" % name for name in remove]
    command = Command(list(APT_INSTALL[:2]) + ["sh", "-c", NO_SERVICE_STARTS, "no-service-starts"] + options + packages)

    def guard_removals(run):
        rc, stdout, stderr = run(["apt-get", "-s"] + options[1:] + packages)
        if rc != 0:
            raise StepFailed("apt-get cannot resolve %s: %s" % (" ".join(packages), _first_line(stderr) or "no message"))
        removed = simulated_removals(stdout)
        refused = [name for name in removed if name.split(":")[0] in protected]
        if allowed_removals is not None:
            refused.extend(name for name in removed if name.split(":")[0] not in allowed_removals and name not in refused)
        if refused:
            raise StepFailed("apt-get would remove %s as well; refused, nothing was installed or removed."
                             % ", ".join(refused), removals=removed)
    return [guard_removals, command]


def _describe(action):
    if isinstance(action, Command):
        return {"argv": action.argv}
    return {"action": getattr(action, "__name__", repr(action))}


def _first_line(text):
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else ""


def run_step(name, actions, run, clock=time.monotonic, phase="update"):
    """Run one step's actions in order, stopping at the first failure. Returns its record:
    {name, phase, outcome ok|failed, elapsed_s, commands: [{argv|action, rc, elapsed_s}], error}."""
    record = {"name": name, "phase": phase, "outcome": "ok", "commands": [], "error": None}
    started = clock()
    for action in actions:
        entry = _describe(action)
        began = clock()
        try:
            if isinstance(action, Command):
                rc, _stdout, stderr = run(action.argv, stdout_path=action.stdout_path)
                entry["rc"] = rc
                if rc != 0:
                    message = _first_line(stderr) or "no message"
                    raise StepFailed("%s exited with %d: %s" % (" ".join(action.argv), rc, message))
            else:
                action(run)
        except Exception as error:  # pylint: disable=broad-except
            # Whatever went wrong, the rollback must still run: record it and stop this step.
            entry["elapsed_s"] = round(clock() - began, 3)
            record["commands"].append(entry)
            record.update(outcome="failed", error=str(error) or error.__class__.__name__)
            break
        entry["elapsed_s"] = round(clock() - began, 3)
        record["commands"].append(entry)
    record["elapsed_s"] = round(clock() - started, 3)
    return record


# --- the commands of each method ---------------------------------------------------------------

def _pinned(versions, names):
    return ["%s=%s" % (name, versions[name]) for name in names if versions.get(name)]


def update_steps(plan, context):
    """{step: [actions]} of the update. ``context``: backup_dir, data_dir, kept_data_dir (where the
    old data directory is copied), cluster (PostgreSQL), new_versions {package: version} (from
    service_update.check_packages; the checks action may set it), and the callables checks(run),
    backup(run), verify(run); ``before_backup``: actions the backup step runs first (the site
    watch, the write block, the "before" checksums)."""
    service, method = plan["service"], plan["method"]
    new = context.get("new_versions") or {}
    install = apt_transaction(_pinned(new, plan["packages"]) or list(plan["packages"]),
                              protected=plan.get("keep_packages") or (), target_release=context.get("target_release"))
    steps = {"checks": [context["checks"]] if context.get("checks") else [],
             "backup": list(context.get("before_backup") or [])
             + ([context["backup"]] if context.get("backup") else []),
             "verify": [context["verify"]] if context.get("verify") else []}
    if service == "mariadb":
        steps["stop"] = [Command(MARIADB_SOCKET_OFF), Command(["systemctl", "stop", "mariadb"]),
                         Command(["rm", "-rf", context["kept_data_dir"]]),
                         Command(["cp", "-a", "--reflink=auto", context["data_dir"], context["kept_data_dir"]])]
        steps["packages"] = install
        # mariadb-upgrade talks to a running server: the new version starts on the old data first,
        # refusing customers' writes from its first moment (the drop-in; root, and so
        # mariadb-upgrade, writes on), as after the restart.
        steps["data_upgrade"] = [Command(MARIADB_SOCKET_OFF), Command(["systemctl", "start", "mariadb"]),
                                 Command(["mariadb-upgrade"])]
        steps["start"] = [Command(["systemctl", "restart", "mariadb"]), Command(["mariadb-admin", "--silent", "ping"])]
    elif service == "postgresql":
        old, new_version, cluster = plan["from_version"], plan["to_version"], context.get("cluster", "main")
        steps["stop"] = [Command(["systemctl", "stop", "postgresql"])]
        steps["packages"] = install
        # The new version's package makes an empty cluster of its own when installed (the checks
        # refuse a server that had one): it goes, so pg_upgradecluster can make it from the old.
        config = "/etc/postgresql/%s/%s" % (new_version, cluster)
        upgrade = [Command(["sh", "-c", "! test -d %s || pg_dropcluster --stop %s %s" % (config, new_version, cluster)])]
        if method == "pg_upgradecluster":
            # --no-start: the new cluster does not start before its configuration refuses writes.
            # (postgresql-common 278 copies the old cluster's postgresql.auto.conf, with the
            # ALTER SYSTEM block, into the new data directory; the update does not rely on it.)
            upgrade.append(Command(["pg_upgradecluster", "-v", new_version, "-m", "upgrade", "--no-start", old,
                                    cluster]))
        else:
            upgrade.append(Command(["pg_createcluster", new_version, cluster]))
            upgrade.extend(context.get("restore_actions") or [])
        upgrade.append(Command(postgresql_refuse_writes_on_start_argv(new_version, cluster)))
        steps["data_upgrade"] = upgrade
        # The new cluster starts refusing customers' writes (its postgresql.conf), until the
        # cleanup step allow_writes once it was verified.
        steps["start"] = [Command(["systemctl", "start", "postgresql"]),
                          Command(["pg_ctlcluster", new_version, cluster, "status"])]
        if method == "pg_upgradecluster":
            steps["start"].append(Command(upgrade_hooks_argv(old, cluster, new_version)))
    else:
        raise ServiceUpdateError("No update steps for service %r." % service)
    return steps


def rollback_steps(plan, context, failed_step):
    """[(name, [actions])] that undo an update which failed in ``failed_step`` (after backup).
    ``context`` as for update_steps, plus old_versions {package: version} from before."""
    service = plan["service"]
    old = context.get("old_versions") or {}
    restore = plan.get("restore_packages") or plan["packages"]
    remove = plan.get("remove_packages") or []
    # The old versions back, the new version's own packages out, in one apt run that may remove
    # nothing else.
    reinstall = apt_transaction(_pinned(old, restore) or list(restore), remove, downgrade=True,
                                allowed_removals=remove, protected=plan.get("keep_packages") or ())
    reached = STEPS.index(failed_step)
    steps = []
    if service == "mariadb":
        steps.append(("stop_new", [Command(MARIADB_SOCKET_OFF), Command(["systemctl", "stop", "mariadb"])]))
        if reached >= STEPS.index("packages"):
            # The new version may have touched the data (its postinst starts it): the copy made
            # while stopped goes back, the touched one is kept aside for a post-mortem. The data
            # goes back first: the old package's postinst starts the old server on it.
            data, kept = context["data_dir"], context["kept_data_dir"]
            steps.append(("restore_data", [Command(["rm", "-rf", data + ".failed"]),
                                           Command(["mv", data, data + ".failed"]),
                                           Command(["mv", kept, data])]))
            steps.append(("reinstall_old", reinstall))
        steps.append(("start_old", [Command(["systemctl", "start", "mariadb"]),
                                    Command(["mariadb-admin", "--silent", "ping"])]))
    else:
        old_version, new_version, cluster = plan["from_version"], plan["to_version"], context.get("cluster", "main")
        steps.append(("stop_new", [Command(["systemctl", "stop", "postgresql"])]))
        if reached >= STEPS.index("packages"):
            # The new version's package makes a cluster of its own when installed; the checks
            # made sure there was none before, so whatever is there now goes.
            config = "/etc/postgresql/%s/%s" % (new_version, cluster)
            steps.append(("drop_new_cluster", [Command(["sh", "-c", "! test -d %s || pg_dropcluster --stop %s %s"
                                                        % (config, new_version, cluster)])]))
        if reached >= STEPS.index("data_upgrade"):
            # pg_upgradecluster leaves the old cluster intact but moves it to another port and to
            # manual start: it gets its port and its autostart back.
            steps.append(("restore_old_cluster", [
                Command(["pg_conftool", old_version, cluster, "set", "port", str(context.get("port", 5432))]),
                Command(["sh", "-c", "echo auto > /etc/postgresql/%s/%s/start.conf" % (old_version, cluster)])]))
        if reached >= STEPS.index("packages"):
            steps.append(("reinstall_old", reinstall))
        # The old cluster kept the write block (postgresql.auto.conf): it refuses customers'
        # writes until the cleanup step allow_writes, after verify_old.
        steps.append(("start_old", [Command(["systemctl", "start", "postgresql"]),
                                    Command(["pg_ctlcluster", old_version, cluster, "status"])]))
    if context.get("verify_old"):
        steps.append(("verify_old", [context["verify_old"]]))
    return steps


# --- the state machine ---------------------------------------------------------------------------

class UpdateRunner(object):
    """Runs an update's steps, and the rollback when a step after the backup fails.

    ``on_record(record)`` is called after every step (the ledger keeps them: a re-run after an
    interruption knows how far it got)."""

    def __init__(self, plan, context, run, clock=time.monotonic, wall_clock=time.time, on_record=None):
        self.plan, self.context, self.run = plan, context, run
        self.clock, self.wall_clock = clock, wall_clock
        self.on_record = on_record
        self.records = []

    def _record(self, record):
        record["started_at"] = self._started_at
        self.records.append(record)
        if self.on_record:
            self.on_record(record)
        return record

    def _step(self, name, actions, phase):
        self._started_at = round(self.wall_clock(), 3)
        return self._record(run_step(name, actions, self.run, self.clock, phase))

    def execute(self, stop_after=None):
        """Run the update; ``stop_after`` ends it after that step (``checks`` for a dry run).
        Returns {outcome, failed_step, error, rollback_error, steps, elapsed_s}."""
        started = self.clock()
        failed = None
        for name in STEPS:
            # Built step by step: the checks fill in the context (the versions to install).
            record = self._step(name, update_steps(self.plan, self.context).get(name, []), "update")
            if record["outcome"] != "ok":
                failed = record
                break
            if name == stop_after:
                break
        result = {"outcome": UPDATED, "failed_step": None, "error": None, "rollback_error": None,
                  "backup_dir": self.context.get("backup_dir")}
        if failed is not None:
            result.update(failed_step=failed["name"], error=failed["error"])
            if STEPS.index(failed["name"]) <= STEPS.index("backup"):
                result["outcome"] = NOTHING_CHANGED
            else:
                result["outcome"] = ROLLED_BACK
                for name, actions in rollback_steps(self.plan, self.context, failed["name"]):
                    record = self._step(name, actions, "rollback")
                    if record["outcome"] != "ok":
                        # A rollback that fails half-way is not retried blindly: people decide,
                        # with the backup and the kept data directory named in the report.
                        result.update(outcome=ROLLBACK_FAILED, rollback_error="%s: %s" % (name, record["error"]))
                        break
        elif stop_after is not None:
            result["outcome"] = "stopped_after_%s" % stop_after
        result["steps"] = list(self.records)
        result["elapsed_s"] = round(self.clock() - started, 3)
        result["message"] = summary(self.plan, result)
        return result


def summary(plan, result):
    """The report's sentence for an update's outcome."""
    what = "%s %s -> %s" % (plan["service"], plan["from_version"], plan["to_version"])
    outcome = result["outcome"]
    if outcome == UPDATED:
        return "Updated %s." % what
    if outcome.startswith("stopped_after_"):
        return "Stopped %s after %s, as asked: nothing changed." % (what, outcome[len("stopped_after_"):])
    if outcome == NOTHING_CHANGED:
        return "The update %s failed in %s (%s); nothing was changed." % (what, result["failed_step"], result["error"])
    if outcome == ROLLED_BACK:
        return ("The update %s failed in %s (%s) and was rolled back: %s %s runs again on its old data; the backup "
                "is in %s." % (what, result["failed_step"], result["error"], plan["service"], plan["from_version"],
                               result.get("backup_dir")))
    return ("The update %s failed in %s (%s) and its rollback failed too (%s): the service needs a person. The backup "
            "is in %s." % (what, result["failed_step"], result["error"], result["rollback_error"],
                           result.get("backup_dir")))


def default_kept_data_dir(data_dir, from_version):
    """Where the old data directory is kept during a MariaDB update: beside it, on the same
    filesystem (a copy with reflinks where the filesystem has them)."""
    return "%s.pre-update-%s" % (os.path.normpath(data_dir), from_version)
