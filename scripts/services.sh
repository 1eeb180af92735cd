#!/usr/bin/env bash
# Install (Debian packages) what the test suite needs (PostgreSQL, Chromium + driver for the KB page test)
# and start throwaway servers on loopback:
#   PostgreSQL on 127.0.0.1:55432, Redis on 127.0.0.1:56379. Prints the environment to export.
# Usage: eval "$(bash scripts/services.sh)"
set -euo pipefail
log() { echo "$*" >&2; }
need=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]} (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${need[@]}" >&2
fi

PGBIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/postgres | sort -V | tail -1)")
PGDATA=${WARROOM_PGDATA:-/tmp/warroom-pg}
PGPORT=${WARROOM_PGPORT:-55432}
RUN_AS=()
if [ "$(id -u)" = 0 ]; then RUN_AS=(runuser -u postgres --); fi
if ! "${RUN_AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
  rm -rf "$PGDATA"; mkdir -p "$PGDATA"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGDATA"
  "${RUN_AS[@]}" "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust >/dev/null
  "${RUN_AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w \
    -o "-p $PGPORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >&2
fi
"${RUN_AS[@]}" "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -tc \
  "SELECT 1 FROM pg_database WHERE datname='warroom_test'" | grep -q 1 \
  || "${RUN_AS[@]}" "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres warroom_test
REDISPORT=${WARROOM_REDISPORT:-56379}
if ! redis-cli -p "$REDISPORT" ping >/dev/null 2>&1; then
  redis-server --port "$REDISPORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --logfile /tmp/warroom-redis.log >&2
  for _ in $(seq 50); do redis-cli -p "$REDISPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
echo "export WARROOM_TEST_REDIS_URL=redis://127.0.0.1:$REDISPORT/0"
echo "export WARROOM_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$PGPORT/warroom_test"
