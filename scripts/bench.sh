#!/usr/bin/env bash
# `npm run bench`: issue 5's benchmarks on the real local swarm (bench/run.ts). Prints a table and
# writes bench/results.json.
#   - brings up the swarm (scripts/swarm-up.sh: private dockerd, swarm, network, images)
#   - installs wrk and nginx-light from Debian if missing
#   - leaves things as it found them: if no engine answered before, swarm-up started one, and it is
#     torn down at the end (scripts/swarm-down.sh) unless KEEP_SWARM=1. An engine that was already
#     up (yours, or one shared with others) is never torn down.
# Knobs (see bench/run.ts): BENCH_ONLY=coldStart,burst,hotPath,scale,peer,mondayMorning,burst10k,scale5k,viaTraefik  BENCH_COLD_DELAYS=0,1000
#   BENCH_COLD_CYCLES=10  BENCH_COLD_HEALTHCHECK=0  BENCH_PIN=1  BENCH_PROFILE=1  BENCH_HOT_*  BENCH_SCALE_*
set -euo pipefail
SA_LOG_PREFIX=bench
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SA_ROOT"

sa_apt_ensure wrk:wrk nginx:nginx-light taskset:util-linux
[[ -d node_modules ]] || { sa_log "npm ci"; npm ci --no-audit --no-fund; }

engine_was_up=0
if sa_docker_ok; then engine_was_up=1; fi

cleanup() {
  local rc=$?
  if [[ $engine_was_up == 1 ]]; then
    sa_log "the engine was already up before the bench: leaving it (and the swarm) running"
  elif [[ "${KEEP_SWARM:-0}" == 1 ]]; then
    sa_log "KEEP_SWARM=1: leaving the swarm up (source $SA_ENV_FILE; stop with scripts/swarm-down.sh)"
  else
    bash "$SA_ROOT/scripts/swarm-down.sh" || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bash "$SA_ROOT/scripts/swarm-up.sh"
# shellcheck disable=SC1090
source "$SA_ENV_FILE"
export SA_STATE_DIR SA_NETWORK DOCKER_HOST

# burst10k holds 10,000 client sockets in one process: raise the soft open-file limit to the hard one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true
npx tsx bench/run.ts
