#!/usr/bin/env bash
# Build the local images offline (no registry) into the engine at $DOCKER_HOST:
#   local/node-base:20      the host's /usr/bin/node + its libraries, imported from a folder
#   sa/redis:dev            the host's redis-server (Debian) the same way, for Redis inside the swarm
#   sa/sample-app:dev       test/apps/sample-app (HTTP echo, /health, /status/<code>, /sse, WS echo)
#   sa/never-healthy:dev    sample app whose HEALTHCHECK never passes (task stays `starting`)
#   sa/crash-on-start:dev   exits 3 at once
#   local/node-build:20     node-base + the host's npm, /bin/sh, and an npm cache holding exactly
#                           package-lock.json's packages (the Dockerfile's build stages: npm ci --offline)
#   local/docker-cli:<ver>  the host's docker CLI at /usr/local/bin/docker (as in docker:<ver>-cli)
#   swarm-activator:dev     the repo's multi-stage Dockerfile, with those three as its base images
#                           (SA_ACTIVATOR_CONTEXT / SA_ACTIVATOR_TAG: another checkout / tag)
# Each image carries a label sa.hash=<hash of its inputs>; an image whose hash is unchanged is
# skipped unless FORCE=1.
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

# docker_build IMAGE HASH DOCKERFILE CONTEXT [BASE] [-- DOCKER_BUILD_ARG...]
docker_build() {
  local image="$1" hash="$2" dockerfile="$3" context="$4" base="${5:-}" t log extra=()
  shift 4
  [[ $# -gt 0 && "$1" != -- ]] && shift
  [[ "${1:-}" == -- ]] && { shift; extra=("$@"); }
  if up_to_date "$image" "$hash"; then
    sa_log "$image up to date (sa.hash=$hash), skipped"
    return 0
  fi
  t=$(sa_now_ms)
  log="$LOGS/${image//[\/:]/_}.log"
  local args=(build --rm --force-rm --label "sa.hash=$hash" -t "$image" -f "$dockerfile")
  [[ -n "$base" ]] && args+=(--build-arg "BASE=$base")
  args+=(${extra[@]+"${extra[@]}"})
  if ! docker "${args[@]}" "$context" >"$log" 2>&1; then
    echo "images: ERROR: building $image failed; last lines of $log:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  sa_log "$image built in $(sa_since "$t") ($(image_size "$image"), sa.hash=$hash)"
}

# --- minimal images from host binaries (no registry here) ------------------------------------------
# binary_libs BIN: the shared libraries ldd lists for BIN (incl. the loader), one per line.
binary_libs() {
  is_static "$1" && return 0
  ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u
}
# is_static BIN: true for a statically linked binary (ldd: "not a dynamic executable").
is_static() { ! ldd "$1" >/dev/null 2>&1; }
# binary_hash NAME BIN EXTRA_FILE...: hash of a binary, its libraries and extra files (names, sizes, mtimes).
binary_hash() {
  local name="$1" bin="$2"
  shift 2
  local libs
  mapfile -t libs < <(binary_libs "$bin")
  [[ ${#libs[@]} -gt 0 ]] || is_static "$bin" || sa_die "ldd found no libraries for $bin"
  { echo "$name"; stat -L -c '%n %s %Y' "$bin" ${libs[@]+"${libs[@]}"} "$@"; } | hash_text
}
# make_rootfs ROOT BIN DEST [FILE...]: a root filesystem in ROOT with BIN at DEST, its libraries (at
# the paths ldd prints, incl. /lib64/ld-linux-*.so.2), the FILEs at their own paths, /tmp, and
# passwd/group/nsswitch with root, nobody and node (uid 1000, as in the official node image).
make_rootfs() {
  local root="$1" bin="$2" dest="$3" lib f
  shift 3
  rm -rf "$root"
  for f in "$@"; do
    mkdir -p "$root$(dirname "$f")"
    cp -L "$f" "$root$f"
  done
  mkdir -p "$root$(dirname "$dest")" "$root/etc" "$root/tmp" "$root/root" "$root/home/node"
  chmod 1777 "$root/tmp"
  chmod 0700 "$root/root"
  chown 1000:1000 "$root/home/node"
  cp -L "$bin" "$root$dest"
  while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done < <(binary_libs "$bin")
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' \
    'node:x:1000:1000::/home/node:/bin/sh' >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' 'node:x:1000:' >"$root/etc/group"
  printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' >"$root/etc/nsswitch.conf"
}
# import_rootfs ROOT IMAGE HASH [IMPORT_ARG...]: ROOT (owners kept) as IMAGE; IMPORT_ARGs go to
# `docker import` (e.g. --change 'CMD [...]').
import_rootfs() {
  local root="$1" image="$2" hash="$3"
  shift 3
  tar -C "$root" --numeric-owner -c . |
    docker import --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change "LABEL sa.hash=$hash" "$@" - "$image" >/dev/null
}
# import_binary IMAGE HASH BIN DEST [FILE...] -- [IMPORT_ARG...]: make_rootfs, then import_rootfs.
import_binary() {
  local image="$1" hash="$2" bin="$3" dest="$4" files=()
  shift 4
  while [[ $# -gt 0 && "$1" != -- ]]; do files+=("$1"); shift; done
  [[ "${1:-}" == -- ]] && shift
  local root="$BUILD/rootfs/${image//[\/:]/_}"
  make_rootfs "$root" "$bin" "$dest" ${files[@]+"${files[@]}"}
  import_rootfs "$root" "$image" "$hash" "$@"
}

# --- local/node-base:20 --------------------------------------------------------------------------
BASE_IMAGE=local/node-base:20
node_bin="$(readlink -f "$(command -v node)")"
# /usr/bin/env: for the `#!/usr/bin/env node` of the swarm-activator CLI.
base_hash="$(binary_hash "node-base v3 $("$node_bin" --version)" "$node_bin" /etc/ssl/certs/ca-certificates.crt /usr/bin/env)"
if up_to_date "$BASE_IMAGE" "$base_hash"; then
  sa_log "$BASE_IMAGE up to date (node $("$node_bin" --version)), skipped"
else
  t=$(sa_now_ms)
  import_binary "$BASE_IMAGE" "$base_hash" "$node_bin" /usr/bin/node /etc/ssl/certs/ca-certificates.crt /usr/bin/env -- \
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

# --- swarm-activator:dev: the repo's Dockerfile, built offline -------------------------------------
# The Dockerfile takes its base images as build arguments (official images by default). Here they
# are made from the host: local/node-base:20 (above) for the final stage, local/node-build:20 for the
# build stages (npm ci --offline from a cache holding exactly package-lock.json's packages), and
# local/docker-cli:<version> for the docker CLI the image carries.
rm -rf "$BUILD/image" "$BUILD/deps"   # (older layout: dist/ and node_modules.tar made on the host)

# npm cache with package-lock.json's packages: filled by one npm ci into a fresh cache (from the npm
# registry, as `npm ci` itself; only when package.json or package-lock.json changes).
lock_hash="$(hash_paths package.json package-lock.json)"
npm_cache="$BUILD/npm-cache"
if [[ -d "$npm_cache/_cacache" && "$(cat "$npm_cache/lock-hash" 2>/dev/null)" == "$lock_hash" ]]; then
  sa_log "npm cache for the image build up to date with package-lock.json"
else
  t=$(sa_now_ms)
  rm -rf "$npm_cache"
  mkdir -p "$npm_cache/stage"
  cp package.json package-lock.json "$npm_cache/stage/"
  if ! (cd "$npm_cache/stage" && npm ci --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error --cache "$npm_cache") \
      >"$LOGS/npm-cache.log" 2>&1; then
    echo "images: ERROR: filling the npm cache for the image build failed; last lines of $LOGS/npm-cache.log:" >&2
    tail -n 30 "$LOGS/npm-cache.log" >&2
    exit 1
  fi
  rm -rf "$npm_cache/stage" "$npm_cache/_logs"
  echo "$lock_hash" >"$npm_cache/lock-hash"
  sa_log "npm cache for the image build filled in $(sa_since "$t") ($(du -sm "$npm_cache/_cacache" | cut -f1) MB)"
fi

# local/node-build:20: node, npm, /bin/sh and /usr/bin/env (npm scripts), the npm cache.
BUILD_IMAGE=local/node-build:20
npm_dir="$(readlink -f "$(dirname "$(readlink -f "$(command -v npm)")")/..")"   # .../node_modules/npm
sh_bin="$(readlink -f /bin/sh)"
npm_version="$(npm --version)"
build_hash="$({ echo "node-build v1 npm $npm_version"; echo "$base_hash $lock_hash"; binary_hash sh "$sh_bin"; } | hash_text)"
if up_to_date "$BUILD_IMAGE" "$build_hash"; then
  sa_log "$BUILD_IMAGE up to date (npm $npm_version), skipped"
else
  t=$(sa_now_ms)
  root="$BUILD/rootfs/node-build"
  make_rootfs "$root" "$node_bin" /usr/bin/node /etc/ssl/certs/ca-certificates.crt /usr/bin/env
  mkdir -p "$root/bin"
  cp -L "$sh_bin" "$root/bin/sh"
  while read -r lib; do mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; done < <(binary_libs "$sh_bin")
  mkdir -p "$root/usr/lib/node_modules" "$root/root/.npm"
  cp -a "$npm_dir" "$root/usr/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/bin/npm"
  cp -a "$npm_cache/_cacache" "$root/root/.npm/_cacache"
  import_rootfs "$root" "$BUILD_IMAGE" "$build_hash" --change 'ENV HOME=/root' --change 'ENV NPM_CONFIG_UPDATE_NOTIFIER=false' \
    --change 'CMD ["/bin/sh"]'
  rm -rf "$root"
  sa_log "$BUILD_IMAGE imported in $(sa_since "$t") (node $("$node_bin" --version), npm $npm_version, $(image_size "$BUILD_IMAGE"))"
fi

# local/docker-cli:<version>: the host's docker CLI, where docker:<version>-cli has it. A static
# binary is preferred (the machine's docker 28; Debian's docker.io client is dynamic, and 20.10).
docker_cli="${SA_DOCKER_CLI:-}"
if [[ -z "$docker_cli" ]]; then
  while read -r c; do is_static "$c" && { docker_cli="$c"; break; }; done < <(type -ap docker)
  docker_cli="${docker_cli:-$(command -v docker)}"
fi
docker_cli="$(readlink -f "$docker_cli")"
cli_version="$("$docker_cli" --version | awk '{ print $3 }' | tr -d ,)"
CLI_IMAGE="local/docker-cli:$(tr -c 'A-Za-z0-9_.\n-' '-' <<<"$cli_version")"
cli_hash="$(binary_hash "docker-cli v1" "$docker_cli")"
if up_to_date "$CLI_IMAGE" "$cli_hash"; then
  sa_log "$CLI_IMAGE up to date ($docker_cli), skipped"
else
  import_binary "$CLI_IMAGE" "$cli_hash" "$docker_cli" /usr/local/bin/docker -- --change 'CMD ["/usr/local/bin/docker"]'
  sa_log "$CLI_IMAGE imported from $docker_cli ($(image_size "$CLI_IMAGE"))"
fi

# swarm-activator:dev
act_ctx="${SA_ACTIVATOR_CONTEXT:-$SA_ROOT}"
act_tag="${SA_ACTIVATOR_TAG:-swarm-activator:dev}"
act_version="$(node -p 'require(process.argv[1]).version' "$act_ctx/package.json")"
h="$({ echo "$base_id"; image_id "$BUILD_IMAGE"; image_id "$CLI_IMAGE"; cd "$act_ctx" &&
  hash_paths Dockerfile .dockerignore package.json package-lock.json tsconfig.json tsconfig.build.json src; } | hash_text)"
docker_build "$act_tag" "$h" "$act_ctx/Dockerfile" "$act_ctx" "" -- \
  --build-arg "NODE_IMAGE=$BASE_IMAGE" --build-arg "BUILD_IMAGE=$BUILD_IMAGE" --build-arg "DOCKER_CLI_IMAGE=$CLI_IMAGE" \
  --build-arg NPM_FLAGS=--offline --build-arg "VERSION=$act_version"

# Old builds of our images are now dangling: drop them.
docker image prune -f --filter label=sa.hash >/dev/null 2>&1 || true
sa_log "all images ready in $(sa_since "$t_all")"
bash "$SA_ROOT/scripts/build-haproxy-image.sh"   # sa/docker-api-proxy:dev (HAProxy allow-list in front of the Docker socket)
bash "$SA_ROOT/scripts/build-tool-images.sh"   # Traefik, Pebble (pinned, FROM scratch)
