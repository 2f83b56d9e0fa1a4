#!/bin/bash
# A private PostgreSQL server for the tests: its data and socket under a
# directory of its own, a free port, trust for the local socket only.
#
#   tests/pg.sh start DIR        start one in DIR (made if absent); prints the
#                                catalog's conninfo (database "vpool")
#   tests/pg.sh stop DIR         stop it and remove DIR
#   tests/pg.sh createdb DIR NAME  a new empty database; prints its conninfo
#   tests/pg.sh restart DIR      stop and start it again (every connection ends)
#   tests/pg.sh run CMD [ARG..]  start one in a temporary directory, run CMD
#                                with VPOOL_TEST_PG=its conninfo, stop it
#
# As root, the server runs as the postgres user (initdb refuses root).
set -euo pipefail

bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [ -x "$d/initdb" ] || { echo "pg.sh: PostgreSQL's initdb not found (scripts/deps.sh installs it)" >&2; exit 1; }
    echo "$d"
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

conninfo() {
    local dir=$1 db=$2
    echo "host=$dir/run port=$(cat "$dir/port") dbname=$db user=postgres"
}

start() {
    local dir=$1 bin port
    bin=$(bindir)
    mkdir -p "$dir/run"
    [ "$(id -u)" = 0 ] && chown -R postgres: "$dir"
    chmod 700 "$dir"
    port=$(free_port)
    echo "$port" >"$dir/port"
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    # Only the socket: nothing listens on the network.
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -s \
        -o "-k $dir/run -p $port -c listen_addresses='' -c fsync=on -c max_connections=200" start >&2 ||
        { cat "$dir/server.log" >&2; exit 1; }
    as_owner "$bin/createdb" -h "$dir/run" -p "$port" -U postgres vpool
    conninfo "$dir" vpool
}

stop() {
    local dir=$1 bin
    bin=$(bindir)
    [ -d "$dir/data" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -s stop >&2 || true
    rm -rf "$dir"
}

case "${1:-}" in
    start) start "$2" ;;
    stop) stop "$2" ;;
    restart)
        # Its log where start put it (without -l the server writes to our stderr).
        as_owner "$(bindir)/pg_ctl" -D "$2/data" -l "$2/server.log" -m fast -w -s restart >&2 ;;
    createdb)
        as_owner "$(bindir)/createdb" -h "$2/run" -p "$(cat "$2/port")" -U postgres "$3"
        conninfo "$2" "$3" ;;
    run)
        shift
        dir=$(mktemp -d /tmp/vpool-pg.XXXXXX)
        trap 'stop "$dir"' EXIT
        VPOOL_TEST_PG=$(start "$dir")
        export VPOOL_TEST_PG VPOOL_TEST_PG_DIR=$dir
        "$@" ;;
    *) echo "usage: tests/pg.sh start DIR | stop DIR | restart DIR | createdb DIR NAME | run CMD [ARG...]" >&2; exit 2 ;;
esac
