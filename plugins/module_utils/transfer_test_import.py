# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The database test: each database dumped here and piped into a scratch database on a test server.

The dump is the one a move makes (for PostgreSQL without owners and grants: the account's roles do
not exist on the test server). The test server's transfer endpoint imports it into a scratch
database, drops that, and answers with a JSON report of the errors and warnings
(``transfer_endpoint.restore_test``); this side reads the report.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import shutil
import time

from ansible_collections.hosting.migration.plugins.module_utils.transfer import (
    KEY_ROOT, TransferError, TransferInputError, check_database, check_peer, check_port, check_transfer_id,
    first_lines, key_paths, require_key, ssh_base_command)
from ansible_collections.hosting.migration.plugins.module_utils.transfer_endpoint import MESSAGE_CHARS
from ansible_collections.hosting.migration.plugins.module_utils.transfer_stream import (
    MARIADB_DUMP_OPTIONS, dump_tools, pipe)

DATABASE_TEST_ARGUMENT_SPEC = dict(
    transfer_id=dict(type="str", required=True),
    peer=dict(type="str", required=True),
    port=dict(type="int", default=22),
    databases=dict(type="list", elements="dict", required=True),
)
DATABASE_TEST_MODULE_KWARGS = dict(argument_spec=DATABASE_TEST_ARGUMENT_SPEC, supports_check_mode=True)
# No owners and no grants: the account's roles do not exist on the test server, and the scratch
# database is empty, so nothing needs dropping first.
PG_TEST_DUMP_OPTIONS = ("--no-owner", "--no-privileges", "--quote-all-identifiers", "--no-password")
REPORT_KEYS = ("error_count", "errors", "warning_count", "warnings", "scratch", "dropped")


def check_test_databases(databases):
    """[(engine, name, account)] from [{engine, name[, account]}]; account is only a label for the report."""
    if not databases:
        raise TransferInputError("databases is empty: name at least one {engine, name}.")
    result, seen = [], set()
    for index, entry in enumerate(databases):
        field = "databases[%d]" % index
        if not isinstance(entry, dict) or set(entry) - {"engine", "name", "account"}:
            raise TransferInputError("%s must be a dict with engine, name and optionally account (got %r)."
                                     % (field, entry))
        name = check_database(entry.get("engine"), entry.get("name"), field)
        account = entry.get("account")
        if account is not None and not isinstance(account, str):
            raise TransferInputError("%s.account must be a string (got %r)." % (field, account))
        if (entry["engine"], name) in seen:
            raise TransferInputError("%s: %s database %s is named twice." % (field, entry["engine"], name))
        seen.add((entry["engine"], name))
        result.append((entry["engine"], name, account))
    return result


def dump_command_for_test(engine, name, mariadb_dump="mariadb-dump"):
    if engine == "mariadb":
        return [mariadb_dump] + list(MARIADB_DUMP_OPTIONS) + [name]
    return ["runuser", "-u", "postgres", "--", "pg_dump"] + list(PG_TEST_DUMP_OPTIONS) + [name]


def ssh_command_for_test(paths, peer, engine, name, port=22):
    """ssh to the test server's transfer endpoint, naming the test import only."""
    return ssh_base_command(paths, port) + ["-T", "root@" + peer, "hosting-restore-test %s %s" % (engine, name)]


def parse_report(text):
    """The endpoint's JSON report: the last line of its output that is a JSON object; None if there is none."""
    for line in reversed((text or "").splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            report = json.loads(line)
        except ValueError:
            continue
        if isinstance(report, dict) and all(key in report for key in REPORT_KEYS):
            return report
    return None


def result_of_test(entry, outcome, peer):
    """One database's result from the pipe's outcome; raises TransferError when no test was made."""
    report = parse_report(outcome["consumer_stdout"])
    dump_error = None
    if outcome["producer_rc"] != 0:
        dump_error = "the dump (%s) exited with %d: %s" % (
            entry["dump"][0] if entry["engine"] == "mariadb" else "pg_dump", outcome["producer_rc"],
            first_lines(outcome["producer_stderr"]) or "no message")
        if len(dump_error) > MESSAGE_CHARS:
            dump_error = dump_error[:MESSAGE_CHARS - 3] + "..."
    if report is None and dump_error and not outcome["consumer_broke"]:
        # The ssh side was stopped because the dump failed: the endpoint dropped its scratch database
        # without a report reaching us. The failed dump is the finding.
        return dict(entry, bytes=outcome["bytes"], elapsed_s=outcome["elapsed_s"], error_count=1, errors=[dump_error],
                    warning_count=0, warnings=[], expected_warning_count=0, expected_warnings=[], ok=False, scratch=None, dropped=None, server_version=None,
                    stale_dropped=[])
    if report is None:
        reason = first_lines(outcome["consumer_stderr"]) or "no message"
        sentence = "the test import on %s exited with %d" % (peer, outcome["consumer_rc"])
        if outcome["consumer_rc"] == 255:
            sentence += " (ssh failed: unreachable, host key mismatch, or the key was refused or expired)"
        raise TransferError("Testing %s database %s on %s failed: %s without a report: %s."
                            % (entry["engine"], entry["name"], peer, sentence, reason),
                            restore_rc=outcome["consumer_rc"], dump_rc=outcome["producer_rc"])
    errors, warnings = list(report["errors"]), list(report["warnings"])
    error_count, warning_count = int(report["error_count"]), int(report["warning_count"])
    if dump_error:
        # The import then saw a cut dump: its errors follow from this one.
        errors.insert(0, dump_error)
        error_count += 1
    result = dict(entry, bytes=outcome["bytes"], elapsed_s=outcome["elapsed_s"], error_count=error_count,
                  errors=errors, warning_count=warning_count, warnings=warnings, ok=error_count == 0,
                  expected_warning_count=int(report.get("expected_warning_count") or 0),
                  expected_warnings=list(report.get("expected_warnings") or []),
                  scratch=report["scratch"], dropped=bool(report["dropped"]),
                  server_version=report.get("server_version"), stale_dropped=report.get("stale_dropped") or [])
    if not report["dropped"]:
        result["drop_error"] = report.get("drop_error") or "unknown"
    return result


def summary(results):
    return dict(tested=len(results), with_errors=len([r for r in results if r["error_count"]]),
                with_warnings=len([r for r in results if r["warning_count"]]),
                ok=all(r["ok"] for r in results))


def run_database_test(params, check_mode=False, key_root=KEY_ROOT, which=shutil.which, env=None):
    """What database_test does; raises TransferError (TransferInputError before anything runs)."""
    transfer_id = check_transfer_id(params["transfer_id"])
    peer = check_peer(params["peer"])
    port = check_port(params.get("port", 22))
    databases = check_test_databases(params.get("databases"))
    paths = key_paths(transfer_id, key_root)
    require_key(paths, transfer_id)
    dump_tool = dump_tools(set(entry[0] for entry in databases), which, "test")
    results, warnings, started = [], [], time.monotonic()
    for engine, name, account in databases:
        entry = dict(engine=engine, name=name, dump=dump_command_for_test(engine, name, dump_tool),
                     test=ssh_command_for_test(paths, peer, engine, name, port))
        if account is not None:
            entry["account"] = account
        if check_mode:
            results.append(dict(entry, bytes=None, elapsed_s=None))
            continue
        try:
            result = result_of_test(entry, pipe(entry["dump"], entry["test"], env=env), peer)
        except TransferError as error:
            error.details.update(databases=results, failed=entry)
            raise
        if result["dropped"] is False:
            warnings.append("The scratch database %s of the test of %s database %s could not be dropped on %s: %s; "
                            "the next test drops it." % (result["scratch"], engine, name, peer, result["drop_error"]))
        results.append(result)
    outcome = dict(changed=False, databases=results, peer=peer, elapsed_s=round(time.monotonic() - started, 3),
                   bytes=sum(entry["bytes"] or 0 for entry in results))
    if not check_mode:
        outcome.update(summary(results))
    if warnings:
        outcome["warnings"] = warnings
    return outcome
