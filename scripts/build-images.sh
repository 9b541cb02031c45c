#!/usr/bin/env bash
# Build the local images offline (no registry) into the engine at $DOCKER_HOST:
#   local/node-base:20      the host's /usr/bin/node + its libraries, imported from a folder
#   sa/redis:dev            the host's redis-server (Debian) the same way, for Redis inside the swarm
#   sa/sample-app:dev       test/apps/sample-app (HTTP echo, /health, /status/<code>, /sse, WS echo)
#   sa/never-healthy:dev    sample app whose HEALTHCHECK never passes (task stays `starting`)
#   sa/crash-on-start:dev   exits 3 at once
#   swarm-activator:dev     repo-root Dockerfile, context build/image/ (dist + production node_modules.tar)
# Each image carries a label sa.hash=<hash of its inputs>; an image whose hash is unchanged is
# skipped unless FORCE=1. Runs `npm run build` first when src/ changed since the last successful build
# (SA_SKIP_BUILD=1 never runs it and uses dist/ as it is).
set -euo pipefail
SA_LOG_PREFIX=images
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export DOCKER_BUILDKIT=0
BUILD="$SA_ROOT/build"
LOGS="$BUILD/logs"
mkdir -p "$BUILD" "$LOGS"
sa_lock "$BUILD/.lock"
cd "$SA_ROOT"
t_all=$(sa_now_ms)

sa_docker_ok || sa_die "no Docker engine answers at $DOCKER_HOST (run scripts/swarm-up.sh first)"

# --- helpers -------------------------------------------------------------------------------------
# hash_paths PATH... : short sha256 over the names and contents of the files (dirs are recursed).
hash_paths() {
  local p
  for p in "$@"; do
    if [[ -d "$p" ]]; then
      find "$p" -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum
    else
      sha256sum "$p"
    fi
  done | sha256sum | cut -c1-16
}
hash_text() { sha256sum | cut -c1-16; }
image_label_hash() { docker image inspect -f '{{index .Config.Labels "sa.hash"}}' "$1" 2>/dev/null || true; }
image_id() { docker image inspect -f '{{.Id}}' "$1"; }
image_size() { docker image inspect -f '{{.Size}}' "$1" | awk '{ printf "%.0f MB", $1 / 1e6 }'; }
up_to_date() { [[ "${FORCE:-0}" != 1 && "$(image_label_hash "$1")" == "$2" ]]; }

# docker_build IMAGE HASH DOCKERFILE CONTEXT [BASE]
docker_build() {
  local image="$1" hash="$2" dockerfile="$3" context="$4" base="${5:-}" t log
  if up_to_date "$image" "$hash"; then
    sa_log "$image up to date (sa.hash=$hash), skipped"
    return 0
  fi
  t=$(sa_now_ms)
  log="$LOGS/${image//[\/:]/_}.log"
  local args=(build --rm --force-rm --label "sa.hash=$hash" -t "$image" -f "$dockerfile")
  [[ -n "$base" ]] && args+=(--build-arg "BASE=$base")
  if ! docker "${args[@]}" "$context" >"$log" 2>&1; then
    echo "images: ERROR: building $image failed; last lines of $log:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  sa_log "$image built in $(sa_since "$t") ($(image_size "$image"), sa.hash=$hash)"
}

# --- activator: compile TypeScript first (fail fast and loudly) -----------------------------------
src_hash="$(hash_paths src tsconfig.json tsconfig.build.json package.json package-lock.json)"
if [[ "${SA_SKIP_BUILD:-0}" == 1 ]]; then
  sa_log "SA_SKIP_BUILD=1: not running npm run build, using dist/ as it is"
elif [[ "${FORCE:-0}" != 1 && -f dist/main.js && "$(cat "$BUILD/dist.hash" 2>/dev/null)" == "$src_hash" ]]; then
  sa_log "dist/ up to date with src/ (npm run build skipped)"
else
  t=$(sa_now_ms)
  rm -f "$BUILD/dist.hash"
  if ! npm run --silent build >"$LOGS/npm-build.log" 2>&1; then
    echo "images: ERROR: 'npm run build' failed, cannot build swarm-activator:dev. Output:" >&2
    tail -n 40 "$LOGS/npm-build.log" >&2
    exit 1
  fi
  echo "$src_hash" >"$BUILD/dist.hash"
  sa_log "npm run build ok ($(sa_since "$t"))"
fi
[[ -f dist/main.js ]] || sa_die "dist/main.js missing after the build; cannot build swarm-activator:dev"

# --- minimal images from host binaries (no registry here) ------------------------------------------
# binary_libs BIN: the shared libraries ldd lists for BIN (incl. the loader), one per line.
binary_libs() {
  ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u
}
# binary_hash NAME BIN EXTRA_FILE...: hash of a binary, its libraries and extra files (names, sizes, mtimes).
binary_hash() {
  local name="$1" bin="$2"
  shift 2
  local libs
  mapfile -t libs < <(binary_libs "$bin")
  [[ ${#libs[@]} -gt 0 ]] || sa_die "ldd found no libraries for $bin"
  { echo "$name"; stat -L -c '%n %s %Y' "$bin" "${libs[@]}" "$@"; } | hash_text
}
# import_binary IMAGE HASH BIN DEST [FILE...] -- [IMPORT_ARG...]: a root filesystem with BIN at DEST,
# its libraries (at the paths ldd prints, incl. /lib64/ld-linux-*.so.2), the FILEs at their own
# paths, /tmp and passwd/group/nsswitch, imported as IMAGE. IMPORT_ARGs go to `docker import`
# (e.g. --change 'CMD [...]').
import_binary() {
  local image="$1" hash="$2" bin="$3" dest="$4"
  shift 4
  local root="$BUILD/rootfs/${image//[\/:]/_}" lib
  rm -rf "$root"
  while [[ $# -gt 0 && "$1" != -- ]]; do
    mkdir -p "$root$(dirname "$1")"
    cp -L "$1" "$root$1"
    shift
  done
  [[ "${1:-}" == -- ]] && shift
  mkdir -p "$root$(dirname "$dest")" "$root/etc" "$root/tmp" "$root/root"
  chmod 1777 "$root/tmp"
  chmod 0700 "$root/root"
  cp -L "$bin" "$root$dest"
  while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done < <(binary_libs "$bin")
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$root/etc/group"
  printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' >"$root/etc/nsswitch.conf"
  tar -C "$root" --numeric-owner --owner=0 --group=0 -c . |
    docker import --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change "LABEL sa.hash=$hash" "$@" - "$image" >/dev/null
}

# --- local/node-base:20 --------------------------------------------------------------------------
BASE_IMAGE=local/node-base:20
node_bin="$(readlink -f "$(command -v node)")"
base_hash="$(binary_hash "node-base v2 $("$node_bin" --version)" "$node_bin" /etc/ssl/certs/ca-certificates.crt)"
if up_to_date "$BASE_IMAGE" "$base_hash"; then
  sa_log "$BASE_IMAGE up to date (node $("$node_bin" --version)), skipped"
else
  t=$(sa_now_ms)
  import_binary "$BASE_IMAGE" "$base_hash" "$node_bin" /usr/bin/node /etc/ssl/certs/ca-certificates.crt -- \
    --change "LABEL sa.node-version=$("$node_bin" --version)" --change 'CMD ["/usr/bin/node"]'
  sa_log "$BASE_IMAGE imported in $(sa_since "$t") (node $("$node_bin" --version), $(image_size "$BASE_IMAGE"))"
fi
base_id="$(image_id "$BASE_IMAGE")"

# --- sa/redis:dev (Debian's redis-server, for tests that run Redis inside the swarm) --------------
sa_apt_ensure redis-server:redis-server
redis_bin="$(readlink -f "$(command -v redis-server)")"
redis_hash="$(binary_hash "redis v1" "$redis_bin")"
if up_to_date sa/redis:dev "$redis_hash"; then
  sa_log "sa/redis:dev up to date, skipped"
else
  t=$(sa_now_ms)
  # No persistence, no protected mode: a throwaway store on the test network.
  import_binary sa/redis:dev "$redis_hash" "$redis_bin" /usr/bin/redis-server -- \
    --change 'EXPOSE 6379' \
    --change 'CMD ["/usr/bin/redis-server", "--port", "6379", "--protected-mode", "no", "--save", "", "--appendonly", "no"]'
  sa_log "sa/redis:dev imported in $(sa_since "$t") ($("$redis_bin" --version | awk '{ print $3 }'), $(image_size sa/redis:dev))"
fi

# --- healthcheck binary --------------------------------------------------------------------------
hc_src="$SA_ROOT/test/apps/healthcheck.c"
hc_bin="$BUILD/healthcheck/healthcheck"
hc_hash="$(hash_paths test/apps/healthcheck.c)"
if [[ -x "$hc_bin" && "$(cat "$hc_bin.hash" 2>/dev/null)" == "$hc_hash" && "${FORCE:-0}" != 1 ]]; then
  sa_log "healthcheck binary up to date"
else
  sa_apt_ensure gcc:gcc
  [[ "$(gcc -print-file-name=libc.a)" == /* ]] || sa_apt_ensure "/nonexistent/libc.a:libc6-dev"
  mkdir -p "$(dirname "$hc_bin")"
  gcc -static -O2 -s -Wall -Wextra -o "$hc_bin" "$hc_src"
  echo "$hc_hash" >"$hc_bin.hash"
  sa_log "healthcheck compiled ($(stat -c %s "$hc_bin") bytes, static)"
fi

# --- sa/sample-app:dev ---------------------------------------------------------------------------
[[ -f node_modules/ws/package.json ]] || sa_die "node_modules/ws missing (run npm ci)"
ctx="$BUILD/ctx/sample-app"
rm -rf "$ctx"
mkdir -p "$ctx/node_modules"
cp test/apps/sample-app/server.mjs test/apps/sample-app/Dockerfile "$ctx/"
cp -a node_modules/ws "$ctx/node_modules/ws"
cp "$hc_bin" "$ctx/healthcheck"
h="$({ echo "$base_id"; cd "$ctx" && hash_paths .; } | hash_text)"
docker_build sa/sample-app:dev "$h" "$ctx/Dockerfile" "$ctx" "$BASE_IMAGE"

# --- sa/never-healthy:dev (FROM sa/sample-app:dev) -----------------------------------------------
ctx="$BUILD/ctx/never-healthy"
rm -rf "$ctx"
mkdir -p "$ctx"
cp test/apps/never-healthy/Dockerfile "$ctx/"
h="$({ image_id sa/sample-app:dev; cd "$ctx" && hash_paths .; } | hash_text)"
docker_build sa/never-healthy:dev "$h" "$ctx/Dockerfile" "$ctx" sa/sample-app:dev

# --- sa/crash-on-start:dev -----------------------------------------------------------------------
ctx="$BUILD/ctx/crash-on-start"
rm -rf "$ctx"
mkdir -p "$ctx"
cp test/apps/crash-on-start/main.mjs test/apps/crash-on-start/Dockerfile "$ctx/"
h="$({ echo "$base_id"; cd "$ctx" && hash_paths .; } | hash_text)"
docker_build sa/crash-on-start:dev "$h" "$ctx/Dockerfile" "$ctx" "$BASE_IMAGE"

# --- swarm-activator:dev -------------------------------------------------------------------------
# Context build/image/: package.json, package-lock.json, dist/ and node_modules.tar (the production
# node_modules as one tar, which ADD unpacks: sending ~5000 small files in a build context costs the
# legacy builder 5-15 s on every dist/ change, one tar well under a second and its layer stays cached).
img="$BUILD/image"
deps="$BUILD/deps"
mkdir -p "$img"
rm -rf "$img/node_modules"   # (older layout)
lock_hash="$(hash_paths package.json package-lock.json)"
if [[ -d "$deps/node_modules" && -f "$img/node_modules.tar" && "$(cat "$deps/lock-hash" 2>/dev/null)" == "$lock_hash" ]]; then
  sa_log "production node_modules up to date with package-lock.json"
else
  t=$(sa_now_ms)
  rm -rf "$deps" "$img/node_modules.tar"
  mkdir -p "$deps"
  cp package.json package-lock.json "$deps/"
  if ! (cd "$deps" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error) \
      >"$LOGS/npm-ci-image.log" 2>&1; then
    echo "images: ERROR: npm ci --omit=dev in build/deps failed; last lines of $LOGS/npm-ci-image.log:" >&2
    tail -n 30 "$LOGS/npm-ci-image.log" >&2
    exit 1
  fi
  tar -C "$deps" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$img/node_modules.tar" node_modules
  echo "$lock_hash" >"$deps/lock-hash"
  sa_log "production node_modules installed ($(find "$deps/node_modules" -type f | wc -l) files) and packed in $(sa_since "$t")"
fi
cp package.json package-lock.json "$img/"
rm -rf "$img/dist"
cp -a dist "$img/dist"
h="$({ echo "$base_id"; echo "$lock_hash"; hash_paths Dockerfile; cd "$img" && hash_paths dist; } | hash_text)"
docker_build swarm-activator:dev "$h" "$SA_ROOT/Dockerfile" "$img" "$BASE_IMAGE"

# Old builds of our images are now dangling: drop them.
docker image prune -f --filter label=sa.hash >/dev/null 2>&1 || true
sa_log "all images ready in $(sa_since "$t_all")"
bash "$SA_ROOT/scripts/build-tool-images.sh"   # Traefik, Pebble (pinned, FROM scratch)
