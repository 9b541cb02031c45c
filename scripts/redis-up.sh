#!/usr/bin/env bash
# Start a throwaway redis-server for tests (idempotent) and add REDIS_URL to $SA_STATE_DIR/env.
# No persistence; stopped by scripts/swarm-down.sh.
set -euo pipefail
SA_LOG_PREFIX=redis
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

sa_apt_ensure redis-server:redis-server redis-cli:redis-tools
mkdir -p "$SA_STATE_DIR"
port="$SA_REDIS_PORT"

if [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null || true)" == PONG ]]; then
  sa_log "redis already answering on 127.0.0.1:$port"
else
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$SA_STATE_DIR/redis.pid" --logfile "$SA_STATE_DIR/redis.log"
  for ((i = 0; ; i++)); do
    [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null || true)" == PONG ]] && break
    if ((i >= 100)); then
      echo "redis: ERROR: redis-server did not answer on 127.0.0.1:$port within 10s; last lines of $SA_STATE_DIR/redis.log:" >&2
      tail -n 20 "$SA_STATE_DIR/redis.log" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
  sa_log "redis-server started on 127.0.0.1:$port (pid $(cat "$SA_STATE_DIR/redis.pid" 2>/dev/null || echo '?'))"
fi

sa_env_set REDIS_URL "redis://127.0.0.1:$port"
sa_log "REDIS_URL=redis://127.0.0.1:$port written to $SA_ENV_FILE"
