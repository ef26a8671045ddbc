#!/usr/bin/env bash
# A local PostgreSQL for the PostgreSQL-backed integration tests and `bench_sync.py --backend postgres`.
#
# Idempotent; run as root (Debian/Ubuntu):   sudo bash scripts/pg_test_cluster.sh
#   - installs the Debian `postgresql` package when it is missing (apt-get update first);
#   - creates a cluster if there is none, makes it listen on 127.0.0.1 only (conf.d/reviewdesk-test.conf);
#   - starts it as the packaged `postgres` service user (pg_ctlcluster; PostgreSQL refuses to run as root);
#   - creates the test role (LOGIN CREATEDB, password) when missing, resets its password otherwise;
#   - waits until the role can log in over TCP on 127.0.0.1.
# Settings (same variables the tests read): RD_PG_PORT (5432), RD_PG_USER (reviewdesk_test),
# RD_PG_PASSWORD (reviewdesk_test). The tests create and drop their own databases through that role.
set -euo pipefail

PORT="${RD_PG_PORT:-5432}"
ROLE="${RD_PG_USER:-reviewdesk_test}"
PASSWORD="${RD_PG_PASSWORD:-reviewdesk_test}"
CLUSTER="${RD_PG_CLUSTER:-main}"

say() { echo "[pg_test_cluster] $*"; }
die() { echo "[pg_test_cluster] ERROR: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (sudo bash $0): it installs packages and starts the cluster as the postgres user"
[[ "$ROLE" =~ ^[a-z_][a-z0-9_]*$ ]] || die "RD_PG_USER must be a plain lower-case identifier, got '$ROLE'"

# 1. the package -----------------------------------------------------------------------------------------------
if ! dpkg -s postgresql >/dev/null 2>&1 || ! command -v pg_ctlcluster >/dev/null 2>&1; then
  say "installing the Debian postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi

# 2. the cluster (the newest installed major version) ---------------------------------------------------------------
VERSION="${RD_PG_VERSION:-$(ls /usr/lib/postgresql | sort -n | tail -1)}"
[ -x "/usr/lib/postgresql/$VERSION/bin/postgres" ] || die "no PostgreSQL server binaries for version '$VERSION'"
if ! pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c {f=1} END {exit !f}'; then
  say "creating cluster $VERSION/$CLUSTER on port $PORT"
  pg_createcluster --port "$PORT" "$VERSION" "$CLUSTER" >/dev/null
fi
CONF_DIR="/etc/postgresql/$VERSION/$CLUSTER"
grep -Eq "^[[:space:]]*include_dir[[:space:]]*=[[:space:]]*'conf.d'" "$CONF_DIR/postgresql.conf" \
  || die "$CONF_DIR/postgresql.conf does not include conf.d; set listen_addresses='127.0.0.1' and port=$PORT there yourself"

# loopback only, our port; written only when different so a re-run does not restart a running cluster
WANT="# written by reviewdesk scripts/pg_test_cluster.sh: loopback only
listen_addresses = '127.0.0.1'
port = $PORT
"
DROPIN="$CONF_DIR/conf.d/reviewdesk-test.conf"
changed=0
if [ ! -f "$DROPIN" ] || [ "$(cat "$DROPIN")" != "$(printf '%s' "$WANT")" ]; then
  printf '%s' "$WANT" > "$DROPIN"
  chown postgres:postgres "$DROPIN"
  changed=1
fi

# 3. running, as the postgres service user ---------------------------------------------------------------------------
status="$(pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c {print $4}')"
if [ "$status" = "online" ] && [ "$changed" = 1 ]; then
  say "restarting $VERSION/$CLUSTER (listen address or port changed)"
  pg_ctlcluster "$VERSION" "$CLUSTER" restart
elif [ "$status" != "online" ]; then
  say "starting $VERSION/$CLUSTER"
  pg_ctlcluster "$VERSION" "$CLUSTER" start
fi

for _ in $(seq 1 60); do
  pg_isready -q -h 127.0.0.1 -p "$PORT" && break
  sleep 1
done
pg_isready -q -h 127.0.0.1 -p "$PORT" || die "the cluster does not accept connections on 127.0.0.1:$PORT (see /var/log/postgresql/)"

# 4. the test role (password through a psql variable: quoted by psql, never in argv) ---------------------------------
as_pg() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" -d postgres "$@"; }
exists="$(as_pg -tA -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")"
if [ "$exists" != "1" ]; then
  say "creating role $ROLE (LOGIN CREATEDB)"
  as_pg -v role="$ROLE" -v pw="$PASSWORD" <<'SQL'
CREATE ROLE :"role" LOGIN CREATEDB PASSWORD :'pw';
SQL
else
  as_pg -v role="$ROLE" -v pw="$PASSWORD" <<'SQL'
ALTER ROLE :"role" LOGIN CREATEDB PASSWORD :'pw';
SQL
fi

# 5. the role logs in over TCP; nothing listens beyond loopback --------------------------------------------------------
for _ in $(seq 1 30); do
  PGPASSWORD="$PASSWORD" psql -X -q -h 127.0.0.1 -p "$PORT" -U "$ROLE" -d postgres -tAc 'SELECT 1' >/dev/null 2>&1 && break
  sleep 1
done
PGPASSWORD="$PASSWORD" psql -X -q -h 127.0.0.1 -p "$PORT" -U "$ROLE" -d postgres -tAc 'SELECT 1' >/dev/null \
  || die "role $ROLE cannot log in on 127.0.0.1:$PORT"
listen="$(as_pg -tA -c 'SHOW listen_addresses')"
case "$listen" in
  127.0.0.1|localhost) ;;
  *) die "listen_addresses is '$listen', expected loopback only (another conf.d file overrides $DROPIN?)" ;;
esac
say "ready: PostgreSQL $VERSION on 127.0.0.1:$PORT (listen_addresses=$listen), role $ROLE"
