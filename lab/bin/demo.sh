#!/usr/bin/env bash
# make demo: the lab up, then the required migration of dedicated1 (the main job), which ends by
# printing where its report is and a summary. A migration the lab's ledger shows under way or
# complete is continued (or only reported) as it is: the lab is not configured again over it.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
state=${HOSTING_LAB_STATE:-/var/lib/hosting-lab}
ledger=$state/ledger.sqlite3
server=dedicated1

phase=$("$top/.venv/bin/python" - "$ledger" "$server" <<'PY'
import sqlite3, sys, pathlib
path, server = sys.argv[1:]
if pathlib.Path(path).exists():
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            row = db.execute("SELECT phase FROM servers WHERE name = ?", (server,)).fetchone()
        print(row[0] if row and row[0] else "")
    except sqlite3.Error:
        print("")
PY
)

if [ "$phase" = complete ]; then
  echo "demo: the lab's ledger has the migration of $server complete: only its report is printed again"
  echo "demo: (to start over: make lab-down, then make demo)"
  "$top/.venv/bin/ansible-playbook" lab/playbooks/servers.yml
elif [ -n "$phase" ]; then
  echo "demo: the lab's ledger has $server in phase '$phase': the migration continues from there"
  echo "demo: (to start over: make lab-down, then make demo)"
  "$top/.venv/bin/ansible-playbook" lab/playbooks/servers.yml
else
  lab/bin/lab-up.sh
fi
exec "$top/.venv/bin/ansible-playbook" hosting.migration.required_migration -i inventories/lab -e migration_server="$server"
