/**
 * The "waking up" page for browsers (strategy waiting-page). It long-polls <prefix>/wait on the
 * same Host and reloads when that answers: 204 from the activator once the app is ready, or any
 * answer from the app itself once Traefik routes to it directly.
 */
import { escapeHtml } from './error-page.js';

export function waitingPageHtml(app: string, waitPath: string, retrySeconds: number): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Waking up ${escapeHtml(app)}…</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<noscript><meta http-equiv="refresh" content="${retrySeconds}"></noscript>
<style>body{font:16px/1.5 system-ui,sans-serif;display:grid;place-items:center;min-height:90vh;color:#333}
.s{width:2rem;height:2rem;border:3px solid #ddd;border-top-color:#555;border-radius:50%;animation:r 1s linear infinite;margin:1rem auto}
@keyframes r{to{transform:rotate(1turn)}}</style></head>
<body><main><div class="s"></div><p>Waking up <b>${escapeHtml(app)}</b>. This page reloads when it is ready.</p><p id="e"></p></main>
<script>
(function poll(attempt){
  fetch(${JSON.stringify(waitPath)}, {cache: 'no-store'}).then(function (r) {
    var err = r.headers.get('x-activator-error');
    if (!err) return location.reload();
    if (err === 'SA_WAKE_TIMEOUT' || err === 'SA_APP_FAILED') {
      return r.json().then(function (b) { document.getElementById('e').textContent = b.message; });
    }
    setTimeout(function () { poll(attempt + 1); }, 1000);
  }, function () { setTimeout(function () { poll(attempt + 1); }, Math.min(5000, 500 * (attempt + 1))); });
})(0);
</script></body></html>`;
}
