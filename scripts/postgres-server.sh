#!/usr/bin/env bash
# A private, throwaway PostgreSQL server for tests, benchmarks and trying
# capstan's postgres slot store by hand. Debian's `postgresql` package
# provides the binaries; nothing of the system's own cluster is touched.
#
#   scripts/postgres-server.sh start DIR [PORT]   initdb DIR (once), start on 127.0.0.1:PORT
#                                                 (a free port if omitted), print the URL
#   scripts/postgres-server.sh stop DIR           stop it (fast shutdown), keep the data
#   scripts/postgres-server.sh url DIR            print the URL again
#
# The server listens on 127.0.0.1 only, where it asks for a password (SCRAM;
# user `capstan`, a random password kept in DIR/password and printed in the
# URL), and on a unix socket inside DIR, which it trusts. It is for tests,
# never for data you care about. Run as root, the server runs as the
# `postgres` user (PostgreSQL refuses root) and DIR is handed to it. Remove
# DIR after `stop` to throw everything away.
set -euo pipefail

die() { printf 'postgres-server: %s\n' "$*" >&2; exit 1; }

find_bindir() {
  if [[ -n "${PG_BINDIR:-}" ]]; then printf '%s\n' "$PG_BINDIR"; return; fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]] && { printf '%s\n' "$d"; return; }
  done
  command -v pg_ctl >/dev/null 2>&1 && { dirname "$(command -v pg_ctl)"; return; }
  die "PostgreSQL server binaries not found (apt-get install postgresql, or set PG_BINDIR)"
}

# Runs a command as the user that owns the cluster.
as_owner() {
  if [[ $EUID -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' user to run the server"
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

cmd="${1:-}"; dir="${2:-}"
[[ -n "$cmd" && -n "$dir" ]] || die "usage: $0 start|stop|url DIR [PORT]"
dir="$(realpath -m "$dir")"
data="$dir/data"

url() { printf 'postgres://capstan:%s@127.0.0.1:%s/capstan\n' "$(cat "$dir/password")" "$(cat "$dir/port")"; }

case "$cmd" in
  start)
    bindir="$(find_bindir)"
    mkdir -p "$dir"
    if [[ $EUID -eq 0 ]]; then chown postgres: "$dir"; fi
    chmod 0700 "$dir"
    if [[ $EUID -eq 0 ]] && ! runuser -u postgres -- test -w "$dir"; then
      die "$dir is not reachable by the postgres user (a parent directory is private?); use a directory like /tmp/NAME"
    fi
    if [[ -n "${3:-}" ]]; then printf '%s\n' "$3" >"$dir/port.tmp"; mv "$dir/port.tmp" "$dir/port"
    elif [[ ! -f "$dir/port" ]]; then free_port >"$dir/port"; fi
    port="$(cat "$dir/port")"
    if [[ ! -f "$data/PG_VERSION" ]]; then
      # URL-safe, so it can go into the URL as it is.
      (umask 077; od -An -N18 -tx1 /dev/urandom | tr -d ' \n' >"$dir/password")
      if [[ $EUID -eq 0 ]]; then chown postgres: "$dir/password"; fi
      as_owner "$bindir/initdb" -D "$data" -U capstan --pwfile="$dir/password" --auth-local=trust --auth-host=scram-sha-256 \
        -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
      cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 200
fsync = on
CONF
    fi
    # -w waits until it accepts connections; the log stays in DIR for post-mortems.
    as_owner "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -o "-p $port" -w -t 60 start >/dev/null \
      || { tail -n 30 "$dir/server.log" >&2 || true; die "the server did not start"; }
    if ! as_owner "$bindir/psql" -h "$dir" -p "$port" -U capstan -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'capstan'" | grep -q 1; then
      as_owner "$bindir/createdb" -h "$dir" -p "$port" -U capstan capstan
    fi
    url
    ;;
  stop)
    bindir="$(find_bindir)"
    if [[ -f "$data/postmaster.pid" ]]; then
      as_owner "$bindir/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
    fi
    ;;
  url)
    url
    ;;
  *)
    die "unknown command $cmd (start, stop or url)"
    ;;
esac
