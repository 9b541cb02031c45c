#!/usr/bin/env bash
# Smoke-check the swarm and the test images (needs scripts/swarm-up.sh first):
#   sa/sample-app:dev     HTTP echo, /health, /status/<code>, /sse, WebSocket echo on a host-mode port
#   sa/never-healthy:dev  task stays `starting`
#   sa/crash-on-start:dev task fails with "non-zero exit (3)"
# Creates services labelled sa.test=1 and removes them again.
set -euo pipefail
SA_LOG_PREFIX=smoke
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SA_ROOT"
PORT="${SA_SMOKE_PORT:-18099}"
svcs=(sa-smoke sa-smoke-never-healthy sa-smoke-crash)

fail() { echo "smoke: FAIL: $*" >&2; exit 1; }

# wait_for SECONDS CMD... — retry CMD every 0.2 s until it succeeds.
wait_for() {
  local deadline=$(($(sa_now_ms) + $1 * 1000)); shift
  until "$@" >/dev/null 2>&1; do (($(sa_now_ms) < deadline)) || return 1; sleep 0.2; done
}
task_state() { docker service ps "$1" --no-trunc --format '{{.CurrentState}}|{{.Error}}' 2>/dev/null | head -n 1; }

cleanup() { docker service rm "${svcs[@]}" >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup
# Leftovers of an earlier run must be gone first (an old task could still hold the host port).
for svc in "${svcs[@]}"; do
  wait_for 30 bash -c "[[ -z \$(docker ps -aq --filter label=com.docker.swarm.service.name=$svc) ]]" ||
    { echo "smoke: FAIL: old $svc containers still there" >&2; exit 1; }
done

t=$(sa_now_ms)
docker service create -d -q --name sa-smoke --label sa.test=1 --network "$SA_NETWORK" \
  --publish "mode=host,target=80,published=$PORT" sa/sample-app:dev >/dev/null 2>&1
docker service create -d -q --name sa-smoke-never-healthy --label sa.test=1 --network "$SA_NETWORK" \
  sa/never-healthy:dev >/dev/null 2>&1
docker service create -d -q --name sa-smoke-crash --label sa.test=1 --restart-condition none \
  sa/crash-on-start:dev >/dev/null 2>&1

wait_for 30 curl -fsS "127.0.0.1:$PORT/" || fail "sample-app did not answer on 127.0.0.1:$PORT"
sa_log "sample-app answered on 127.0.0.1:$PORT $(sa_since "$t") after service create"

echo_json="$(curl -fsS "127.0.0.1:$PORT/a/b?x=1&x=2" -H 'X-Smoke: 1' --data-binary 'héllo')"
node -e '
  const e = JSON.parse(process.argv[1]);
  const ok = e.method === "POST" && e.path === "/a/b" && e.query.x.join() === "1,2" &&
    e.headers["x-smoke"] === "1" && e.body === "héllo" && e.bodyBytes === 6 && e.hostname && e.pid && e.startedAt;
  if (!ok) { console.error("bad echo", e); process.exit(1); }' "$echo_json" || fail "echo JSON wrong: $echo_json"
[[ "$(curl -fsS "127.0.0.1:$PORT/health")" == ok ]] || fail "/health"
[[ "$(curl -sS -o /dev/null -w '%{http_code}' "127.0.0.1:$PORT/status/503")" == 503 ]] || fail "/status/503"
ticks="$(timeout 1.3 curl -sN "127.0.0.1:$PORT/sse" || true)"
[[ "$(grep -c '^data: tick$' <<<"$ticks")" -ge 2 ]] || fail "/sse sent: $ticks"
sa_log "echo JSON, /health, /status/503 and /sse ok"

node --input-type=module -e '
  import { WebSocket } from "ws";
  const ws = new WebSocket(`ws://127.0.0.1:${process.argv[1]}/any/path`);
  const timer = setTimeout(() => { console.error("ws timeout"); process.exit(1); }, 5000);
  const sent = ["one", Buffer.from([0, 1, 2, 255])];
  const got = [];
  ws.on("open", () => sent.forEach((m) => ws.send(m)));
  ws.on("message", (data, isBinary) => {
    got.push(isBinary ? Buffer.from(data) : data.toString());
    if (got.length === sent.length) {
      const ok = got[0] === "one" && Buffer.isBuffer(got[1]) && got[1].equals(sent[1]);
      clearTimeout(timer); ws.close(); process.exit(ok ? 0 : 1);
    }
  });
  ws.on("error", (e) => { console.error(e.message); process.exit(1); });' "$PORT" || fail "WebSocket echo"
sa_log "WebSocket echo ok (text + binary)"

wait_for 30 bash -c "docker service ps sa-smoke-crash --no-trunc --format '{{.Error}}' | grep -q 'non-zero exit (3)'" ||
  fail "crash-on-start: task state '$(task_state sa-smoke-crash)'"
sa_log "crash-on-start: $(task_state sa-smoke-crash)"

wait_for 30 bash -c "docker service ps sa-smoke-never-healthy --format '{{.CurrentState}}' | grep -q '^Starting'" ||
  fail "never-healthy: task state '$(task_state sa-smoke-never-healthy)'"
sleep "${SA_SMOKE_NEVER_HEALTHY_WAIT:-5}"
st="$(task_state sa-smoke-never-healthy)"
[[ "$st" == Starting* && "$(docker service ps -q sa-smoke-never-healthy | wc -l)" == 1 ]] ||
  fail "never-healthy: expected one task still Starting, got '$st'"
health="$(docker inspect -f '{{.State.Health.Status}} failing={{.State.Health.FailingStreak}}' \
  "$(docker ps -q --filter label=com.docker.swarm.service.name=sa-smoke-never-healthy)")"
sa_log "never-healthy: still ${st%%|*} (container health: $health)"

sa_log "all ok in $(sa_since "$t")"
