#!/usr/bin/env bash
# Serve the lab's provider package repository (lab/repo/build.sh) read-only over HTTP to the lab
# servers: python3 -m http.server on the lab network's gateway address of the host, never on all
# addresses. The lab servers reach it as http://GATEWAY:PORT/ (suite provider).
#
#   serve.sh start|stop|status [--bind ADDR] [--port N]
#
# A pidfile and a log in $HOSTING_LAB_STATE/repo; start and stop are idempotent.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
state=${HOSTING_LAB_STATE:-/var/lib/hosting-lab}
root=$state/repo
published=$root/provider
pidfile=$root/serve.pid
log=$root/serve.log

fail() { echo "provider repo server: $*" >&2; exit 1; }
usage() { echo "usage: serve.sh start|stop|status [--bind ADDR] [--port N]" >&2; exit 2; }

# The gateway of the lab network, where the servers find the host (inventories/lab).
lab_gateway() {
  awk '$1 == "ipv4_gateway:" { print $2; exit }' "$top/inventories/lab/group_vars/all/lab.yml" 2>/dev/null
}

action=${1:-}
[ -n "$action" ] || usage
shift
bind=
port=8080
while [ $# -gt 0 ]; do
  case $1 in
    --bind) bind=${2:?--bind needs an address}; shift 2 ;;
    --port) port=${2:?--port needs a number}; shift 2 ;;
    *) usage ;;
  esac
done
[ -n "$bind" ] || bind=$(lab_gateway)
[ -n "$bind" ] || fail "no --bind given and no ipv4_gateway found in inventories/lab/group_vars/all/lab.yml."
case $bind in
  0.0.0.0 | :: | '*') fail "refusing to serve on all addresses ($bind): the repository is for the lab network only." ;;
esac
[[ $port =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || fail "--port must be a number from 1 to 65535 (got $port)."

running_pid() {
  local pid
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  # The pid must still be our server, not a recycled number.
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-m http.server" || return 1
  echo "$pid"
}

served_address() {
  tr '\0' '\n' < "/proc/$1/cmdline" | awk 'prev == "--bind" { b = $0 } { if ($0 ~ /^[0-9]+$/) p = $0; prev = $0 } END { print b ":" p }'
}

case $action in
  start)
    if pid=$(running_pid); then
      echo "provider repo server: already running (pid $pid, http://$(served_address "$pid")/)"
      exit 0
    fi
    [ -e "$published/dists/provider/InRelease" ] || fail "no repository in $published; build it first (lab/repo/build.sh)."
    mkdir -p "$root"
    # The published path is a symlink replaced atomically by a rebuild; serving the link's
    # directory by name picks up a rebuild without a restart.
    nohup python3 -m http.server --bind "$bind" --directory "$published" "$port" >> "$log" 2>&1 < /dev/null &
    pid=$!
    echo "$pid" > "$pidfile"
    for _ in $(seq 50); do
      if ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$pidfile"
        fail "the server exited at once: $(tail -1 "$log")"
      fi
      if python3 - "$bind" "$port" <<'EOF' 2>/dev/null; then
import socket, sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.2).close()
EOF
        echo "provider repo server: serving $published on http://$bind:$port/ (pid $pid, log $log)"
        exit 0
      fi
      sleep 0.1
    done
    fail "the server (pid $pid) does not answer on $bind:$port after 5 s; see $log."
    ;;
  stop)
    if pid=$(running_pid); then
      kill "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      rm -f "$pidfile"
      echo "provider repo server: stopped (pid $pid)"
    else
      rm -f "$pidfile"
      echo "provider repo server: not running"
    fi
    ;;
  status)
    if pid=$(running_pid); then
      echo "provider repo server: running (pid $pid, http://$(served_address "$pid")/, serving $published)"
    else
      echo "provider repo server: not running"
      exit 3
    fi
    ;;
  *) usage ;;
esac
