#!/usr/bin/env bash
# Images FROM scratch for the pinned third-party components of the test swarm (scripts/tools.sh
# installs the static binaries; this runs it first):
#   sa/traefik:<SA_TRAEFIK_VERSION>   /traefik (ENTRYPOINT, flags as the stack file's `command:`)
#                                      and the host's CA bundle (for a real ACME CA)
#   sa/pebble:<SA_PEBBLE_VERSION>     /pebble (default CMD, config /etc/pebble/config.json: ACME on
#                                      :14000, management on :15000, HTTP-01 on port 80, TLS-ALPN-01
#                                      on 443) and /pebble-challtestsrv, with Pebble's test certs in /certs
# Skipped when the image's sa.hash label matches its inputs (FORCE=1 rebuilds). Called at the end of
# scripts/build-images.sh; needs DOCKER_HOST (scripts/lib.sh).
set -euo pipefail
SA_LOG_PREFIX=tool-images
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$SA_ROOT/scripts/tools.sh" --env

export DOCKER_BUILDKIT=0
BUILD="$SA_ROOT/build/tool-images"
mkdir -p "$BUILD"
sa_docker_ok || sa_die "no Docker engine answers at $DOCKER_HOST (run scripts/swarm-up.sh first)"
bash "$SA_ROOT/scripts/tools.sh" traefik pebble

SA_TRAEFIK_IMAGE="sa/traefik:$SA_TRAEFIK_VERSION"
SA_PEBBLE_IMAGE="sa/pebble:$SA_PEBBLE_VERSION"

# build_scratch IMAGE CONTEXT: docker build of CONTEXT/Dockerfile, skipped when the context's hash
# equals the image's sa.hash label.
build_scratch() {
  local image="$1" ctx="$2" hash t
  hash="$(cd "$ctx" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
  if [[ "${FORCE:-0}" != 1 && "$(docker image inspect -f '{{index .Config.Labels "sa.hash"}}' "$image" 2>/dev/null || true)" == "$hash" ]]; then
    sa_log "$image up to date (sa.hash=$hash), skipped"
    return 0
  fi
  t=$(sa_now_ms)
  if ! docker build --rm --force-rm --label "sa.hash=$hash" -t "$image" "$ctx" >"$ctx.log" 2>&1; then
    tail -n 30 "$ctx.log" >&2
    sa_die "building $image failed (log $ctx.log)"
  fi
  sa_log "$image built in $(sa_since "$t") ($(docker image inspect -f '{{.Size}}' "$image" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
}

# --- Traefik -------------------------------------------------------------------------------------
ctx="$BUILD/traefik"
rm -rf "$ctx"
mkdir -p "$ctx"
cp "$SA_TRAEFIK_BIN" "$ctx/traefik"
cp /etc/ssl/certs/ca-certificates.crt "$ctx/"
cat >"$ctx/Dockerfile" <<EOF
FROM scratch
COPY traefik /traefik
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
LABEL sa.traefik-version="$SA_TRAEFIK_VERSION"
EXPOSE 80 443
ENTRYPOINT ["/traefik"]
EOF
build_scratch "$SA_TRAEFIK_IMAGE" "$ctx"

# --- Pebble + challtestsrv -----------------------------------------------------------------------
ctx="$BUILD/pebble"
rm -rf "$ctx"
mkdir -p "$ctx"
cp "$SA_PEBBLE_DIR/pebble" "$SA_PEBBLE_DIR/pebble-challtestsrv" "$ctx/"
cp -r "$SA_PEBBLE_DIR/certs" "$ctx/certs"
# Pebble's own test config, with the challenge ports where Traefik answers them (80, 443).
cat >"$ctx/config.json" <<'EOF'
{
  "pebble": {
    "listenAddress": "0.0.0.0:14000",
    "managementListenAddress": "0.0.0.0:15000",
    "certificate": "/certs/localhost/cert.pem",
    "privateKey": "/certs/localhost/key.pem",
    "httpPort": 80,
    "tlsPort": 443,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false,
    "retryAfter": { "authz": 1, "order": 1 },
    "keyAlgorithm": "ecdsa",
    "profiles": { "default": { "description": "default", "validityPeriod": 7776000 } }
  }
}
EOF
cat >"$ctx/Dockerfile" <<EOF
FROM scratch
COPY pebble pebble-challtestsrv /
COPY certs /certs
COPY config.json /etc/pebble/config.json
LABEL sa.pebble-version="$SA_PEBBLE_VERSION"
EXPOSE 14000 15000 8053 8055
CMD ["/pebble", "-config", "/etc/pebble/config.json"]
EOF
build_scratch "$SA_PEBBLE_IMAGE" "$ctx"
