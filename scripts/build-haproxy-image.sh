#!/usr/bin/env bash
# Build the Docker API proxy image offline (no registry) into the engine at $DOCKER_HOST:
#   sa/docker-api-proxy:dev (also tagged swarm-activator-docker-api:latest, the stack's default)
# Debian's haproxy binary and the libraries ldd lists, imported FROM nothing, with the allow-list
# configuration stack/docker-api-proxy.cfg at /usr/local/etc/haproxy/haproxy.cfg. Skipped when
# the hash of the binary, its libraries and the configuration is unchanged (FORCE=1 rebuilds).
# Called at the end of scripts/build-images.sh.
set -euo pipefail
SA_LOG_PREFIX=images
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IMAGE=sa/docker-api-proxy:dev
STACK_TAG=swarm-activator-docker-api:latest
CFG="$SA_ROOT/stack/docker-api-proxy.cfg"
sa_docker_ok || sa_die "no Docker engine answers at $DOCKER_HOST (run scripts/swarm-up.sh first)"
sa_apt_ensure /usr/sbin/haproxy:haproxy
bin="$(readlink -f /usr/sbin/haproxy)"
mapfile -t libs < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
[[ ${#libs[@]} -gt 0 ]] || sa_die "ldd found no libraries for $bin"
hash="$({ echo "docker-api-proxy v1"; stat -L -c '%n %s %Y' "$bin" "${libs[@]}"; sha256sum "$CFG"; } | sha256sum | cut -c1-16)"

if [[ "${FORCE:-0}" != 1 && "$(docker image inspect -f '{{index .Config.Labels "sa.hash"}}' "$IMAGE" 2>/dev/null || true)" == "$hash" ]]; then
  sa_log "$IMAGE up to date (sa.hash=$hash), skipped"
else
  t=$(sa_now_ms)
  haproxy_version="$("$bin" -v | awk 'NR == 1 { print $3 }')"
  "$bin" -c -q -f "$CFG" || sa_die "$CFG does not parse (haproxy -c)"
  root="$SA_ROOT/build/rootfs/docker-api-proxy"
  rm -rf "$root"
  mkdir -p "$root/usr/sbin" "$root/usr/local/etc/haproxy" "$root/etc" "$root/tmp" "$root/var/run"
  chmod 1777 "$root/tmp"
  cp -L "$bin" "$root/usr/sbin/haproxy"
  for lib in "${libs[@]}"; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  cp "$CFG" "$root/usr/local/etc/haproxy/haproxy.cfg"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$root/etc/group"
  # -W master-worker, -db foreground: PID 1 in the container, logs on stdout.
  tar -C "$root" --numeric-owner --owner=0 --group=0 -c . |
    docker import \
      --change "LABEL sa.hash=$hash" \
      --change "LABEL sa.haproxy-version=$haproxy_version" \
      --change 'EXPOSE 2375' \
      --change 'CMD ["/usr/sbin/haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]' \
      - "$IMAGE" >/dev/null
  sa_log "$IMAGE imported in $(sa_since "$t") (HAProxy $haproxy_version, $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
fi
docker tag "$IMAGE" "$STACK_TAG"
