#!/usr/bin/env python3
"""Run one of hosting.migration's AWX job templates the way AWX runs it, and show its artifacts.

AWX runs a job through ansible-runner in a private data directory: env/extravars (the template's
extra_vars, the survey's defaults and answers, the launch variables), env/envvars, env/settings,
env/cmdline (--check for a template of job type check), inventory/, project/ (a copy of the
project's checkout, the working directory), and reads the job's artifacts from the
playbook_on_stats event (what the playbook published with set_stats). This does the same with
the definitions of awx/templates.yml. The collection is found the way the execution environment
of awx/execution-environment.yml finds it: ansible_collections/hosting/migration links to the
project checkout, on ANSIBLE_COLLECTIONS_PATH.

    .venv/bin/python tests/awx/run_template.py Prepare -a migration_server=dedicated1 \\
        -a migration_database_test=false --expect prepare_accounts=alice,bob,carol,dave,erin \\
        --ledger /tmp/awx-test.sqlite3
    .venv/bin/python tests/awx/run_template.py Report -a migration_server=dedicated1 \\
        -v report_dir=/tmp/awx-reports --expect report_leases --expect report_summary

--expect NAME fails unless the artifacts have NAME; --expect NAME=a,b unless the artifact NAME
(a list) holds a and b. Exit code 0 when the job is successful and every expectation holds.
Prints the job's status, rc and artifacts as JSON. Also importable: run_template(...).
"""
import argparse
import json
import os
import pathlib
import shutil
import sys
import tempfile

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import awx_templates  # noqa: E402 (next to this file)

TOP = awx_templates.TOP
# What AWX's project checkout holds that a job needs (the lab, tests and benchmarks are not used).
PROJECT_PARTS = ["awx", "playbooks", "roles", "plugins", "meta", "galaxy.yml", "ansible.cfg", "inventories"]
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


def _write(path, text, mode=0o600):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def build_private_data_dir(private_data_dir, template, extra_vars, inventory, envvars, timeout_s):
    """Lay out a private data directory as AWX does for a job of the template."""
    pdd = pathlib.Path(private_data_dir)
    project = pdd / "project"
    for part in PROJECT_PARTS:
        source = TOP / part
        if source.is_dir():
            shutil.copytree(source, project / part, symlinks=True, ignore=COPY_IGNORE)
        elif source.exists():
            project.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, project / part)
    # The execution environment's link: the collection is the project checkout itself.
    collections = pdd / "collections"
    link = collections / "ansible_collections" / "hosting" / "migration"
    link.parent.mkdir(parents=True)
    link.symlink_to(project)
    shutil.copytree(inventory, pdd / "inventory", symlinks=True)
    _write(pdd / "env" / "extravars", yaml.safe_dump(extra_vars, default_flow_style=False))
    envvars = dict(envvars)
    envvars["ANSIBLE_COLLECTIONS_PATH"] = str(collections)
    # The project's own ansible.cfg, as in AWX (where the job runs in the project directory),
    # whatever ANSIBLE_CONFIG the caller has.
    envvars["ANSIBLE_CONFIG"] = str(project / "ansible.cfg")
    _write(pdd / "env" / "envvars", yaml.safe_dump(envvars, default_flow_style=False))
    _write(pdd / "env" / "settings", yaml.safe_dump(
        {"job_timeout": timeout_s, "idle_timeout": timeout_s, "suppress_ansible_output": True}))
    if template["job_type"] == "check":
        _write(pdd / "env" / "cmdline", "--check")
    return pdd


def _stats_event(runner):
    for event in runner.events:
        if event.get("event") == "playbook_on_stats":
            return event
    return None


def run_template(name, answers=None, launch_vars=None, private_data_dir=None, ledger=None,
                 inventory=TOP / "inventories" / "lab", timeout_s=1800, template_values=None):
    """Run the job template named name (as in awx/templates.yml, without the prefix).

    Returns a dict: status, rc, artifacts (the playbook_on_stats event's artifact_data),
    private_data_dir, extra_vars, stdout (the last lines of the job's output).
    """
    import ansible_runner  # the controller's venv has it; imported here so --help works without

    # ansible-playbook from the interpreter's own environment (the controller's venv), as the
    # execution environment has it on its PATH.
    venv_bin = str(pathlib.Path(sys.executable).parent)
    if venv_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")
    template = awx_templates.job_template(name, **(template_values or {}))
    extra_vars = awx_templates.launch_extra_vars(template, answers, launch_vars)
    envvars = {key: os.environ[key] for key in ("HOSTING_LAB_STATE", "HOSTING_DNS_KEY_SECRET") if key in os.environ}
    if ledger:
        envvars["HOSTING_MIGRATION_LEDGER"] = str(ledger)
    pdd = pathlib.Path(private_data_dir or tempfile.mkdtemp(prefix="awx-job-"))
    build_private_data_dir(pdd, template, extra_vars, inventory, envvars, timeout_s)
    runner = ansible_runner.run(private_data_dir=str(pdd), playbook=template["playbook"], quiet=True)
    stats = _stats_event(runner)
    stdout = runner.stdout.read().splitlines() if runner.stdout else []
    return {
        "template": template["name"],
        "status": runner.status,
        "rc": runner.rc,
        "artifacts": (stats or {}).get("event_data", {}).get("artifact_data", {}),
        "stats_event": stats is not None,
        "private_data_dir": str(pdd),
        "extra_vars": extra_vars,
        "stdout": stdout[-40:],
    }


def unmet(result, expectations):
    """The expectations (NAME or NAME=a,b) the job's artifacts do not meet, as sentences."""
    problems = []
    for expectation in expectations:
        key, _, wanted = expectation.partition("=")
        if key not in result["artifacts"]:
            problems.append(f"the artifacts have no {key} (they have: {', '.join(sorted(result['artifacts'])) or 'none'})")
            continue
        missing = [item for item in wanted.split(",") if item and item not in result["artifacts"][key]]
        if missing:
            problems.append(f"the artifact {key} lacks {', '.join(missing)}")
    return problems


def _pairs(items):
    pairs = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"{item!r}: give NAME=VALUE.")
        pairs[key] = value
    return pairs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("template", help="the job template's name in awx/templates.yml, e.g. Prepare")
    parser.add_argument("-a", "--answer", action="append", help="a survey answer, VARIABLE=VALUE")
    parser.add_argument("-v", "--var", action="append", help="a launch variable (templates that ask for variables), NAME=VALUE")
    parser.add_argument("--expect", action="append", default=[], help="NAME, or NAME=a,b: an artifact the job must publish")
    parser.add_argument("--ledger", help="HOSTING_MIGRATION_LEDGER for the job (keep the lab's own ledger out of tests)")
    parser.add_argument("--inventory", default=str(TOP / "inventories" / "lab"), help="inventory directory (the lab's)")
    parser.add_argument("--private-data-dir", help="where to lay the job out (default: a new temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the private data directory")
    args = parser.parse_args(argv)
    result = run_template(args.template, _pairs(args.answer), _pairs(args.var), args.private_data_dir,
                          args.ledger, pathlib.Path(args.inventory))
    problems = [] if result["status"] == "successful" and result["rc"] == 0 else [
        f"the job ended {result['status']} with rc {result['rc']}"]
    if not result["stats_event"]:
        problems.append("the job sent no playbook_on_stats event")
    problems += unmet(result, args.expect)
    shown = {key: result[key] for key in ("template", "status", "rc", "private_data_dir", "extra_vars", "artifacts")}
    print(json.dumps(shown, indent=2, default=str))
    if problems:
        print("\n".join(result["stdout"]), file=sys.stderr)
        print(f"{args.template}: " + "; ".join(problems) + ".", file=sys.stderr)
    elif not args.keep and not args.private_data_dir:
        shutil.rmtree(result["private_data_dir"], ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
