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
  pid="$(cat "$d/docker.pid" 2>/dev/null || cat "$d/dockerd.started" 2>/dev/null || true)"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null &&
     [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)" == *"--exec-root $d/exec"* ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    sa_wait_gone "$pid" 15 || { kill -KILL "$pid" 2>/dev/null || true; sa_wait_gone "$pid" 5 || true; }
  fi
  # containerd, shims and runc of this node, if its dockerd died uncleanly.
  left=()
  for p in $(sa_pids_mentioning "$d/exec"); do
    [[ "$(cat "/proc/$p/comm" 2>/dev/null)" =~ ^(dockerd|containerd.*|runc|docker-proxy|nsenter)$ ]] && left+=("$p")
  done
  if [[ ${#left[@]} -gt 0 ]]; then
    kill -KILL "${left[@]}" 2>/dev/null || true
    for p in "${left[@]}"; do sa_wait_gone "$p" 5 || true; done
  fi
  sa_log "node $i stopped"
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
  mapfile -t mounts < <(findmnt -rn -o TARGET 2>/dev/null | awk -v d="$MN_DIR" 'index($0, d "/") == 1' | sort -r)
  for m in "${mounts[@]}"; do umount -l "$(printf '%b' "$m")" 2>/dev/null || true; done
  rm -rf --one-file-system "$MN_DIR" "$MN_DIR.lock"
  did=1
fi

if [[ $did == 1 ]]; then sa_log "done in $(sa_since "$t0")"; else sa_log "nothing was up"; fi
