#!/usr/bin/env bash
# Tear down what multinode-up.sh made: the three dockerds and their containers, the namespaces,
# veths, bridge, FORWARD rule and blackhole route, and $SA_STATE_DIR/multinode. Safe to run twice
# or when nothing is up.
set -euo pipefail
SA_LOG_PREFIX=multinode-down
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/multinode-lib.sh"

t0=$(sa_now_ms)
did=0
[[ -d "$MN_DIR" ]] && sa_lock "$MN_DIR.lock"

for i in 1 2 3; do
  d="$(mn_dir "$i")"
  [[ -d "$d" ]] || continue
  if mn_docker "$i" version >/dev/null 2>&1; then
    # Containers first, so dockerd does not wait out their stop timeouts.
    ids="$(mn_docker "$i" ps -aq 2>/dev/null || true)"
    # shellcheck disable=SC2086
    [[ -n "$ids" ]] && mn_docker "$i" rm -f $ids >/dev/null 2>&1 || true
    mn_docker "$i" swarm leave --force >/dev/null 2>&1 || true
  fi
  sa_stop_engine "node $i's dockerd" "$d" || true
  did=1
done

for i in 1 2 3; do
  ns="$(mn_ns "$i")"
  ip link del "$ns-h" 2>/dev/null && did=1 || true
  if [[ -e "/var/run/netns/$ns" ]]; then
    # Processes of this node's containers still in the namespace (an unclean stop): end them first.
    pids="$(ip netns pids "$ns" 2>/dev/null || true)"
    # shellcheck disable=SC2086
    [[ -n "$pids" ]] && kill -KILL $pids 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    did=1
  fi
done
if ip link show "$MN_BRIDGE" >/dev/null 2>&1; then
  ip link del "$MN_BRIDGE" 2>/dev/null || true
  did=1
fi
while iptables -C FORWARD -i "$MN_BRIDGE" -o "$MN_BRIDGE" -j ACCEPT 2>/dev/null; do
  iptables -D FORWARD -i "$MN_BRIDGE" -o "$MN_BRIDGE" -j ACCEPT
done
ip route del blackhole "$MN_POOL" 2>/dev/null || true

if [[ -d "$MN_DIR" ]]; then
  sa_unmount_under "$MN_DIR" >/dev/null
  rm -rf --one-file-system "$MN_DIR" "$MN_DIR.lock"
  did=1
fi

if [[ $did == 1 ]]; then sa_log "done in $(sa_since "$t0")"; else sa_log "nothing was up"; fi
