#!/usr/bin/env bash
# make lab-up: servers first (created or started as needed), then their configuration, which is
# skipped when every server already carries the fingerprint of the same lab recipe and settings.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
playbook=$top/.venv/bin/ansible-playbook

fingerprint=$( (find roles plugins lab inventories/lab -type f -not -path '*/__pycache__/*' -print0 \
  | sort -z | xargs -0 sha256sum
  echo "accounts=${LAB_ACCOUNTS:-5} files=${LAB_FILES_MB:-4} db=${LAB_DB_MB:-2} dns_ttl=${LAB_DNS_TTL:-300}") | sha256sum | cut -c1-16)

"$playbook" lab/playbooks/servers.yml

converged=yes
for server in $("$top/.venv/bin/ansible-inventory" -i inventories/lab --list \
  | "$top/.venv/bin/python" -c 'import json,sys; print(" ".join(json.load(sys.stdin)["_meta"]["hostvars"]))'); do
  if [ "$(podman exec "$server" cat /etc/hosting/lab-converged 2>/dev/null)" != "$fingerprint" ]; then
    converged=no
  fi
done
if [ "$converged" = yes ]; then
  echo "lab-up: every server is configured from this recipe already (fingerprint $fingerprint)"
  exit 0
fi
"$playbook" lab/playbooks/configure.yml -e lab_fingerprint="$fingerprint"
