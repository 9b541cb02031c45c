#!/usr/bin/env bash
# `npm test`: bring up the swarm, the three-node swarm and redis, run tap, tear everything down
# (unless KEEP_SWARM=1).
#   npm test                       -> every *.ts/*.js test file under test/ (not test/apps, test/helpers)
#   npm test -- test/unit          -> only those (directories are expanded, files and flags passed on)
#   KEEP_SWARM=1 npm test          -> leave swarm/redis running afterwards (scripts/swarm-down.sh later)
#   SKIP_LINT=1 npm test           -> skip `npm run lint` (eslint + knip), which runs first otherwise
set -euo pipefail
SA_LOG_PREFIX=test
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SA_ROOT"

cleanup() {
  local rc=$?
  if [[ "${KEEP_SWARM:-0}" == 1 ]]; then
    sa_log "KEEP_SWARM=1: leaving swarm and redis up (source $SA_ENV_FILE; stop with scripts/swarm-down.sh)"
  else
    bash "$SA_ROOT/scripts/swarm-down.sh" || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Static checks first (about 30 s): typescript-eslint's type-checked rules, then knip for unused
# files, exports and dependencies. SKIP_LINT=1 skips them for quick reruns of a subset.
if [[ "${SKIP_LINT:-0}" != 1 ]]; then
  sa_log "npm run lint"
  npm run --silent lint
fi

bash "$SA_ROOT/scripts/swarm-up.sh"
bash "$SA_ROOT/scripts/redis-up.sh"
# Three more engines in network namespaces, for test/e2e/multinode.test.ts (about 15 s; images copied).
bash "$SA_ROOT/scripts/multinode-up.sh"

# shellcheck disable=SC1090
source "$SA_ENV_FILE"
export SA_STATE_DIR SA_NETWORK DOCKER_HOST REDIS_URL

# Which files tap runs. tap's own discovery only globs the extensions of its enabled plugins, and
# package.json disables @tapjs/typescript (TS runs through --import=tsx), so it would not find *.ts
# tests but would find the image sources in test/apps/*.mjs. So expand directories here (none given:
# test/) into test files ourselves; test/apps, test/helpers and fixture dirs are never tests.
expand_dir() {
  find "$1" -type f \( -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.tsx' \
      -o -name '*.js' -o -name '*.mjs' -o -name '*.cjs' \) \
    -not -name '*.d.ts' -not -path '*/node_modules/*' -not -path '*/fixture*/*' -not -path '*/dist/*' \
    -not -path 'test/apps/*' -not -path 'test/helpers/*' | LC_ALL=C sort
}
args=()
have_paths=0
for a in "$@"; do
  if [[ "$a" != -* && -d "$a" ]]; then
    have_paths=1
    a="${a#./}"
    mapfile -t -O "${#args[@]}" args < <(expand_dir "${a%/}")
  else
    [[ "$a" != -* && -e "$a" ]] && have_paths=1
    args+=("$a")
  fi
done
if [[ $have_paths == 0 ]]; then
  mapfile -t -O "${#args[@]}" args < <(expand_dir test)
fi
sa_log "running: npx tap ${args[*]:-}"

rc=0
npx tap \
  --exclude='**/@(fixture*(s)|dist)/**' \
  --exclude='test/apps/**' \
  --exclude='test/helpers/**' \
  ${args[@]+"${args[@]}"} || rc=$?
exit "$rc"
