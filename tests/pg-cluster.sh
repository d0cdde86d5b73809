#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1 for the unit tests of the state store:
#   tests/pg-cluster.sh start DIR PORT   prints the DSN
#   tests/pg-cluster.sh stop DIR
# Debian's postgresql package provides the binaries; nothing listens beyond loopback.
set -euo pipefail
action=$1 dir=$2
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
case $action in
  start)
    port=${3:-55432}
    rm -rf "$dir" && mkdir -p "$dir" && chown postgres: "$dir"
    runuser -u postgres -- "$bin/initdb" -D "$dir/data" -A trust -U postgres > "$dir/initdb.log" 2>&1
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir" start > /dev/null
    runuser -u postgres -- "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres ledger_test
    echo "postgresql://postgres@127.0.0.1:$port/ledger_test"
    ;;
  stop)
    [ -d "$dir/data" ] && runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m fast -w stop > /dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
esac
