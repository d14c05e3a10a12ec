#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the store contract tests: installs Debian's `postgresql` when
# it is missing, creates a cluster in a temporary directory owned by an unprivileged user (the
# package's `postgres` when run as root, else the current user), starts it on 127.0.0.1 on a free
# port with fsync on, creates a database and exports VPCEP_TEST_POSTGRES_URL. The cluster is
# stopped and removed when the shell exits.
#
#   source scripts/postgres.sh      # in a script; call vpcep_postgres_stop from its EXIT trap
#   scripts/postgres.sh CMD ARGS…   # runs CMD with the cluster up, then stops it
set -euo pipefail

vpcep_postgres_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  return 1
}

if ! vpcep_postgres_bin >/dev/null; then
  echo "postgres: installing postgresql" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
vpcep_postgres_bindir=$(vpcep_postgres_bin)

# PostgreSQL refuses to run as root.
if [ "$(id -u)" -eq 0 ]; then
  vpcep_postgres_user=postgres
  vpcep_postgres_as() { runuser -u postgres -- "$@"; }
else
  vpcep_postgres_user=$(id -un)
  vpcep_postgres_as() { "$@"; }
fi

vpcep_postgres_dir=$(mktemp -d "${TMPDIR:-/tmp}/vpcep-postgres.XXXXXX")
chmod 700 "$vpcep_postgres_dir"
[ "$(id -u)" -ne 0 ] || chown "$vpcep_postgres_user" "$vpcep_postgres_dir"

vpcep_postgres_stop() {
  if [ -n "${vpcep_postgres_dir:-}" ] && [ -d "$vpcep_postgres_dir" ]; then
    vpcep_postgres_as "$vpcep_postgres_bindir/pg_ctl" -D "$vpcep_postgres_dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$vpcep_postgres_dir"
  fi
}

# A port nothing listens on now; the cluster takes it a moment later (a race that only costs a retry).
vpcep_postgres_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

vpcep_postgres_as "$vpcep_postgres_bindir/initdb" -D "$vpcep_postgres_dir/data" -U "$vpcep_postgres_user" \
  --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$vpcep_postgres_dir/initdb.log" 2>&1 \
  || { cat "$vpcep_postgres_dir/initdb.log" >&2; vpcep_postgres_stop; exit 1; }
# max_connections covers parallel test cases, each with its own small pool.
if ! vpcep_postgres_as "$vpcep_postgres_bindir/pg_ctl" -D "$vpcep_postgres_dir/data" -w -l "$vpcep_postgres_dir/server.log" \
  -o "-c listen_addresses=127.0.0.1 -p $vpcep_postgres_port -k $vpcep_postgres_dir -c fsync=on -c max_connections=300" \
  start >/dev/null; then
  cat "$vpcep_postgres_dir/server.log" >&2
  vpcep_postgres_stop
  exit 1
fi
vpcep_postgres_as "$vpcep_postgres_bindir/createdb" -h 127.0.0.1 -p "$vpcep_postgres_port" -U "$vpcep_postgres_user" vpcep_test
export VPCEP_TEST_POSTGRES_URL="postgres://$vpcep_postgres_user@127.0.0.1:$vpcep_postgres_port/vpcep_test"
# For tests that stop and start PostgreSQL: they make a cluster of their own with these.
export VPCEP_TEST_POSTGRES_BIN="$vpcep_postgres_bindir" VPCEP_TEST_POSTGRES_OS_USER="$vpcep_postgres_user"
echo "postgres: throwaway cluster at $VPCEP_TEST_POSTGRES_URL" >&2

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  trap vpcep_postgres_stop EXIT
  if [ $# -gt 0 ]; then "$@"; fi
fi
