#!/usr/bin/env bash
# gitlab-ci-local (npm), pinned, installed once per version under build/tools/, then run with the
# given arguments: `bash scripts/gitlab-ci-local.sh --version`. Used by test/e2e/gitlab-ci.test.ts
# to run examples/gitlab-ci/.gitlab-ci.yml for real (shell executor only: it never pulls images).
# 4.73.0 is the newest release that runs on Node 20 (4.74.0 and later use Node 22's Set methods).
# It copies the project with rsync (Debian's package, installed when missing).
set -euo pipefail
SA_LOG_PREFIX=gitlab-ci-local
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
sa_apt_ensure rsync:rsync >&2
GCL_VERSION="${GCL_VERSION:-4.73.0}"
dir="$SA_ROOT/build/tools/gitlab-ci-local-$GCL_VERSION"
bin="$dir/node_modules/.bin/gitlab-ci-local"
if [[ ! -x "$bin" ]]; then
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-audit --no-fund --prefer-offline --loglevel=error "gitlab-ci-local@$GCL_VERSION" >&2
fi
exec "$bin" "$@"
