#!/usr/bin/env bash
# A three-node swarm on this one machine, for cross-node and node-loss tests (idempotent).
#  - one network namespace per node (sa-mn1..3) with a veth into a bridge of our own (sa-mn-br,
#    10.214.0.0/24: bridge .1, nodes .11 .12 .13), the bridge allowed through the host's FORWARD
#  - a dockerd in each namespace (nsenter, its own data-root, exec-root, socket and pidfile)
#  - node 1 inits (overlay pool 10.215.0.0/16, blackholed on the host like swarm-up.sh's),
#    nodes 2 and 3 join as managers (3 managers: one node lost keeps the quorum)
#  - node labels sa.node=n1..n3, an attachable overlay network sa-mn-net
#  - the test images copied from the single-node engine (scripts/swarm-up.sh must have run)
# Writes $SA_STATE_DIR/multinode/env: SA_MN_DOCKER_HOST_1..3, SA_MN_IP_1..3, SA_MN_NODE_ID_1..3,
# SA_MN_NETWORK, SA_MN_BRIDGE. Torn down by scripts/multinode-down.sh (swarm-down.sh calls it).
set -euo pipefail
SA_LOG_PREFIX=multinode
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/multinode-lib.sh"

t0=$(sa_now_ms)
sa_lock "$MN_DIR.lock"
mkdir -p "$MN_DIR"
sa_docker_ok || sa_die "the single-node engine at $DOCKER_HOST is not up (run scripts/swarm-up.sh first): its images are copied to the nodes"
sa_apt_ensure ip:iproute2 nsenter:util-linux iptables:iptables

# --- network: bridge, namespaces, veths ----------------------------------------------------------
if ! ip link show "$MN_BRIDGE" >/dev/null 2>&1; then
  ip link add "$MN_BRIDGE" type bridge
  ip addr add "$MN_PREFIX.1/24" dev "$MN_BRIDGE"
fi
ip link set "$MN_BRIDGE" up
# Once a dockerd runs, the host's FORWARD policy is DROP: let the nodes talk across the bridge.
iptables -C FORWARD -i "$MN_BRIDGE" -o "$MN_BRIDGE" -j ACCEPT 2>/dev/null ||
  iptables -I FORWARD -i "$MN_BRIDGE" -o "$MN_BRIDGE" -j ACCEPT
for i in 1 2 3; do
  ns="$(mn_ns "$i")"
  [[ -e "/var/run/netns/$ns" ]] || ip netns add "$ns"
  if ! ip link show "$ns-h" >/dev/null 2>&1; then
    ip link add "$ns-h" type veth peer name "$ns-n"
    ip link set "$ns-n" netns "$ns"
    ip -n "$ns" link set "$ns-n" name eth0
    ip -n "$ns" addr add "$(mn_ip "$i")/24" dev eth0
  fi
  ip link set "$ns-h" master "$MN_BRIDGE" up
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 up
done

# --- a dockerd per node --------------------------------------------------------------------------
for i in 1 2 3; do
  d="$(mn_dir "$i")"
  if mn_docker "$i" version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    sa_log "node $i: dockerd already answering"
    continue
  fi
  mkdir -p "$d/data" "$d/exec"
  # nsenter, not `ip netns exec`: that remounts /sys and hides the cgroup mounts from dockerd.
  # sa_close_fds: no lock fd of ours or of a caller (a test runner's flock) lives on in the daemon.
  (sa_close_fds; DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 exec setsid nohup nsenter --net="/var/run/netns/$(mn_ns "$i")" dockerd \
    --data-root "$d/data" --exec-root "$d/exec" --host "unix://$d/docker.sock" --pidfile "$d/docker.pid" \
    --bip "172.3$i.0.1/24") >"$d/dockerd.log" 2>&1 </dev/null &
  echo $! >"$d/dockerd.started"
done
for i in 1 2 3; do
  d="$(mn_dir "$i")"
  sa_wait_engine "node $i's dockerd" "unix://$d/docker.sock" "$d/dockerd.log" "" "${SA_DOCKERD_TIMEOUT:-30}"
done
sa_log "three dockerds answering after $(sa_since "$t0")"

# --- swarm ---------------------------------------------------------------------------------------
if [[ "$(mn_docker 1 info --format '{{.Swarm.LocalNodeState}}')" != active ]]; then
  mn_docker 1 swarm init --advertise-addr "$(mn_ip 1)" --default-addr-pool "$MN_POOL" >/dev/null
fi
token="$(mn_docker 1 swarm join-token -q manager)"
for i in 2 3; do
  if [[ "$(mn_docker "$i" info --format '{{.Swarm.LocalNodeState}}')" != active ]]; then
    mn_docker "$i" swarm join --advertise-addr "$(mn_ip "$i")" --token "$token" "$(mn_ip 1):2377" >/dev/null
  fi
done
for i in 1 2 3; do
  id="$(mn_docker "$i" info --format '{{.Swarm.NodeID}}')"
  mn_docker 1 node update --label-add "sa.node=n$i" "$id" >/dev/null
  sa_env_file_set "$MN_ENV" "SA_MN_NODE_ID_$i" "$id"
  sa_env_file_set "$MN_ENV" "SA_MN_DOCKER_HOST_$i" "unix://$(mn_dir "$i")/docker.sock"
  sa_env_file_set "$MN_ENV" "SA_MN_IP_$i" "$(mn_ip "$i")"
done
sa_log "swarm of 3 managers: $(mn_docker 1 node ls --format '{{.Hostname}}/{{.ManagerStatus}}/{{.Status}}' | tr '\n' ' ')"

if ! mn_docker 1 network inspect "$MN_NETWORK" >/dev/null 2>&1; then
  mn_docker 1 network create --driver overlay --attachable "$MN_NETWORK" >/dev/null
fi
sa_env_file_set "$MN_ENV" SA_MN_NETWORK "$MN_NETWORK"
sa_env_file_set "$MN_ENV" SA_MN_BRIDGE "$MN_BRIDGE"
# Overlay task addresses live only inside the nodes: never let a host-side request leave the machine.
ip route replace blackhole "$MN_POOL"

# --- images --------------------------------------------------------------------------------------
source "$SA_ROOT/scripts/tools.sh" --env
images=(local/node-base:20 sa/sample-app:dev swarm-activator:dev "sa/traefik:$SA_TRAEFIK_VERSION" "sa/pebble:$SA_PEBBLE_VERSION")
for i in 1 2 3; do
  want="$(for img in "${images[@]}"; do docker image inspect -f '{{.Id}}' "$img"; done)"
  have="$(for img in "${images[@]}"; do mn_docker "$i" image inspect -f '{{.Id}}' "$img" 2>/dev/null || echo none; done)"
  if [[ "$want" == "$have" ]]; then
    sa_log "node $i: images up to date"
  else
    t=$(sa_now_ms)
    docker save "${images[@]}" | mn_docker "$i" load >/dev/null
    sa_log "node $i: images loaded in $(sa_since "$t")"
  fi
done

sa_log "up in $(sa_since "$t0") — source $MN_ENV"
