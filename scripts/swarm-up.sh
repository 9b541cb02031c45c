#!/usr/bin/env bash
# Bring up a single-node Docker swarm for tests and the demo (idempotent).
#  - starts a private dockerd under $SA_STATE_DIR (unless DOCKER_HOST points at another engine)
#  - swarm init, attachable overlay network $SA_NETWORK
#  - builds the local images (scripts/build-images.sh)
#  - writes $SA_STATE_DIR/env (source it to get DOCKER_HOST and SA_NETWORK)
set -euo pipefail
SA_LOG_PREFIX=swarm
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

t0=$(sa_now_ms)
sa_lock "$SA_STATE_DIR.lock"
mkdir -p "$SA_STATE_DIR"

start_dockerd() {
  sa_apt_ensure dockerd:docker.io
  command -v docker >/dev/null || sa_apt_ensure docker:docker.io

  local pidfile="$SA_STATE_DIR/docker.pid" log="$SA_STATE_DIR/dockerd.log" pid
  # A dockerd of ours that is alive but not answering (yet): wait for it rather than start another.
  pid="$(cat "$pidfile" 2>/dev/null || cat "$SA_STATE_DIR/dockerd.started" 2>/dev/null || true)"
  local cmdline=""
  [[ -n "$pid" ]] && cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  if [[ "$cmdline" == *"--host $SA_OWN_DOCKER_HOST"* ]]; then
    sa_log "dockerd (pid $pid) running but not answering yet; waiting"
  else
    rm -f "$pidfile" "$SA_SOCK"
    mkdir -p "$SA_STATE_DIR/data" "$SA_STATE_DIR/exec"
    # sa_close_fds: don't hand our lock fd (or a caller's) to the daemon.
    (sa_close_fds; DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 exec setsid nohup dockerd \
      --data-root "$SA_STATE_DIR/data" \
      --exec-root "$SA_STATE_DIR/exec" \
      --host "$SA_OWN_DOCKER_HOST" \
      --pidfile "$pidfile") >"$log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$SA_STATE_DIR/dockerd.started"
    sa_log "started dockerd (pid $pid), log $log"
  fi

  sa_wait_engine dockerd "$DOCKER_HOST" "$log" "$pid" "${SA_DOCKERD_TIMEOUT:-30}"
  sa_log "dockerd answering at $DOCKER_HOST after $(sa_since "$t0")"
}

if [[ "$SA_EXTERNAL_ENGINE" == 1 ]]; then
  command -v docker >/dev/null || sa_apt_ensure docker:docker.io
  sa_docker_ok || sa_die "DOCKER_HOST=$DOCKER_HOST was given but no engine answers there"
  sa_log "using external engine at $DOCKER_HOST (not starting dockerd)"
  echo "external $DOCKER_HOST" >"$SA_STATE_DIR/engine"
elif sa_docker_ok; then
  sa_log "dockerd already running at $DOCKER_HOST"
else
  start_dockerd
fi

# --- swarm ---------------------------------------------------------------------------------------
state="$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}')"
case "$state" in
  "active true") sa_log "swarm already initialised (this node is a manager)" ;;
  "active false") sa_die "engine at $DOCKER_HOST is a swarm worker, not a manager" ;;
  inactive*)
    # Overlay subnets from a pool of our own, so the host can blackhole exactly that range below.
    docker swarm init --advertise-addr 127.0.0.1 --default-addr-pool "$SA_ADDR_POOL" >/dev/null
    sa_log "swarm initialised (advertise 127.0.0.1, overlay pool $SA_ADDR_POOL)"
    ;;
  *) sa_die "unexpected swarm state '$state' on $DOCKER_HOST (locked or pending?)" ;;
esac

# --- network -------------------------------------------------------------------------------------
if net="$(docker network inspect --format '{{.Driver}} {{.Attachable}}' "$SA_NETWORK" 2>/dev/null)"; then
  [[ "$net" == "overlay true" ]] || sa_die "network $SA_NETWORK exists but is '$net', expected an attachable overlay"
  sa_log "network $SA_NETWORK already exists"
else
  docker network create --driver overlay --attachable --label sa.managed-by=scripts "$SA_NETWORK" >/dev/null
  sa_log "network $SA_NETWORK created (overlay, attachable)"
fi

# --- traffic guard -------------------------------------------------------------------------------
# Overlay task addresses exist only inside the swarm's network namespaces. From the host, such an
# address would go out of the default route to some other machine: blackhole the swarm's subnets
# on the host so that a stray host-side request can never leave this machine.
guard_subnets=("$SA_ADDR_POOL")
mapfile -t -O 1 guard_subnets < <(docker network ls --filter scope=swarm -q | xargs -r docker network inspect --format '{{range .IPAM.Config}}{{.Subnet}} {{end}}' | tr ' ' '\n' | grep -E '^[0-9.]+/[0-9]+$' || true)
for subnet in "${guard_subnets[@]}"; do
  if sa_root ip route replace blackhole "$subnet" 2>/dev/null; then
    grep -qx "$subnet" "$SA_STATE_DIR/blackholes" 2>/dev/null || echo "$subnet" >>"$SA_STATE_DIR/blackholes"
  else
    sa_log "warning: could not blackhole $subnet on the host (ip route); host-side requests to task IPs would leave the machine"
  fi
done
sa_log "host routes for the swarm's overlay subnets blackholed: $(sort -u "$SA_STATE_DIR/blackholes" 2>/dev/null | tr '\n' ' ')"

sa_write_env
sa_log "env written to $SA_ENV_FILE"

# --- images --------------------------------------------------------------------------------------
bash "$SA_ROOT/scripts/build-images.sh"

sa_log "up in $(sa_since "$t0") — source $SA_ENV_FILE"
