#!/usr/bin/env bash
# Tear down what swarm-up.sh / redis-up.sh made. Safe to run twice or when nothing is up.
#  - our own dockerd (DOCKER_HOST unset or our socket): remove services and containers, leave the
#    swarm, stop dockerd (TERM, then KILL), kill leftover shims of our exec-root, unmount whatever
#    is still mounted under $SA_STATE_DIR, and delete $SA_STATE_DIR.
#  - external engine (DOCKER_HOST given): remove only services/networks/configs/secrets labelled
#    sa.test=1 or sa.demo=1, and $SA_NETWORK if the scripts created it; leave the engine alone.
#  - both: stop the redis-server started by redis-up.sh, and the three-node swarm of multinode-up.sh.
set -euo pipefail
SA_LOG_PREFIX=swarm-down
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

t0=$(sa_now_ms)
# The three-node swarm of multinode-up.sh lives under $SA_STATE_DIR too: it goes first.
bash "$(dirname "${BASH_SOURCE[0]}")/multinode-down.sh"
sa_lock "$SA_STATE_DIR.lock"
did=0

# swarm-up.sh ran against an external engine but DOCKER_HOST is not set now: go back to that engine.
if [[ "$SA_EXTERNAL_ENGINE" == 0 && -f "$SA_STATE_DIR/engine" ]]; then
  read -r kind host <"$SA_STATE_DIR/engine" || true
  if [[ "${kind:-}" == external && -n "${host:-}" ]]; then
    export DOCKER_HOST="$host"
    SA_EXTERNAL_ENGINE=1
  fi
fi

stop_redis() {
  local pidfile="$SA_STATE_DIR/redis.pid" pid
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  [[ -n "$pid" ]] || return 0
  if kill -0 "$pid" 2>/dev/null && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == redis-server* ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    sa_wait_gone "$pid" 10 || { kill -KILL "$pid" 2>/dev/null || true; sa_wait_gone "$pid" 5 || true; }
    sa_log "redis-server (pid $pid) stopped"
    did=1
  fi
  rm -f "$pidfile"
}

# Host routes swarm-up.sh blackholed (the swarm's overlay subnets).
remove_blackholes() {
  [[ -f "$SA_STATE_DIR/blackholes" ]] || return 0
  local subnet
  while read -r subnet; do
    [[ -n "$subnet" ]] && { sa_root ip route del blackhole "$subnet" 2>/dev/null || true; }
  done <"$SA_STATE_DIR/blackholes"
  rm -f "$SA_STATE_DIR/blackholes"
  sa_log "removed the host blackhole routes"
}

# Remove services (by filter), wait for their containers, then networks/configs/secrets by label.
remove_labelled() {
  local label ids
  for label in sa.test=1 sa.demo=1; do
    ids="$(docker service ls -q --filter "label=$label" 2>/dev/null || true)"
    if [[ -n "$ids" ]]; then
      # shellcheck disable=SC2086
      docker service rm $ids >/dev/null 2>&1 || true
      sa_log "removed $(wc -w <<<"$ids") service(s) labelled $label"
      did=1
    fi
  done
}

remove_networks() {
  local nets=() label id i
  for label in sa.test=1 sa.demo=1; do
    while read -r id; do [[ -n "$id" ]] && nets+=("$id"); done \
      < <(docker network ls -q --filter "label=$label" 2>/dev/null || true)
  done
  # $SA_NETWORK only if swarm-up.sh created it (a network the user made beforehand stays).
  if [[ "$(docker network inspect -f '{{index .Labels "sa.managed-by"}}' "$SA_NETWORK" 2>/dev/null)" == scripts ]]; then
    nets+=("$SA_NETWORK")
  fi
  [[ ${#nets[@]} -gt 0 ]] || return 0
  # Networks can only go once the removed services' task containers are gone (bounded wait).
  for ((i = 0; i < 60; i++)); do
    local left=()
    for id in "${nets[@]}"; do
      docker network inspect "$id" >/dev/null 2>&1 || continue
      docker network rm "$id" >/dev/null 2>&1 || left+=("$id")
    done
    if [[ ${#left[@]} -eq 0 ]]; then
      sa_log "removed ${#nets[@]} network(s) (labelled sa.test/sa.demo, or $SA_NETWORK made by the scripts)"
      did=1
      return 0
    fi
    nets=("${left[@]}")
    sleep 0.5
  done
  sa_log "WARNING: could not remove network(s) ${nets[*]} (still in use?)"
}

remove_configs_secrets() {
  local kind label ids
  for kind in config secret; do
    for label in sa.test=1 sa.demo=1; do
      ids="$(docker "$kind" ls -q --filter "label=$label" 2>/dev/null || true)"
      # shellcheck disable=SC2086
      [[ -n "$ids" ]] && { docker "$kind" rm $ids >/dev/null 2>&1 || true; sa_log "removed ${kind}s labelled $label"; did=1; }
    done
  done
  return 0
}

if [[ "$SA_EXTERNAL_ENGINE" == 1 ]]; then
  # ---- external engine: only our labelled objects ----
  if sa_docker_ok; then
    remove_labelled
    remove_networks
    remove_configs_secrets
  else
    sa_log "external engine at $DOCKER_HOST not answering; nothing to remove there"
  fi
  stop_redis
  remove_blackholes
else
  remove_blackholes
  # ---- our own dockerd ----
  if sa_docker_ok; then
    # Fast path: drop services and containers first so dockerd does not wait out stop timeouts.
    ids="$(docker service ls -q 2>/dev/null || true)"
    # shellcheck disable=SC2086
    [[ -n "$ids" ]] && { docker service rm $ids >/dev/null 2>&1 || true; sa_log "removed $(wc -w <<<"$ids") service(s)"; }
    ids="$(docker ps -aq 2>/dev/null || true)"
    # shellcheck disable=SC2086
    [[ -n "$ids" ]] && { docker rm -f $ids >/dev/null 2>&1 || true; sa_log "removed $(wc -w <<<"$ids") container(s)"; }
    if [[ "$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)" != inactive ]]; then
      docker swarm leave --force >/dev/null 2>&1 || true
      sa_log "left the swarm"
    fi
    # docker_gwbridge is a host bridge our engine made for the swarm; remove it through the engine.
    docker network rm docker_gwbridge >/dev/null 2>&1 && sa_log "removed docker_gwbridge" || true
    did=1
  fi
  sa_stop_engine dockerd "$SA_STATE_DIR" && did=1
  stop_redis
fi

# Anything still mounted under the state dir (netns files, overlay layers, shm): lazy unmount, deepest first.
if [[ -d "$SA_STATE_DIR" ]]; then
  unmounted="$(sa_unmount_under "$SA_STATE_DIR")"
  [[ "$unmounted" == 0 ]] || sa_log "unmounted $unmounted leftover mount(s) under $SA_STATE_DIR"
  rm -rf --one-file-system "$SA_STATE_DIR"
  sa_log "removed $SA_STATE_DIR"
  did=1
fi

if [[ $did == 1 ]]; then
  sa_log "done in $(sa_since "$t0")"
else
  sa_log "nothing was up"
fi
