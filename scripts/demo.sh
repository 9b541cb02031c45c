#!/usr/bin/env bash
# `npm run demo`: a local single-node swarm with the activator (as a Swarm service, as in
# production) and a sleeping sample app, then prints the URL that wakes it.
# Idempotent: run it again to redeploy. `npm run demo:down` removes everything.
set -euo pipefail
SA_LOG_PREFIX=demo
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SA_ROOT"

PORT="${DEMO_PORT:-18080}"
ADMIN_PORT="${DEMO_ADMIN_PORT:-18081}"
HOST="${DEMO_HOST:-demo.localhost}"

[[ -d node_modules ]] || { sa_log "npm ci"; npm ci --no-audit --no-fund; }
bash scripts/swarm-up.sh
# shellcheck disable=SC1090
source "$SA_ENV_FILE"
SOCK="${DOCKER_HOST#unix://}"

for svc in sa-demo-activator sa-demo-app; do
  if docker service inspect "$svc" >/dev/null 2>&1; then docker service rm "$svc" >/dev/null; sa_log "removed old $svc"; fi
done
# Host-mode ports are free only once the old task's container is gone.
for _ in $(seq 1 100); do
  [[ -z "$(docker ps -q --filter label=com.docker.swarm.service.name=sa-demo-activator)" ]] && break
  sleep 0.1
done

# The admin API's operator token: a Swarm secret, as in stack/activator.yml. Kept on the host
# (0600) so the commands printed below can use it; a new one on every run.
TOKEN_FILE="$SA_STATE_DIR/demo-admin-token"
docker secret rm sa-demo-admin-token >/dev/null 2>&1 || true
(umask 077; node -e "process.stdout.write(require('crypto').randomBytes(32).toString('hex'))" >"$TOKEN_FILE")
docker secret create --label sa.demo=1 sa-demo-admin-token "$TOKEN_FILE" >/dev/null

sa_log "starting the activator on 127.0.0.1:$PORT (admin :$ADMIN_PORT)"
docker service create --quiet --detach --no-resolve-image --name sa-demo-activator --label sa.demo=1 \
  --network "$SA_NETWORK" \
  --mount "type=bind,source=$SOCK,target=/var/run/docker.sock" --group "$(stat -c %g "$SOCK")" \
  --secret "source=sa-demo-admin-token,target=activator-admin-token,mode=0444" \
  --env "ACTIVATOR_ADMIN_TOKEN_FILE=/run/secrets/activator-admin-token" \
  --publish "mode=host,target=8080,published=$PORT" \
  --publish "mode=host,target=8081,published=$ADMIN_PORT" \
  --env "ACTIVATOR_NETWORK=$SA_NETWORK" \
  --env "ACTIVATOR_SELECTOR=sa.demo=1" \
  --env "ACTIVATOR_IDLE_TIMEOUT=2m" \
  --env "ACTIVATOR_MIN_AWAKE=30s" \
  swarm-activator:dev >/dev/null

sa_log "deploying the sample app asleep (0 replicas) for Host $HOST"
# Labelled as a real deployment would be: Traefik's router/service labels + the activator's.
docker service create --quiet --detach --no-resolve-image --name sa-demo-app --label sa.demo=1 \
  --network "$SA_NETWORK" --replicas 0 \
  --env STARTUP_DELAY_MS=1500 \
  --label "traefik.enable=true" \
  --label "traefik.http.routers.sa-demo-app-http.entrypoints=http" \
  --label "traefik.http.routers.sa-demo-app-http.rule=Host(\`$HOST\`)" \
  --label "traefik.http.services.sa-demo-app.loadbalancer.server.port=80" \
  --label "traefik.swarm.network=$SA_NETWORK" \
  --label "swarm-activator.enable=true" \
  --label "swarm-activator.strategy=waiting-page" \
  --label "swarm-activator.idle-timeout=2m" \
  sa/sample-app:dev >/dev/null

started=$(sa_now_ms)
AUTH=(-H "Authorization: Bearer $(cat "$TOKEN_FILE")")
for _ in $(seq 1 300); do
  if curl -fsS "${AUTH[@]}" "http://127.0.0.1:$ADMIN_PORT/api/apps" 2>/dev/null | grep -q '"sa-demo-app"'; then break; fi
  sleep 0.1
done
curl -fsS "${AUTH[@]}" "http://127.0.0.1:$ADMIN_PORT/api/apps" | grep -q '"sa-demo-app"' \
  || { docker service logs sa-demo-activator 2>&1 | tail -20; sa_die "the activator did not come up"; }
sa_log "activator ready in $(sa_since "$started"); sa-demo-app is asleep ($(docker service ls --filter name=sa-demo-app --format '{{.Replicas}}'))"

cat <<MSG

  The sample app is asleep. Wake it (the first request waits ~2 s, the next ones are instant):

    curl -H 'Host: $HOST' http://127.0.0.1:$PORT/

  In a browser, http://$HOST:$PORT/ shows a "waking up" page that reloads itself
  (*.localhost resolves to 127.0.0.1).

  The admin API needs the operator token (a Swarm secret; a copy is in $TOKEN_FILE):

    export SWARM_ACTIVATOR_TOKEN_FILE=$TOKEN_FILE
    curl -H "Authorization: Bearer \$(cat $TOKEN_FILE)" http://127.0.0.1:$ADMIN_PORT/api/apps

  The live dashboard: http://127.0.0.1:$ADMIN_PORT/ (log in with that token).

  Watch it:   docker service ls            (with: source $SA_ENV_FILE)
              node dist/cli/main.js ls --activator-url http://127.0.0.1:$ADMIN_PORT
              curl http://127.0.0.1:$ADMIN_PORT/metrics      (public: no metrics token set)
  It goes back to sleep after 2 minutes without traffic.
  Stop it:    npm run demo:down

MSG
