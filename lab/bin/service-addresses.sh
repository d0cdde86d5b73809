#!/usr/bin/env bash
# Put a customer server's service addresses on its interface, unless a lab server already holds
# them (after a reroute they live on the transit server, and stay there).
set -euo pipefail
server=$1 v4_subnet=$2 v6_subnet=$3
read -r -a addresses <<< "$4"
held=$(for c in $(podman ps --filter label=hosting.lab --format '{{.Names}}'); do
  podman exec "$c" ip -o addr show dev eth0 2>/dev/null; done)
for address in "${addresses[@]}"; do
  if grep -qE "inet6? ${address}/" <<< "$held"; then
    continue
  fi
  if [[ $address == *:* ]]; then
    podman exec "$server" ip addr add "$address/${v6_subnet#*/}" dev eth0 nodad
    podman exec "$server" ip -6 neigh flush dev eth0 || true
  else
    podman exec "$server" ip addr add "$address/${v4_subnet#*/}" dev eth0
    podman exec "$server" arping -q -U -c 2 -I eth0 "$address" || true
  fi
  echo "added $address on $server"
done
