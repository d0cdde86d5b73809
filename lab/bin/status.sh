#!/usr/bin/env bash
# make lab-status: images, network, servers (with their addresses and versions), prober.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
state=${HOSTING_LAB_STATE:-/var/lib/hosting-lab}
python=${LAB_PYTHON:-$here/../../.venv/bin/python}
command -v podman > /dev/null || { echo "podman is not installed: run make lab-up"; exit 0; }

echo "== images"
podman images --filter reference=localhost/hosting-lab --format '{{.Repository}}:{{.Tag}}  {{.Size}}  recipe {{index .Labels "hosting.lab.recipe"}}'
echo "== network"
podman network inspect hostinglab --format '{{.Name}}  internal={{.Internal}}  {{range .Subnets}}{{.Subnet}} {{end}}' 2>/dev/null || echo "hostinglab: absent"
echo "== servers"
for name in $(podman ps --all --filter label=hosting.lab --format '{{.Names}}' | sort); do
  status=$(podman inspect --format '{{.State.Status}}' "$name")
  if [ "$status" = running ]; then
    version=$(podman exec "$name" cat /etc/hosting/infrastructure-version 2>/dev/null || echo "?")
    addresses=$(podman exec "$name" ip -o addr show dev eth0 scope global | awk '{print $4}' | tr '\n' ' ')
    echo "$name  running  infrastructure $version  $addresses"
  else
    echo "$name  $status"
  fi
done
echo "== forwarding  ipv4=$(sysctl -n net.ipv4.ip_forward) ipv6=$(sysctl -n net.ipv6.conf.all.forwarding)"
echo "== prober"
"$python" "$here/../prober/prober.py" status 2>/dev/null || echo "prober: not available"
[ -f "$state/accounts.json" ] && echo "== accounts: $("$python" -c 'import json,sys; print(" ".join(a["name"] for a in json.load(open(sys.argv[1]))["accounts"]))' "$state/accounts.json")"
exit 0
