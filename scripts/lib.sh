# shellcheck shell=bash
# Shared helpers and constants for the swarm scripts. Source it, don't run it:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Environment knobs:
#   SA_STATE_DIR   state dir for the private dockerd, redis, env file (default /var/tmp/swarm-activator)
#   SA_NETWORK     attachable overlay network for tests/demo (default sa-net)
#   DOCKER_HOST    if set (and not our own socket), use that engine and never start/stop a dockerd
#   SA_REDIS_PORT  port for the scripts' redis-server (default 16379)
#   FORCE=1        rebuild images even if their input hash is unchanged

SA_LOG_PREFIX="${SA_LOG_PREFIX:-swarm}"
SA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SA_STATE_DIR="${SA_STATE_DIR:-/var/tmp/swarm-activator}"
SA_STATE_DIR="${SA_STATE_DIR%/}"
SA_NETWORK="${SA_NETWORK:-sa-net}"
SA_REDIS_PORT="${SA_REDIS_PORT:-16379}"
# Overlay address pool of the swarm swarm-up.sh initialises (blackholed on the host).
SA_ADDR_POOL="${SA_ADDR_POOL:-10.213.0.0/16}"
SA_SOCK="$SA_STATE_DIR/docker.sock"
SA_OWN_DOCKER_HOST="unix://$SA_SOCK"
SA_ENV_FILE="$SA_STATE_DIR/env"
export SA_STATE_DIR SA_NETWORK SA_REDIS_PORT

case "$SA_STATE_DIR" in
  /*/*) ;;
  *) echo "swarm: refusing SA_STATE_DIR='$SA_STATE_DIR' (must be an absolute path at least two levels deep)" >&2; exit 2 ;;
esac

# External engine: DOCKER_HOST given by the caller and pointing somewhere other than our socket.
# (Our own env file exports DOCKER_HOST=unix://$SA_SOCK, so sourcing it must not flip us to external.)
if [[ -n "${DOCKER_HOST:-}" && "$DOCKER_HOST" != "$SA_OWN_DOCKER_HOST" ]]; then
  SA_EXTERNAL_ENGINE=1
else
  SA_EXTERNAL_ENGINE=0
  DOCKER_HOST="$SA_OWN_DOCKER_HOST"
fi
export DOCKER_HOST

sa_log() { echo "$SA_LOG_PREFIX: $*"; }
sa_die() { echo "$SA_LOG_PREFIX: ERROR: $*" >&2; exit 1; }

# Run as root, or through sudo when available.
sa_root() {
  if [[ $EUID -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi
}

# sa_apt_ensure CMD:PKG ... — apt-get install the packages whose command is missing.
# A CMD that starts with / is tested as a file path instead of a command name.
SA_APT_UPDATED="${SA_APT_UPDATED:-0}"
sa_apt_ensure() {
  local spec cmd pkg missing=()
  for spec in "$@"; do
    cmd="${spec%%:*}" pkg="${spec#*:}"
    if [[ "$cmd" == /* ]]; then [[ -e "$cmd" ]] && continue
    else command -v "$cmd" >/dev/null 2>&1 && continue; fi
    missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  sa_log "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  if [[ "$SA_APT_UPDATED" != 1 ]]; then
    sa_root apt-get update -qq
    SA_APT_UPDATED=1
  fi
  sa_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Is the engine at $DOCKER_HOST answering?
sa_docker_ok() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# sa_env_file_set FILE KEY VALUE — set `export KEY=VALUE` in FILE (replacing an older line).
sa_env_file_set() {
  local file="$1" key="$2" val="$3" tmp
  mkdir -p "$(dirname "$file")"
  tmp="$(mktemp "$(dirname "$file")/.env.XXXXXX")"
  if [[ -f "$file" ]]; then grep -v "^export $key=" "$file" >"$tmp" || true; fi
  printf 'export %s=%q\n' "$key" "$val" >>"$tmp"
  mv -f "$tmp" "$file"
}

# sa_env_set KEY VALUE — the same in $SA_ENV_FILE.
sa_env_set() { sa_env_file_set "$SA_ENV_FILE" "$1" "$2"; }

# Write the docker part of the env file.
sa_write_env() {
  sa_env_set SA_STATE_DIR "$SA_STATE_DIR"
  sa_env_set DOCKER_HOST "$DOCKER_HOST"
  sa_env_set SA_NETWORK "$SA_NETWORK"
}

# sa_lock FILE — hold an exclusive lock on FILE until the script exits (serialises concurrent runs).
sa_lock() {
  mkdir -p "$(dirname "$1")"
  exec 9>"$1"
  if ! flock -n 9; then
    sa_log "waiting for another run holding $1"
    flock -w "${SA_LOCK_TIMEOUT:-600}" 9 || sa_die "timed out waiting for $1"
  fi
}

# sa_close_fds — close every file descriptor above 2 of this shell. Run it in the subshell that
# execs a daemon: a lock its caller holds (flock on any fd, ours or a test runner's) must not live
# on in the daemon, or the lock is never released.
sa_close_fds() {
  local fd
  for fd in /proc/"$BASHPID"/fd/*; do
    fd="${fd##*/}"
    if [[ "$fd" =~ ^[0-9]+$ ]] && ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
}

# Milliseconds since the epoch, and a "1.23s" formatter for elapsed time since a start value.
sa_now_ms() { local t="${EPOCHREALTIME/[.,]/}"; echo "${t:0:-3}"; }
sa_since() { local d=$(( $(sa_now_ms) - $1 )); printf '%d.%02ds' $((d / 1000)) $((d % 1000 / 10)); }

# Pids of processes whose command line mentions WORD (exact substring), e.g. our exec-root.
sa_pids_mentioning() {
  local word="$1" p cmd
  for p in /proc/[0-9]*; do
    cmd="$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" || continue
    [[ "$cmd" == *"$word"* ]] && echo "${p#/proc/}"
  done
  return 0
}

# sa_wait_gone PID SECONDS — wait until PID exits; returns 1 on timeout.
sa_wait_gone() {
  local pid="$1" i
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

# sa_wait_engine LABEL DOCKER_HOST LOG PID TIMEOUT_S — wait until the engine at DOCKER_HOST answers;
# dies with the last lines of LOG if its dockerd (PID, when given) exits or TIMEOUT_S pass.
sa_wait_engine() {
  local label="$1" host="$2" log="$3" pid="$4" timeout="$5"
  local deadline=$((SECONDS + timeout))
  until DOCKER_HOST="$host" docker version --format '{{.Server.Version}}' >/dev/null 2>&1; do
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      echo "$SA_LOG_PREFIX: ERROR: $label (pid $pid) exited; last lines of $log:" >&2
      tail -n 30 "$log" >&2 || true
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      echo "$SA_LOG_PREFIX: ERROR: $label did not answer on $host within ${timeout}s; last lines of $log:" >&2
      tail -n 30 "$log" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
}

# sa_stop_engine LABEL DIR — stop the dockerd whose exec-root is DIR/exec (pid from DIR/docker.pid or
# DIR/dockerd.started; TERM, then KILL after 20 s), then what an unclean stop leaves behind: the
# containerd, shims and runc of DIR/exec, and the processes of its containers (found by container
# ID in their cgroup). Returns 1 when there was nothing to stop.
sa_stop_engine() {
  local label="$1" dir="$2" pid p cid f stopped=1
  pid="$(cat "$dir/docker.pid" 2>/dev/null || cat "$dir/dockerd.started" 2>/dev/null || true)"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null &&
     [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)" == *"--exec-root $dir/exec"* ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    if sa_wait_gone "$pid" 20; then
      sa_log "$label (pid $pid) stopped"
    else
      kill -KILL "$pid" 2>/dev/null || true
      sa_wait_gone "$pid" 5 || true
      sa_log "$label (pid $pid) did not stop in 20s; killed"
    fi
    stopped=0
  fi
  local left=()
  for p in $(sa_pids_mentioning "$dir/exec"); do
    [[ "$(cat "/proc/$p/comm" 2>/dev/null)" =~ ^(dockerd|containerd.*|runc|docker-proxy|nsenter)$ ]] && left+=("$p")
  done
  if [[ -d "$dir/data/containers" ]]; then
    for cid in $(ls "$dir/data/containers"); do
      [[ ${#cid} -eq 64 ]] || continue
      for f in $(grep -l -s "$cid" /proc/[0-9]*/cgroup 2>/dev/null || true); do
        p="${f#/proc/}" p="${p%/cgroup}"
        left+=("$p")
      done
    done
  fi
  if [[ ${#left[@]} -gt 0 ]]; then
    kill -KILL "${left[@]}" 2>/dev/null || true
    for p in "${left[@]}"; do sa_wait_gone "$p" 5 || true; done
    sa_log "killed ${#left[@]} leftover process(es) of $label: ${left[*]}"
    stopped=0
  fi
  return "$stopped"
}

# sa_unmount_under DIR — lazy-unmount whatever is still mounted below DIR (netns files, overlay
# layers, shm), deepest first; prints how many.
sa_unmount_under() {
  local m mounts
  mapfile -t mounts < <(findmnt -rn -o TARGET 2>/dev/null | awk -v d="$1" 'index($0, d "/") == 1' | sort -r)
  for m in "${mounts[@]}"; do umount -l "$(printf '%b' "$m")" 2>/dev/null || true; done
  echo "${#mounts[@]}"
}
