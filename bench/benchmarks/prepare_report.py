"""Controller time of the preparation report, per account of the lab's customer server."""
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import lablib  # noqa: E402


def run():
    setup = lablib.ensure_lab()
    accounts = lablib.DEFAULT["accounts"]
    started = time.monotonic()
    lablib.run([lablib.PLAYBOOK, "hosting.migration.prepare", "-i", "inventories/lab"])
    elapsed = time.monotonic() - started
    return [
        lablib.row("lab set-up", round(setup), "s", "the default lab, when it was not"),
        lablib.row("whole playbook", round(elapsed, 2), "s", f"{accounts} accounts"),
        lablib.row("per account", round(elapsed / accounts, 3), "s", "includes Ansible start-up"),
    ]
