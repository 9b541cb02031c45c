/** ReadyEndpoints (src/wake/ready-endpoints.ts): the fast path's endpoint cache and round-robin. */
import t from 'tap';
import { ReadyEndpoints } from '../../../src/wake/ready-endpoints.js';

t.test('ReadyEndpoints: round-robin, and forgetting one endpoint or all', async (t) => {
  const endpoints = new ReadyEndpoints();
  const a = { ip: '10.0.0.1', port: 80, taskId: 'a' };
  const b = { ip: '10.0.0.2', port: 80, taskId: 'b' };
  t.equal(endpoints.next('web'), undefined, 'unknown app');
  endpoints.set('web', [a, b]);
  t.same([endpoints.next('web'), endpoints.next('web'), endpoints.next('web')], [a, b, a]);
  endpoints.forget('web', a);
  t.same([endpoints.next('web'), endpoints.next('web')], [b, b], 'the other one stays');
  endpoints.forget('web', b);
  t.equal(endpoints.next('web'), undefined, 'the last one gone: the app must be checked again');
  endpoints.set('web', [a, b]);
  endpoints.forget('web');
  t.equal(endpoints.next('web'), undefined, 'all forgotten');
});
