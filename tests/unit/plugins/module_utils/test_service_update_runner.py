# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The steps of a service update and the rollback, with every command faked and a failure injected
at each step."""

from __future__ import (absolute_import, division, print_function)

__metaclass__ = type

import pathlib

import pytest
import yaml

from ansible_collections.hosting.migration.plugins.module_utils import service_update as su
from ansible_collections.hosting.migration.plugins.module_utils import service_update_runner as sr

TOP = pathlib.Path(__file__).resolve().parents[4]
PATHS = yaml.safe_load((TOP / "roles/catalogue/defaults/main.yml").read_text())["service_update_paths"]

OLD_MARIADB = {"mariadb-server": "1:10.11.18-0+deb12u1", "mariadb-server-core": "1:10.11.18-0+deb12u1",
               "mariadb-client": "1:10.11.18-0+deb12u1", "mariadb-client-core": "1:10.11.18-0+deb12u1",
               "mariadb-common": "1:10.11.18-0+deb12u1", "libmariadb3": "1:10.11.18-0+deb12u1"}
NEW_MARIADB = {"mariadb-server": "1:11.8.9+ds-0+deb13u1", "mariadb-client": "1:11.8.9+ds-0+deb13u1"}
OLD_POSTGRESQL = {"postgresql-common": "248+deb12u1", "postgresql-client-common": "248+deb12u1"}


class FakeRun(object):
    """Every command succeeds, except the first whose argv contains all of ``fail_words`` (and any
    whose argv contains all of ``always_fail``). ``simulations``: what ``apt-get -s`` prints, by a
    word of its argv."""

    def __init__(self, fail_words=None, always_fail=None, simulations=None):
        self.fail_words, self.always_fail = fail_words, always_fail
        self.simulations = simulations or {}
        self.calls = []

    def __call__(self, argv, stdout_path=None):
        self.calls.append(list(argv))
        text = " ".join(argv)
        if self.fail_words and all(word in text for word in self.fail_words):
            self.fail_words = None
            return 1, "", "injected failure\n"
        if self.always_fail and all(word in text for word in self.always_fail):
            return 2, "", "still failing\n"
        if argv[:2] == ["apt-get", "-s"]:
            for word, output in self.simulations.items():
                if word in text:
                    return 0, output, ""
        return 0, "", ""


class Clock(object):
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        self.now += 0.5
        return self.now


class Actions(object):
    """The Python actions of a run: checks, backup, verify, verify_old; each can be made to fail."""

    def __init__(self, failing=()):
        self.failing = set(failing)
        self.called = []

    def make(self, name):
        def action(run):
            self.called.append(name)
            if name in self.failing:
                raise su.ServiceUpdateError("%s found a problem" % name)
        action.__name__ = name
        return action

    def context(self, **extra):
        context = dict((name, self.make(name)) for name in ("checks", "backup", "verify", "verify_old"))
        context.update(extra)
        return context


def mariadb_context(actions):
    return actions.context(backup_dir="/var/backups/hosting/update-1", data_dir="/var/lib/mysql",
                           kept_data_dir=sr.default_kept_data_dir("/var/lib/mysql/", "10.11"),
                           old_versions=OLD_MARIADB, new_versions=NEW_MARIADB)


def postgresql_context(actions):
    return actions.context(backup_dir="/var/backups/hosting/update-2", cluster="main", old_versions=OLD_POSTGRESQL,
                           new_versions={"postgresql-17": "17.12-0+deb13u1"})


def run_update(service, fail_words=None, failing=(), always_fail=None, stop_after=None, simulations=None):
    plan = su.plan(service, "10.11" if service == "mariadb" else "15", "11.8" if service == "mariadb" else "17", PATHS)
    actions = Actions(failing)
    context = mariadb_context(actions) if service == "mariadb" else postgresql_context(actions)
    run = FakeRun(fail_words, always_fail, simulations)
    seen = []
    runner = sr.UpdateRunner(plan, context, run, clock=Clock(), wall_clock=lambda: 1700000000.0, on_record=seen.append)
    result = runner.execute(stop_after=stop_after)
    assert seen == result["steps"]
    return result, run, actions


def names(result, phase):
    return [record["name"] for record in result["steps"] if record["phase"] == phase]


# --- success -------------------------------------------------------------------------------------

def test_mariadb_update_runs_every_step_in_order():
    result, run, actions = run_update("mariadb")
    assert result["outcome"] == sr.UPDATED
    assert names(result, "update") == list(su.STEPS)
    assert names(result, "rollback") == []
    assert actions.called == ["checks", "backup", "verify"]
    # The socket unit first, or the sites' next request starts mariadbd again.
    assert run.calls[:2] == [sr.MARIADB_SOCKET_OFF, ["systemctl", "stop", "mariadb"]]
    assert ["cp", "-a", "--reflink=auto", "/var/lib/mysql", "/var/lib/mysql.pre-update-10.11"] in run.calls
    simulated, install = [call for call in run.calls if "install" in call]
    assert simulated[:2] == ["apt-get", "-s"] and install[0] == "env"
    # No maintainer script starts the service while the packages change: the steps start it.
    assert install[2:6] == ["sh", "-c", sr.NO_SERVICE_STARTS, "no-service-starts"]
    assert install[-2:] == ["mariadb-server=1:11.8.9+ds-0+deb13u1", "mariadb-client=1:11.8.9+ds-0+deb13u1"]
    assert "Dpkg::Options::=--force-confold" in install
    assert ["mariadb-upgrade"] in run.calls
    assert result["message"] == "Updated mariadb 10.11 -> 11.8."


UPGRADE = ["pg_upgradecluster", "-v", "17", "-m", "upgrade", "--no-start", "15", "main"]
READ_ONLY_CONF = ["pg_conftool", "17", "main", "set", "default_transaction_read_only", "on"]


def test_postgresql_update_commands():
    result, run, _actions = run_update("postgresql")
    assert result["outcome"] == sr.UPDATED
    assert UPGRADE in run.calls
    drop = run.calls.index(["sh", "-c", "! test -d /etc/postgresql/17/main || pg_dropcluster --stop 17 main"])
    assert drop < run.calls.index(UPGRADE)
    assert ["pg_ctlcluster", "17", "main", "status"] in run.calls


def test_the_new_postgresql_cluster_refuses_writes_from_its_first_start():
    result, run, _actions = run_update("postgresql")
    assert result["outcome"] == sr.UPDATED
    # pg_upgradecluster does not start the new cluster; its postgresql.conf refuses writes first.
    upgrade, conf = run.calls.index(UPGRADE), run.calls.index(READ_ONLY_CONF)
    start = run.calls.index(["systemctl", "start", "postgresql"])
    assert upgrade < conf < start
    data_upgrade = [step for step in result["steps"] if step["name"] == "data_upgrade"][0]
    assert data_upgrade["commands"][-1]["argv"] == READ_ONLY_CONF
    # The update itself never lifts the block: the cleanup step allow_writes does, after verify.
    assert sr.allow_writes_argv("postgresql") not in run.calls
    assert not any("remove" in call and "default_transaction_read_only" in " ".join(call) for call in run.calls)
    # The hook scripts pg_upgradecluster skips with --no-start (postgresql-common's analyze: the
    # planner statistics) run once the new cluster runs.
    start_step = [step for step in result["steps"] if step["name"] == "start"][0]
    assert [command["argv"] for command in start_step["commands"]] == [
        ["systemctl", "start", "postgresql"], ["pg_ctlcluster", "17", "main", "status"],
        sr.upgrade_hooks_argv("15", "main", "17")]
    assert "run-parts --lsbsysinit -a 15 -a main -a 17 -a finish /etc/postgresql-common/pg_upgradecluster.d" \
        in start_step["commands"][-1]["argv"][-1]


def test_mariadb_steps_leave_the_write_block_to_the_procedure():
    # The drop-in that makes every start refuse writes is written in the backup and removed by the
    # cleanup step: no step of the update or of the rollback touches it, nor the kept data copy's
    # way (the copy, the restore) any differently.
    result, run, _actions = run_update("mariadb", failing=["verify"])
    assert result["outcome"] == sr.ROLLED_BACK
    assert not any(sr.MARIADB_READ_ONLY_DROP_IN in " ".join(call) for call in run.calls)
    assert not any("read_only" in " ".join(call) for call in run.calls)
    assert not sr.MARIADB_READ_ONLY_DROP_IN.startswith("/var/lib/mysql")
    assert run.calls.count(["mv", "/var/lib/mysql.pre-update-10.11", "/var/lib/mysql"]) == 1


def test_records_have_timing_and_commands():
    result, _run, _actions = run_update("mariadb")
    stop = [record for record in result["steps"] if record["name"] == "stop"][0]
    assert stop["outcome"] == "ok" and stop["error"] is None
    assert stop["started_at"] == 1700000000.0
    assert stop["elapsed_s"] > 0
    assert [command["rc"] for command in stop["commands"]] == [0, 0, 0, 0]
    checks = result["steps"][0]
    assert checks["commands"] == [{"action": "checks", "elapsed_s": 0.5}]
    assert result["elapsed_s"] > 0


def test_stop_after_checks_changes_nothing():
    result, run, actions = run_update("postgresql", stop_after="checks")
    assert result["outcome"] == "stopped_after_checks"
    assert run.calls == [] and actions.called == ["checks"]
    assert "nothing changed" in result["message"]


# --- failures before anything changed ------------------------------------------------------------

@pytest.mark.parametrize("service", ["mariadb", "postgresql"])
@pytest.mark.parametrize("step", ["checks", "backup"])
def test_failure_before_the_service_stops_changes_nothing(service, step):
    result, run, _actions = run_update(service, failing=[step])
    assert result["outcome"] == sr.NOTHING_CHANGED
    assert result["failed_step"] == step
    assert run.calls == []
    assert names(result, "rollback") == []
    assert "nothing was changed" in result["message"] and "%s found a problem" % step in result["message"]


# --- failures after the backup: rolled back --------------------------------------------------------

MARIADB_FAULTS = {
    "stop": (["systemctl", "stop", "mariadb"], ["stop_new", "start_old", "verify_old"]),
    "packages": (["apt-get", "install", "mariadb-server="],
                 ["stop_new", "restore_data", "reinstall_old", "start_old", "verify_old"]),
    "data_upgrade": (["mariadb-upgrade"], ["stop_new", "restore_data", "reinstall_old", "start_old", "verify_old"]),
    "start": (["systemctl", "restart", "mariadb"],
              ["stop_new", "restore_data", "reinstall_old", "start_old", "verify_old"]),
    "verify": (None, ["stop_new", "restore_data", "reinstall_old", "start_old", "verify_old"]),
}
POSTGRESQL_FAULTS = {
    "stop": (["systemctl", "stop", "postgresql"], ["stop_new", "start_old", "verify_old"]),
    "packages": (["apt-get", "install", "postgresql-17="],
                 ["stop_new", "drop_new_cluster", "reinstall_old", "start_old", "verify_old"]),
    "data_upgrade": (["pg_upgradecluster"],
                     ["stop_new", "drop_new_cluster", "restore_old_cluster", "reinstall_old", "start_old", "verify_old"]),
    "start": (["systemctl", "start", "postgresql"],
              ["stop_new", "drop_new_cluster", "restore_old_cluster", "reinstall_old", "start_old", "verify_old"]),
    "verify": (None, ["stop_new", "drop_new_cluster", "restore_old_cluster", "reinstall_old", "start_old",
                      "verify_old"]),
    "hooks": (["run-parts", "finish"],
              ["stop_new", "drop_new_cluster", "restore_old_cluster", "reinstall_old", "start_old", "verify_old"]),
}


def _inject(faults, step):
    words, expected = faults[step]
    return dict(fail_words=words, failing=["verify"] if words is None else []), expected


@pytest.mark.parametrize("step", sorted(MARIADB_FAULTS))
def test_mariadb_rollback_after_a_failure_in(step):
    injected, expected = _inject(MARIADB_FAULTS, step)
    result, run, _actions = run_update("mariadb", **injected)
    assert result["outcome"] == sr.ROLLED_BACK, result
    assert result["failed_step"] == step
    assert names(result, "update") == list(su.STEPS[:su.STEPS.index(step) + 1])
    assert names(result, "rollback") == expected
    assert all(record["outcome"] == "ok" for record in result["steps"] if record["phase"] == "rollback")
    assert "rolled back" in result["message"] and "/var/backups/hosting/update-1" in result["message"]
    if "reinstall_old" in expected:
        reinstall = [call for call in run.calls if "--allow-downgrades" in call][-1]
        assert "mariadb-server=1:10.11.18-0+deb12u1" in reinstall and "libmariadb3=1:10.11.18-0+deb12u1" in reinstall
        # The copy made while stopped goes back before the old packages; the touched data
        # directory is kept aside.
        restore = run.calls.index(["mv", "/var/lib/mysql.pre-update-10.11", "/var/lib/mysql"])
        assert run.calls[restore - 1] == ["mv", "/var/lib/mysql", "/var/lib/mysql.failed"]
        assert restore < run.calls.index(reinstall)


@pytest.mark.parametrize("step", sorted(POSTGRESQL_FAULTS))
def test_postgresql_rollback_after_a_failure_in(step):
    injected, expected = _inject(POSTGRESQL_FAULTS, step)
    result, run, _actions = run_update("postgresql", **injected)
    assert result["outcome"] == sr.ROLLED_BACK, result
    assert result["failed_step"] == ("start" if step == "hooks" else step)
    assert names(result, "rollback") == expected
    if "reinstall_old" in expected:
        # One apt run, simulated first: the old versions back, the new version's packages out.
        simulated, reinstall = [call for call in run.calls if "--allow-downgrades" in call]
        assert simulated[:3] == ["apt-get", "-s", "install"]
        # Under a policy-rc.d that refuses service starts: the rollback starts the old version itself.
        assert reinstall[:4] == ["env", "DEBIAN_FRONTEND=noninteractive", "sh", "-c"]
        assert sr.NO_SERVICE_STARTS == reinstall[4]
        assert reinstall[6:9] == ["apt-get", "install", "-y"]
        assert simulated[3:] == reinstall[8:]
        assert reinstall[-5:] == ["postgresql-common=248+deb12u1", "postgresql-client-common=248+deb12u1",
                                  "postgresql-17-", "postgresql-client-17-", "postgresql-common-dev-"]
        assert not any("purge" in call for call in run.calls)
    if "restore_old_cluster" in expected:
        assert ["pg_conftool", "15", "main", "set", "port", "5432"] in run.calls
    # The old cluster runs again, and keeps refusing customers' writes (postgresql.auto.conf)
    # through verify_old: the cleanup step allow_writes lifts the block afterwards.
    assert run.calls[-1] == ["pg_ctlcluster", "15", "main", "status"]
    assert sr.allow_writes_argv("postgresql") not in run.calls


def test_failure_message_names_the_command_and_its_error():
    result, _run, _actions = run_update("mariadb", fail_words=["mariadb-upgrade"])
    failed = [record for record in result["steps"] if record["name"] == "data_upgrade"][0]
    assert failed["outcome"] == "failed"
    assert failed["error"] == "mariadb-upgrade exited with 1: injected failure"
    assert failed["commands"][-1]["rc"] == 1


def test_rollback_that_fails_stops_and_says_so():
    result, run, _actions = run_update("mariadb", fail_words=["mariadb-upgrade"],
                                       always_fail=["apt-get", "--allow-downgrades"])
    assert result["outcome"] == sr.ROLLBACK_FAILED
    assert names(result, "rollback") == ["stop_new", "restore_data", "reinstall_old"]
    assert result["rollback_error"].startswith("reinstall_old: apt-get cannot resolve mariadb-server=1:10.11")
    assert "needs a person" in result["message"] and "/var/backups/hosting/update-1" in result["message"]
    # Nothing after the failed rollback step ran: the old version was not started.
    assert run.calls[-1][-1].endswith("libmariadb3=1:10.11.18-0+deb12u1")


def test_update_that_would_remove_the_old_cluster_is_refused():
    # The update's own apt run would take postgresql-15 (and with it the old cluster) away.
    simulations = {"postgresql-17=": "Inst postgresql-17 (17.12-0+deb13u1)\nRemv libssl3 [3.0.20]\n"
                                     "Remv postgresql-15 [15.18-0+deb12u1]\n"}
    result, run, _actions = run_update("postgresql", simulations=simulations)
    assert result["outcome"] == sr.ROLLED_BACK
    assert result["failed_step"] == "packages"
    assert result["error"] == "apt-get would remove postgresql-15 as well; refused, nothing was installed or removed."
    assert not any(call[:2] == ["env", "DEBIAN_FRONTEND=noninteractive"] and "install" in call
                   and "postgresql-17=17.12-0+deb13u1" in call for call in run.calls)


def test_update_may_remove_replaced_libraries():
    simulations = {"mariadb-server=": "Inst libssl3t64 (3.5.9)\nRemv libssl3 [3.0.20-1~deb12u2]\n"}
    result, _run, _actions = run_update("mariadb", simulations=simulations)
    assert result["outcome"] == sr.UPDATED


def test_rollback_that_would_remove_more_is_refused():
    simulations = {"--allow-downgrades": "Remv postgresql-17 [17.12]\nRemv postgresql-15 [15.18-0+deb12u1]\n"
                                         "Remv php8.2-pgsql [8.2.29]\n"}
    result, run, _actions = run_update("postgresql", failing=["verify"], simulations=simulations)
    assert result["outcome"] == sr.ROLLBACK_FAILED
    assert result["rollback_error"] == ("reinstall_old: apt-get would remove postgresql-15, php8.2-pgsql as well; "
                                        "refused, nothing was installed or removed.")
    assert not any(call[0] == "env" and "--allow-downgrades" in call for call in run.calls)


def test_simulated_removals():
    output = "Inst a (1)\nRemv libssl3 [3.0]\nPurg postgresql-15 [15]\nConf a (1)\nRemv libc6:amd64 [2.36]\n"
    assert sr.simulated_removals(output) == ["libssl3", "postgresql-15", "libc6:amd64"]


def test_verify_old_failure_is_a_failed_rollback():
    result, _run, _actions = run_update("postgresql", failing=["verify", "verify_old"])
    assert result["outcome"] == sr.ROLLBACK_FAILED
    assert result["rollback_error"] == "verify_old: verify_old found a problem"


def test_an_action_that_crashes_is_a_failure_too():
    plan = su.plan("mariadb", "10.11", "11.8", PATHS)
    context = mariadb_context(Actions())

    def verify(run):
        raise KeyError("tables")
    context["verify"] = verify
    result = sr.UpdateRunner(plan, context, FakeRun(), clock=Clock()).execute()
    assert result["outcome"] == sr.ROLLED_BACK
    assert result["error"] == "'tables'"


def test_unpinned_install_without_versions():
    plan = su.plan("mariadb", "10.11", "11.8", PATHS)
    context = mariadb_context(Actions())
    context["new_versions"] = {}
    steps = sr.update_steps(plan, context)
    assert steps["packages"][1].argv[-2:] == ["mariadb-server", "mariadb-client"]


def test_checks_choose_the_versions_to_install():
    plan = su.plan("mariadb", "10.11", "11.8", PATHS)
    context = mariadb_context(Actions())
    del context["new_versions"]

    def checks(run):
        context["new_versions"] = NEW_MARIADB
    context["checks"] = checks
    run = FakeRun()
    assert sr.UpdateRunner(plan, context, run, clock=Clock()).execute()["outcome"] == sr.UPDATED
    install = [call for call in run.calls if "install" in call][0]
    assert install[-1] == "mariadb-client=1:11.8.9+ds-0+deb13u1"


def test_unknown_service_has_no_steps():
    with pytest.raises(su.ServiceUpdateError, match="No update steps for service 'redis'"):
        sr.update_steps({"service": "redis", "method": "x", "packages": ["redis"]}, {})


def test_postgresql_dump_restore_method_makes_a_new_cluster_and_restores():
    paths = {"postgresql": {"15": {"17": dict(PATHS["postgresql"]["15"]["17"], method="dump-restore")}}}
    plan = su.plan("postgresql", "15", "17", paths)
    restore = sr.Command(["runuser", "-u", "postgres", "--", "psql", "-f", "/backup/db-shop.sql"])
    context = postgresql_context(Actions())
    context["restore_actions"] = [restore]
    steps = sr.update_steps(plan, context)
    assert [action.argv for action in steps["data_upgrade"]][1:] == [["pg_createcluster", "17", "main"], restore.argv,
                                                                     READ_ONLY_CONF]
    assert [action.argv[0] for action in steps["start"]] == ["systemctl", "pg_ctlcluster"]


@pytest.mark.parametrize("service", ["mariadb", "postgresql"])
def test_allow_writes_removes_the_configuration_then_lifts_the_block(service):
    argvs = sr.allow_writes_argvs(service, "17", "main")
    assert argvs[-1] == sr.allow_writes_argv(service)
    if service == "mariadb":
        assert argvs[0] == ["rm", "-f", "/etc/mysql/mariadb.conf.d/99-hosting-service-update.cnf"]
        assert sr.refuse_writes_on_start_argv(service)[-2] == argvs[0][-1]
    else:
        # Only where the new cluster is (a rollback dropped it); the reload after it reads the change.
        assert argvs[0] == ["sh", "-c", "! test -f /etc/postgresql/17/main/postgresql.conf || "
                                        "pg_conftool 17 main remove default_transaction_read_only"]
        assert sr.refuse_writes_on_start_argv(service) is None
        assert argvs[1][-1] == "SELECT pg_reload_conf()"


def test_the_drop_in_is_written_whole_readable_and_removed_idempotently(tmp_path):
    import subprocess
    path = tmp_path / "99-hosting-service-update.cnf"
    argv = sr.refuse_writes_on_start_argv("mariadb")
    argv[argv.index(sr.MARIADB_READ_ONLY_DROP_IN)] = str(path)
    subprocess.run(argv, check=True)
    subprocess.run(argv, check=True)
    text = path.read_text()
    assert text == sr.MARIADB_READ_ONLY_CONFIG and text.endswith("[mysqld]\nread_only = ON\n")
    # mariadbd reads it as the mysql user.
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert [item.name for item in tmp_path.iterdir()] == [path.name]
    remove = sr.allow_writes_argvs("mariadb")[0]
    remove[-1] = str(path)
    subprocess.run(remove, check=True)
    subprocess.run(remove, check=True)
    assert not path.exists()


def test_allow_writes_skips_a_new_cluster_that_is_not_there(tmp_path):
    import subprocess
    argv = sr.allow_writes_argvs("postgresql", "17", "main")[0]
    script = argv[2].replace("/etc/postgresql/17/main/postgresql.conf", str(tmp_path / "postgresql.conf"))
    assert subprocess.run(["sh", "-c", script], check=False).returncode == 0


def test_packages_change_under_a_policy_that_refuses_service_starts(tmp_path):
    # The wrapper really refuses starts while apt-get runs, removes its policy afterwards, keeps
    # the command's exit status, and leaves a policy-rc.d the server had alone.
    import subprocess
    policy = tmp_path / "policy-rc.d"
    script = sr.NO_SERVICE_STARTS.replace("/usr/sbin/policy-rc.d", str(policy))
    probe = '"$0" x start; echo "policy says $?"; exit 3'
    done = subprocess.run(["sh", "-c", script, "n", "sh", "-c", probe.replace('"$0"', str(policy))],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 3
    assert done.stdout == "policy says 101\n"
    assert not policy.exists()
    policy.write_text("#!/bin/sh\nexit 0\n")
    policy.chmod(0o755)
    subprocess.run(["sh", "-c", script, "n", "true"], check=True)
    assert policy.read_text() == "#!/bin/sh\nexit 0\n"
