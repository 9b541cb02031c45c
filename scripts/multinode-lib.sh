# shellcheck shell=bash
# Names and helpers shared by multinode-up.sh and multinode-down.sh (source after lib.sh).
MN_DIR="$SA_STATE_DIR/multinode"
MN_ENV="$MN_DIR/env"
MN_BRIDGE=sa-mn-br
MN_PREFIX=10.214.0        # bridge .1, node i at .1i
MN_POOL=10.215.0.0/16     # the three-node swarm's overlay pool
MN_NETWORK=sa-mn-net

mn_ns() { echo "sa-mn$1"; }
mn_ip() { echo "$MN_PREFIX.1$1"; }
mn_dir() { echo "$MN_DIR/n$1"; }
mn_docker() {
  local i="$1"
  shift
  DOCKER_HOST="unix://$(mn_dir "$i")/docker.sock" docker "$@"
}

