"""What the benchmarks share: the lab in the state a benchmark needs, playbook runs with their
per-task timings, the ledger's moves, commands inside the lab's servers.

The lab is made only by the lab's own machinery (lab/bin/lab-up.sh with LAB_ACCOUNTS,
LAB_FILES_MB, LAB_DB_MB). To start over, the servers the moves change (dedicated1, transit1,
transit2, ns1) are removed with the ledger and lab-up makes them again; dbtest1 is left alone.
BENCH_SCALE (default 1) shrinks the data of the benchmarks, to try them out quickly."""
import contextlib
import datetime
import json
import os
import pathlib
import sqlite3
import subprocess
import sys
import time

TOP = pathlib.Path(__file__).resolve().parents[1]
STATE = pathlib.Path(os.environ.get("HOSTING_LAB_STATE", "/var/lib/hosting-lab"))
PLAYBOOK = str(TOP / ".venv/bin/ansible-playbook")
DEFAULT = {"accounts": 5, "files_mb": 4, "db_mb": 2}
RESET_SERVERS = ("dedicated1", "transit1", "transit2", "ns1")
# Written on dedicated1 by a benchmark that adds data to accounts: those accounts are not the
# lab's any more. Gone when the server is made again.
TOUCHED = "/etc/hosting/bench-touched"
# Written on dedicated1 when a benchmark made the lab: the settings it was made with.
MADE = "/etc/hosting/bench-lab"
# Tasks that run entirely on the controller (no module on any server).
CONTROLLER_ACTIONS = {f"ansible.builtin.{name}" for name in (
    "set_fact", "assert", "include_tasks", "include_role", "import_tasks", "validate_argument_spec", "debug",
    "set_stats", "meta", "fail")} | {"hosting.migration.ledger"}


def scale():
    return float(os.environ.get("BENCH_SCALE", "1"))


def log(text):
    print(f"  [{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def run(argv, **kwargs):
    """A command on the controller; its stdout. Fails with its stderr."""
    kwargs.setdefault("cwd", TOP)
    result = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} failed ({result.returncode}): "
                           f"{(result.stderr or result.stdout)[-3000:]}")
    return result.stdout


def on(server, script, stdin=None):
    """A bash script run as root inside a lab server (podman exec); its stdout."""
    return run(["podman", "exec", "-i", server, "bash", "-euo", "pipefail", "-c", script], input=stdin)


def lab_env(accounts, files_mb, db_mb):
    env = dict(os.environ, LAB_ACCOUNTS=str(accounts), LAB_FILES_MB=str(files_mb), LAB_DB_MB=str(db_mb))
    env.pop("HOSTING_MIGRATION_LEDGER", None)
    return env


def fingerprint(env):
    """The fingerprint lab-up.sh gives a lab of these settings (the same command as lab-up.sh's;
    if the two ever differ, the benchmarks rebuild the lab every time: slow, never wrong)."""
    return run(["bash", "-c", """set -euo pipefail
(find roles plugins lab inventories/lab -type f -not -path '*/__pycache__/*' -print0 \\
  | sort -z | xargs -0 sha256sum
  echo "accounts=${LAB_ACCOUNTS:-5} files=${LAB_FILES_MB:-4} db=${LAB_DB_MB:-2}") | sha256sum | cut -c1-16"""],
               env=env).strip()


def ledger_location():
    return str(STATE / "ledger.sqlite3")


def moves():
    """Every move of the lab's ledger, oldest first: dicts with the columns of its moves table
    (docs/state-store.md) and freeze_window_s. Read with plain sqlite3, read-only, so that a
    ledger migrated by a newer collection is still read."""
    path = pathlib.Path(ledger_location())
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        db.row_factory = sqlite3.Row
        found = [dict(row) for row in db.execute("SELECT * FROM moves ORDER BY id")]
    for move in found:
        started, ended = move["freeze_started_at"], move["freeze_ended_at"]
        move["freeze_window_s"] = None if not (started and ended) else _iso_seconds(ended) - _iso_seconds(started)
    return found


def lab_is(settings, accounts_needed):
    """True when the lab runs with these settings and the accounts needed (all when None) were
    neither moved nor touched by a benchmark."""
    try:
        made = on("dedicated1", f"cat {MADE} 2>/dev/null || true").strip()
        converged = on("dedicated1", "cat /etc/hosting/lab-converged").strip()
        touched = set(on("dedicated1", f"cat {TOUCHED} 2>/dev/null || true").split())
    except RuntimeError:
        return False
    # Settings: as the benchmarks made the lab, or as lab-up just made it (fingerprint).
    if made:
        if json.loads(made) != settings:
            return False
    elif converged != fingerprint(lab_env(**settings)):
        return False
    if len(json.loads((STATE / "accounts.json").read_text())["accounts"]) != settings["accounts"]:
        return False
    moved = {move["account"] for move in moves()}
    spoiled = moved | touched
    return not spoiled if accounts_needed is None else not spoiled & set(accounts_needed)


def ensure_lab(accounts=5, files_mb=4, db_mb=2, accounts_needed=None):
    """The lab with these settings, and the accounts needed as lab-up made them. Returns the
    seconds spent making the lab (0 when it was already so)."""
    settings = {"accounts": accounts, "files_mb": files_mb, "db_mb": db_mb}
    if lab_is(settings, accounts_needed):
        return 0.0
    log(f"making the lab again: LAB_ACCOUNTS={accounts} LAB_FILES_MB={files_mb} LAB_DB_MB={db_mb}")
    started = time.monotonic()
    for server in RESET_SERVERS:
        run(["podman", "rm", "--force", "--ignore", server])
    pathlib.Path(ledger_location()).unlink(missing_ok=True)
    for socket in (STATE / "ssh").glob("cm-*"):
        socket.unlink(missing_ok=True)
    run([str(TOP / "lab/bin/lab-up.sh")], env=lab_env(**settings))
    on("dedicated1", f"cat > {MADE}", stdin=json.dumps(settings))
    elapsed = time.monotonic() - started
    log(f"lab made in {elapsed:.0f} s")
    return elapsed


def touch(accounts):
    on("dedicated1", f"printf '%s\\n' {' '.join(accounts)} >> {TOUCHED}")


def playbook(name, extra_vars, inventories=()):
    """Run hosting.migration.<name>; (wall seconds, the json callback's report). The raw output
    is kept in bench/results/last-playbook.json for a closer look."""
    argv = [PLAYBOOK, f"hosting.migration.{name}", "-i", "inventories/lab"]
    for inventory in inventories:
        argv += ["-i", str(inventory)]
    for key, value in extra_vars.items():
        argv += ["-e", f"{key}={value}"]
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    env.pop("HOSTING_MIGRATION_LEDGER", None)
    started = time.monotonic()
    out = run(argv, env=env)
    wall = time.monotonic() - started
    (TOP / "bench/results").mkdir(exist_ok=True)
    (TOP / "bench/results/last-playbook.json").write_text(out)
    return wall, parse_report(out)


def parse_report(out):
    """The json callback's report among other callbacks' lines (hosting.migration.progress)."""
    start = 0 if out.startswith("{") else out.index("\n{") + 1
    return json.JSONDecoder().raw_decode(out, start)[0]


def controller_only_seconds(report):
    """Seconds of the tasks that run no module on any server (CONTROLLER_ACTIONS), plus the gaps
    between tasks; and the number of the other tasks (module runs)."""
    seconds, module_runs = 0.0, 0
    for play in report["plays"]:
        duration = play["play"]["duration"]
        seconds += _iso_seconds(duration["end"]) - _iso_seconds(duration["start"])
        for task in play["tasks"]:
            if all(result.get("action") in CONTROLLER_ACTIONS for result in task["hosts"].values()):
                continue
            seconds -= task_seconds(task)
            module_runs += len(task["hosts"])
    return seconds, module_runs


def task_results(report, task_name):
    """Results of every run of the task with this name, with its seconds: [(seconds, result)]."""
    found = []
    for play in report["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].split(" : ")[-1] == task_name:
                for result in task["hosts"].values():
                    found.append((task_seconds(task), result))
    return found


def task_seconds(task):
    duration = task["task"]["duration"]
    return _iso_seconds(duration["end"]) - _iso_seconds(duration["start"])


def _iso_seconds(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def row(measure, value, unit, note=""):
    return {"measure": measure, "value": value, "unit": unit, "note": note}
