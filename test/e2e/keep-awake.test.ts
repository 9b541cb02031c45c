/**
 * Keep-awake on the real swarm: an app asleep with a window that starts within a minute is woken
 * at the window's start (lead 0) and kept up inside it although it is idle; a second app is woken
 * its lead time ahead. The window is written in Asia/Kolkata (UTC+05:30), so the half-hour offset
 * must be right for the wake to happen on time.
 */
import { DateTime } from 'luxon';
import t from 'tap';
import { LABELS } from '../../src/labels.js';
import { startActivator, type RunningActivator } from '../helpers/activator.js';
import { createApp, runId, serviceState, waitFor } from '../helpers/swarm.js';

const run = runId('keep');
let activator: RunningActivator;
const ZONE = 'Asia/Kolkata';

t.before(async () => {
  activator = await startActivator({
    name: `${run}-activator`,
    run,
    env: { ACTIVATOR_IDLE_CHECK_INTERVAL: '500ms', ACTIVATOR_MIN_AWAKE: '0s', ACTIVATOR_IDLE_TIMEOUT: '1s' },
  });
});
t.teardown(async () => {
  if (!t.passing()) t.comment(await activator?.logs());
  await activator?.stop();
});

t.test('woken at the start of its window (and lead time ahead), never put to sleep inside it', async (t) => {
  // The next minute boundary at least 10 s away, as wall-clock time in the app's zone.
  let start = DateTime.now().setZone(ZONE).setLocale('en').startOf('minute').plus({ minutes: 1 });
  if (start.toMillis() - Date.now() < 10_000) start = start.plus({ minutes: 1 });
  const end = start.plus({ minutes: 2 });
  const window = `${start.toFormat('ccc')} ${start.toFormat('HH:mm')}-${end.toFormat('HH:mm')}`;
  const leadMs = start.toMillis() - Date.now() - 4000; // the second app: woken ~4 s from now

  const onTime = await createApp({ name: `${run}-ontime`, run, labels: { [LABELS.keepAwake]: window, [LABELS.timezone]: ZONE, [LABELS.keepAwakeLead]: '0s' } });
  t.teardown(onTime.remove);
  const early = await createApp({ name: `${run}-early`, run, labels: { [LABELS.keepAwake]: window, [LABELS.timezone]: ZONE, [LABELS.keepAwakeLead]: `${leadMs}ms` } });
  t.teardown(early.remove);
  await activator.waitForApp(onTime.name);
  await activator.waitForApp(early.name);
  t.equal((await serviceState(onTime.name)).replicas, 0, 'asleep before its window');

  const apps = (await (await activator.adminFetch('/api/apps')).json()) as Array<{ service: string; keepAwake: { window: string; timezone: string; active: boolean; next: { start: string } | null } | null }>;
  const listed = apps.find((a) => a.service === onTime.name)?.keepAwake;
  t.match(listed, { window, timezone: ZONE, active: false }, '/api/apps shows the window');
  t.equal(listed?.next?.start, start.toUTC().toISO({ suppressMilliseconds: false }), 'and when it starts, in UTC');

  const earlyWokeAt = await waitFor('the early app woken', async () => ((await serviceState(early.name)).replicas === 1 ? Date.now() : undefined), 30_000, 100);
  const earlyBy = earlyWokeAt - (start.toMillis() - leadMs);
  t.ok(earlyBy >= -200 && earlyBy < 2500, `woken ${earlyBy} ms after start − lead (the scheduler looks every second)`);
  t.equal((await serviceState(onTime.name)).replicas, 0, 'the lead-0 app is still asleep then');

  const wokeAt = await waitFor('the on-time app woken', async () => ((await serviceState(onTime.name)).replicas === 1 ? Date.now() : undefined), 90_000, 100);
  const late = wokeAt - start.toMillis();
  t.ok(late >= -200 && late < 2500, `woken ${late} ms after its window started`);
  t.match((await serviceState(onTime.name)).labels[LABELS.stateReason], `woken: keep-awake ${window}`, 'the reason says why');

  // Idle timeout 1 s, checked every 500 ms: without the window it would sleep within ~2 s.
  const until = Date.now() + 6000;
  let min = 1;
  while (Date.now() < until) {
    min = Math.min(min, (await serviceState(onTime.name)).replicas, (await serviceState(early.name)).replicas);
    await new Promise((r) => setTimeout(r, 250));
  }
  t.equal(min, 1, 'both stayed up for 6 s inside the window (idle timeout 1 s)');
  const after = (await (await activator.adminFetch('/api/apps')).json()) as Array<{ service: string; keepAwake: { active: boolean } | null }>;
  t.equal(after.find((a) => a.service === onTime.name)?.keepAwake?.active, true, 'active now');
});
