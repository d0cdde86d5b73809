"""Controller time of the preparation report, per account of the lab's customer server."""
import json
import os
import pathlib
import subprocess
import time

TOP = pathlib.Path(__file__).resolve().parents[2]


def run():
    state = pathlib.Path(os.environ.get("HOSTING_LAB_STATE", "/var/lib/hosting-lab"))
    accounts = len(json.loads((state / "accounts.json").read_text())["accounts"])
    started = time.monotonic()
    subprocess.run([str(TOP / ".venv/bin/ansible-playbook"), "hosting.migration.prepare", "-i", "inventories/lab"],
                   cwd=TOP, check=True, capture_output=True)
    elapsed = time.monotonic() - started
    return [
        {"measure": "whole playbook", "value": round(elapsed, 2), "unit": "s", "note": f"{accounts} accounts"},
        {"measure": "per account", "value": round(elapsed / accounts, 3), "unit": "s", "note": "includes Ansible start-up"},
    ]
