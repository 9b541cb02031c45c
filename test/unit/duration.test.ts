import t from 'tap';
import { formatDuration, parseDuration } from '../../src/duration.js';

t.test('parses Go-style durations', async (t) => {
  t.equal(parseDuration('500ms'), 500);
  t.equal(parseDuration('30s'), 30_000);
  t.equal(parseDuration('15m'), 900_000);
  t.equal(parseDuration('1h30m'), 5_400_000);
  t.equal(parseDuration('1.5s'), 1500);
  t.equal(parseDuration('2d'), 172_800_000);
  t.equal(parseDuration('45'), 45_000, 'a bare number is seconds');
  t.equal(parseDuration(' 10s '), 10_000, 'surrounding space is ignored');
});

t.test('rejects what is not a duration, saying where', async (t) => {
  t.throws(() => parseDuration(''), /empty/);
  t.throws(() => parseDuration('10x'), /invalid duration "10x"/);
  t.throws(() => parseDuration('5 minutes'), /invalid duration/);
  t.throws(() => parseDuration('-5s'), /invalid duration/);
  t.throws(() => parseDuration('1h 30m'), /at " 30m"/);
});

t.test('formats for people', async (t) => {
  t.equal(formatDuration(250), '250ms');
  t.equal(formatDuration(90_000), '1m30s');
  t.equal(formatDuration(3_600_000), '1h');
});
