// swarm-activator dashboard: one ES module, no build step, no framework.
// Data arrives only through the live feed (GET /api/events, server-sent events); the page never
// polls. Everything from the server is put in the page as text (textContent), never as markup:
// app names, hosts and reasons come from service labels.

const $ = (sel, root = document) => root.querySelector(sel);
const rows = new Map(); // service -> { row, app }
let apps = new Map(); // service -> app view
let role = null;
let source = null;
let clockSkewMs = 0; // server time - browser time, from the snapshot

const UNGROUPED = 'ungrouped';
const STATE_TEXT = { asleep: 'asleep', waking: 'waking', awake: 'awake', failed: 'failed', 'backing-off': 'backing off' };

// ---- formatting ---------------------------------------------------------------------------------

function formatDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${Math.round(ms / 100) / 10}s`.replace('.0s', 's');
  let s = Math.round(ms / 1000);
  const parts = [];
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]]) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  return parts.slice(0, 2).join('');
}

function secondsText(ms) {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

function ago(iso) {
  if (!iso) return '';
  const at = typeof iso === 'number' ? iso : Date.parse(iso);
  if (!Number.isFinite(at)) return '';
  const ms = Date.now() + clockSkewMs - at;
  if (ms < 0) return `in ${formatDuration(-ms)}`;
  return ms < 1000 ? 'just now' : `${formatDuration(ms)} ago`;
}

function localTime(iso) {
  const d = new Date(iso);
  return Number.isFinite(d.getTime()) ? d.toLocaleString() : '';
}

/** "Dec 1, 11:10 AM": for the narrow keep-awake column. */
function shortTime(iso) {
  const d = new Date(iso);
  return Number.isFinite(d.getTime()) ? d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }) : '';
}

// ---- API ----------------------------------------------------------------------------------------

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try {
    data = await res.json();
  } catch {
    // no JSON body
  }
  if (res.status === 401) showLogin();
  return { ok: res.ok, status: res.status, data };
}

function appPath(service, action) {
  return `/api/apps/${encodeURIComponent(service)}/${action}`;
}

// ---- rendering ----------------------------------------------------------------------------------

function envOf(app) {
  return app.environment || UNGROUPED;
}

function envSection(env) {
  const container = $('#apps');
  let section = container.querySelector(`section[data-env="${CSS.escape(env)}"]`);
  if (section) return section;
  section = $('#env-template').content.firstElementChild.cloneNode(true);
  section.dataset.env = env;
  $('.env-name', section).textContent = env === UNGROUPED ? 'ungrouped' : env;
  // Environments sorted by name, "ungrouped" last.
  const after = [...container.children].find((s) => env !== UNGROUPED && (s.dataset.env === UNGROUPED || s.dataset.env > env));
  container.insertBefore(section, after ?? null);
  return section;
}

function placeRow(entry, app) {
  const section = envSection(envOf(app));
  const tbody = $('tbody', section);
  if (entry.row.parentElement !== tbody) {
    const old = entry.row.closest('section');
    const after = [...tbody.children].find((r) => r.dataset.service > app.service);
    tbody.insertBefore(entry.row, after ?? null);
    if (old && old !== section && !$('tbody', old).children.length) old.remove();
  }
}

function summarize() {
  for (const section of document.querySelectorAll('section.env')) {
    const list = [...apps.values()].filter((a) => envOf(a) === section.dataset.env);
    const awake = list.filter((a) => a.display.state === 'awake' || a.display.state === 'waking').length;
    $('.env-summary', section).textContent = `${list.length} app${list.length === 1 ? '' : 's'}, ${awake} awake`;
  }
}

function newRow(service) {
  const row = $('#app-template').content.firstElementChild.cloneNode(true);
  row.dataset.service = service;
  $('.wake', row).addEventListener('click', () => act(service, 'wake'));
  $('.sleep', row).addEventListener('click', () => act(service, 'sleep'));
  $('.idle-form', row).addEventListener('submit', (e) => {
    e.preventDefault();
    setIdle(service, row);
  });
  const idle = $('.idle-input', row);
  idle.addEventListener('input', () => (idle.dataset.dirty = '1'));
  $('.keep-form', row).addEventListener('submit', (e) => {
    e.preventDefault();
    keepAwake(service, row);
  });
  return row;
}

function render(app) {
  let entry = rows.get(app.service);
  if (!entry) {
    entry = { row: newRow(app.service), app };
    rows.set(app.service, entry);
  }
  entry.app = app;
  entry.receivedAt = Date.now();
  const { row } = entry;
  const d = app.display;
  row.dataset.state = d.state;
  $('.service', row).textContent = app.service;
  $('.hosts', row).textContent = app.hosts.join(', ');
  const badge = $('.badge', row);
  badge.textContent = STATE_TEXT[d.state] ?? d.state;
  badge.dataset.state = d.state;
  const since = $('.since', row);
  since.dataset.at = d.since ?? '';
  since.title = d.since ? localTime(d.since) : '';
  $('.reason', row).textContent = d.reason ?? '';

  const idle = $('.idle-input', row);
  if (document.activeElement !== idle && !idle.dataset.dirty) idle.value = formatDuration(app.idleTimeoutMs);

  const activity = $('.activity-at', row);
  activity.dataset.at = app.lastActivity ?? '';
  activity.title = app.lastActivity ? localTime(app.lastActivity) : '';
  $('.activity-source', row).textContent = app.lastActivitySource ? `seen by ${app.lastActivitySource}` : '';
  $('.open', row).textContent = String(app.open);

  const list = $('.wake-list', row);
  list.replaceChildren(
    ...app.wakes.slice(0, 5).map((w) => {
      const li = document.createElement('li');
      li.textContent = w.outcome === 'ready' ? secondsText(w.ms) : `failed (${w.code ?? 'error'}) after ${secondsText(w.ms)}`;
      li.title = `${localTime(w.at)}: ${w.reason}`;
      li.className = w.outcome;
      return li;
    }),
  );
  if (app.wakes.length === 0) list.replaceChildren(Object.assign(document.createElement('li'), { textContent: 'none yet', className: 'none' }));
  $('.usual', row).textContent = app.usualWakeMs !== null ? `usually ${secondsText(app.usualWakeMs)}` : '';

  $('.keep-window', row).textContent = keepAwakeText(app);
  $('.saved', row).textContent = savedText(entry);
  $('.wake', row).disabled = d.state === 'waking' || d.state === 'awake';
  $('.sleep', row).disabled = d.state !== 'awake';
  placeRow(entry, app);
  refreshTimes(row);
}

/** The keep-awake window (label swarm-activator.keep-awake) and where now stands in it. */
function keepAwakeText(app) {
  const k = app.keepAwake;
  const held = app.keepAwakeUntil ? `kept awake until ${shortTime(app.keepAwakeUntil)}` : '';
  if (!k) return held;
  const parts = [`${k.window} (${k.timezone})`];
  if (held) parts.unshift(held);
  if (k.holding && k.current) parts.push(`awake until ${shortTime(k.current.end)}`);
  else if (k.next) parts.push(`next ${shortTime(k.next.start)}`);
  return parts.join(' · ');
}

/**
 * Memory-hours sleeping saved (all time), and what it is counted from. While the app sleeps the
 * figure grows by the memory it frees; the page adds that itself between updates.
 */
function savedText(entry) {
  const s = entry.app.savings;
  if (!s) return '';
  if (s.savedGiBHours === null) return s.asleepSeconds > 0 ? `asleep ${formatDuration(s.asleepSeconds * 1000)}, memory unknown` : '';
  let gibHours = s.savedGiBHours;
  if (entry.app.display.state === 'asleep' && Number.isFinite(s.memoryPerTaskBytes) && Number.isFinite(s.tasksFreed)) {
    gibHours += ((s.memoryPerTaskBytes * s.tasksFreed) / 1024 ** 3) * ((Date.now() - entry.receivedAt) / 3_600_000);
  }
  const amount = gibHours < 0.1 ? gibHours.toFixed(4) : gibHours < 10 ? gibHours.toFixed(2) : Math.round(gibHours).toString();
  return `${amount} GiB·h${s.memorySource && s.memorySource !== 'unknown' ? ` (${s.memorySource})` : ''}`;
}

function refreshTimes(root = document) {
  for (const entry of rows.values()) if (root === document || root === entry.row) $('.saved', entry.row).textContent = savedText(entry);
  for (const el of root.querySelectorAll('.since, .activity-at')) {
    const at = el.dataset.at;
    el.textContent = at ? (el.classList.contains('since') ? `since ${ago(Number(at) || at)}` : ago(Number(at) || at)) : el.classList.contains('since') ? '' : 'none seen';
  }
}

function removeApp(service) {
  const entry = rows.get(service);
  if (!entry) return;
  const section = entry.row.closest('section');
  entry.row.remove();
  rows.delete(service);
  apps.delete(service);
  if (section && !$('tbody', section).children.length) section.remove();
}

function notice(text) {
  const el = $('#notice');
  el.textContent = text;
  el.hidden = !text;
}

// ---- actions ------------------------------------------------------------------------------------

function rowMessage(row, cls, text, ok) {
  const el = $(cls, row);
  el.textContent = text;
  el.dataset.ok = ok ? '1' : '0';
}

async function act(service, action) {
  const row = rows.get(service)?.row;
  if (!row) return;
  rowMessage(row, '.action-msg', action === 'wake' ? 'waking…' : 'putting to sleep…', true);
  const r = await api('POST', appPath(service, action));
  if (action === 'wake') rowMessage(row, '.action-msg', r.ok ? `awake in ${secondsText(r.data.ms)}` : r.data?.message ?? `error ${r.status}`, r.ok);
  else rowMessage(row, '.action-msg', r.ok ? r.data.outcome.replace('-', ' ') : `${r.data?.outcome ?? r.data?.message ?? 'error'} (${r.status})`, r.ok);
}

async function setIdle(service, row) {
  const input = $('.idle-input', row);
  const r = await api('PUT', appPath(service, 'idle-timeout'), { idleTimeout: input.value });
  if (r.ok) delete input.dataset.dirty;
  rowMessage(row, '.idle-msg', r.ok ? `set to ${r.data.idleTimeout}` : r.data?.message ?? `error ${r.status}`, r.ok);
}

async function keepAwake(service, row) {
  const value = $('.keep-until', row).value;
  if (!value) return rowMessage(row, '.action-msg', 'pick a date and time first', false);
  const until = new Date(value).toISOString(); // datetime-local is the browser's local time
  const r = await api('PUT', appPath(service, 'keep-awake'), { until });
  rowMessage(row, '.action-msg', r.ok ? `kept awake until ${shortTime(until)}` : r.data?.message ?? `error ${r.status}`, r.ok);
}

// ---- live feed ----------------------------------------------------------------------------------

function setLive(state, text) {
  const el = $('#live');
  el.dataset.state = state;
  el.textContent = text;
}

function connect() {
  source?.close();
  source = new EventSource('/api/events');
  source.addEventListener('open', () => setLive('on', 'live'));
  source.addEventListener('snapshot', (e) => {
    const data = JSON.parse(e.data);
    clockSkewMs = Date.parse(data.serverTime) - Date.now();
    const seen = new Set();
    apps = new Map();
    for (const app of data.apps) {
      apps.set(app.service, app);
      seen.add(app.service);
      render(app);
    }
    for (const service of [...rows.keys()]) if (!seen.has(service)) removeApp(service);
    notice(data.apps.length === 0 ? 'No apps are managed by this activator yet.' : '');
    summarize();
  });
  source.addEventListener('app', (e) => {
    const app = JSON.parse(e.data);
    apps.set(app.service, app);
    render(app);
    notice('');
    summarize();
  });
  source.addEventListener('removed', (e) => {
    removeApp(JSON.parse(e.data).service);
    summarize();
  });
  source.addEventListener('error', async () => {
    if (source.readyState === EventSource.CLOSED) {
      // Refused (session over, too many streams): find out which before trying again.
      setLive('off', 'offline');
      const s = await api('GET', '/api/session');
      if (s.ok) setTimeout(connect, 5000);
    } else setLive('retry', 'reconnecting…');
  });
}

// ---- session ------------------------------------------------------------------------------------

function showLogin() {
  source?.close();
  source = null;
  setLive('off', 'offline');
  role = null;
  $('#login').hidden = false;
  $('#logout').hidden = true;
  $('#role').textContent = '';
  $('#apps').replaceChildren();
  rows.clear();
  apps.clear();
  notice('');
  $('#token').focus();
}

function start(sessionRole) {
  role = sessionRole;
  document.body.classList.toggle('read-only', role !== 'operate');
  $('#login').hidden = true;
  $('#logout').hidden = false;
  $('#role').textContent = role === 'operate' ? 'operator' : 'read-only';
  connect();
}

$('#login').addEventListener('submit', async (e) => {
  e.preventDefault();
  const err = $('#login-error');
  err.hidden = true;
  const token = $('#token').value.trim();
  const res = await fetch('/login', { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
  if (!res.ok) {
    err.textContent = res.status === 401 ? 'That token was refused.' : `Login failed (${res.status}).`;
    err.hidden = false;
    return;
  }
  $('#token').value = '';
  const s = await api('GET', '/api/session');
  if (s.ok) start(s.data.role);
});

$('#logout').addEventListener('click', async () => {
  await fetch('/logout', { method: 'POST', credentials: 'same-origin' });
  showLogin();
});

// Relative times ("3m ago") are redrawn from data the page has; nothing is fetched for them.
setInterval(() => refreshTimes(), 5000);

const session = await api('GET', '/api/session');
if (session.ok) start(session.data.role);
