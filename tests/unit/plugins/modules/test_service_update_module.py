# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module hosting.migration.service_update: its arguments, and how a result, a rollback and a
refusal come out of it (the procedure itself is faked here; test_service_update_procedure.py
runs it on a fake server)."""

from __future__ import (absolute_import, division, print_function)

__metaclass__ = type

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.hosting.migration.plugins.module_utils.service_update import ServiceUpdateRefused
from ansible_collections.hosting.migration.plugins.modules import service_update as module

PATHS = {"mariadb": {"10.11": {"11.8": {"packages": ["mariadb-server"], "method": "mariadb-upgrade"}}}}


def run_module(capsys, args, check_mode=False):
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def procedure(monkeypatch):
    """Replaces run_service_update; ``calls`` holds the parameters it got, ``answer`` what it does."""
    class Procedure(object):
        calls = []
        answer = staticmethod(lambda params: {"ok": True, "changed": True, "msg": "Updated mariadb 10.11 -> 11.8.",
                                              "outcome": "updated", "rolled_back": False, "steps": []})

        def __call__(self, params, check_mode=False):
            self.calls.append((params, check_mode))
            return self.answer(params)
    fake = Procedure()
    monkeypatch.setattr(module, "run_service_update", fake)
    return fake


def test_a_missing_version_fails_with_its_name(capsys, procedure):
    result = run_module(capsys, {"service": "mariadb", "paths": PATHS})
    assert result["failed"] and result["msg"] == "missing required arguments: to_version"
    assert procedure.calls == []


def test_an_unknown_service_fails_naming_the_known_ones(capsys, procedure):
    result = run_module(capsys, {"service": "mysql", "to_version": "8.0", "paths": PATHS})
    assert result["failed"]
    assert result["msg"] == "value of service must be one of: mariadb, postgresql, got: mysql"


def test_fail_at_takes_only_the_steps_after_the_checks(capsys, procedure):
    result = run_module(capsys, {"service": "mariadb", "to_version": "11.8", "paths": PATHS, "fail_at": "checks"})
    assert result["failed"] and result["msg"].startswith("value of fail_at must be one of: backup, stop, packages")


def test_defaults_reach_the_procedure(capsys, procedure):
    result = run_module(capsys, {"service": "mariadb", "to_version": "11.8", "paths": PATHS,
                                 "sites": [{"host": "alice.example", "address": "10.77.0.21"}]})
    assert not result.get("failed") and result["changed"] and result["outcome"] == "updated"
    assert "ok" not in result
    params, check_mode = procedure.calls[0]
    assert check_mode is False
    assert params["mode"] == "update" and params["keep_old_data"] is True and params["cluster"] == "main"
    assert params["backup_dir"] == "/var/backups/hosting/service-update"
    assert params["site_pattern"] == r"digest: (\S+)" and params["fail_at"] is None
    assert params["site_watch_interval_s"] == 0.5
    assert params["lock_file"] == "/run/lock/hosting-service-update.lock"
    assert params["sites"] == [{"host": "alice.example", "address": "10.77.0.21", "account": None, "port": 80,
                                "path": "/"}]


def test_check_mode_reaches_the_procedure(capsys, procedure):
    run_module(capsys, {"service": "mariadb", "to_version": "11.8", "paths": PATHS}, check_mode=True)
    assert procedure.calls[0][1] is True


def test_a_rollback_fails_the_task_with_the_whole_result(capsys, procedure):
    procedure.answer = lambda params: {
        "ok": False, "changed": True, "outcome": "rolled_back", "rolled_back": True, "failed_step": "data_upgrade",
        "msg": "The update mariadb 10.11 -> 11.8 failed in data_upgrade (...) and was rolled back: ...",
        "steps": [{"name": "data_upgrade", "outcome": "failed"}]}
    result = run_module(capsys, {"service": "mariadb", "to_version": "11.8", "paths": PATHS})
    assert result["failed"] and result["changed"] and result["rolled_back"]
    assert result["msg"].startswith("The update mariadb 10.11 -> 11.8 failed in data_upgrade")
    assert result["steps"] == [{"name": "data_upgrade", "outcome": "failed"}]


def test_a_refusal_fails_with_its_sentence_and_details(capsys, procedure):
    def refuse(params):
        raise ServiceUpdateRefused("mariadb 10.6 is older than the version on this server (10.11): service_update "
                                   "does not downgrade.", current_version="10.11", to_version="10.6")
    procedure.answer = refuse
    result = run_module(capsys, {"service": "mariadb", "to_version": "10.6", "paths": PATHS})
    assert result["failed"] and not result["changed"]
    assert result["msg"].endswith("service_update does not downgrade.")
    assert result["current_version"] == "10.11" and result["to_version"] == "10.6"


def test_another_update_running_fails_with_the_holder(capsys, procedure):
    def refuse(params):
        raise ServiceUpdateRefused(
            "Another service update runs on this server since 2026-11-26T05:12:00Z (pid 4711, mariadb 10.11 -> 11.8); "
            "wait for it to end, then run again.", lock_file="/run/lock/hosting-service-update.lock",
            lock_holder={"pid": 4711, "service": "mariadb"})
    procedure.answer = refuse
    result = run_module(capsys, {"service": "mariadb", "to_version": "11.8", "paths": PATHS,
                                 "site_watch_interval_s": 0.25, "lock_file": "/tmp/x.lock"})
    assert result["failed"] and not result["changed"]
    assert result["msg"].startswith("Another service update runs on this server since")
    assert result["lock_holder"]["pid"] == 4711
    params, _check_mode = procedure.calls[0]
    assert params["site_watch_interval_s"] == 0.25 and params["lock_file"] == "/tmp/x.lock"


def test_the_documented_options_are_the_argument_spec():
    import yaml
    documented = yaml.safe_load(module.DOCUMENTATION)["options"]
    spec = module.SERVICE_UPDATE_MODULE_KWARGS["argument_spec"]
    assert set(documented) == set(spec)
    for name, option in spec.items():
        for field in ("type", "default", "choices", "elements"):
            assert documented[name].get(field) == option.get(field), (name, field)
    returned = yaml.safe_load(module.RETURN)
    assert {"writes_refused", "site_downtime", "service_window"} <= set(returned)
