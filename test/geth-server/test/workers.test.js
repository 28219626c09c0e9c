'use strict';
// --workers N (used by bench/compare --server-workers): several processes
// answer on one port with the same generated chain, /control/log merges
// their request logs, and controls that would change one worker's state only
// are refused.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer } = require('../testlib/helpers');

const Q = 'query($from: Long!, $to: Long!) { blocks(from: $from, to: $to) {number hash transactions{hash value}} }';

let one;
let two;
before(async () => {
  one = await startServer(['--generate', '200', '--seed', '9']);
  two = await startServer(['--generate', '200', '--seed', '9', '--workers', '2']);
});
after(async () => {
  if (one) await one.stop();
  if (two) await two.stop();
});

test('every worker serves the same chain as a single process', async () => {
  await two.control('DELETE', 'log');
  const ranges = Array.from({ length: 8 }, (_, i) => ({ from: `0x${(i * 20 + 1).toString(16)}`, to: `0x${(i * 20 + 20).toString(16)}` }));
  const want = await Promise.all(ranges.map((v) => one.gql(Q, v)));
  const got = await Promise.all(ranges.map((v) => two.gql(Q, v)));
  for (let i = 0; i < ranges.length; i++) {
    assert.equal(got[i].status, 200);
    assert.deepEqual(got[i].json, want[i].json, `blocks ${ranges[i].from}..${ranges[i].to}`);
  }
  const log = await two.control('GET', 'log');
  assert.equal(log.length, ranges.length, 'the merged log has every request once');
  assert.ok(new Set(log.map((e) => e.worker)).size === 2, 'both workers answered (8 concurrent requests)');
  const times = log.map((e) => e.time);
  assert.deepEqual(times, [...times].sort(), 'merged in arrival order');
});

test('DELETE /control/log clears every worker', async () => {
  await two.control('DELETE', 'log');
  await Promise.all([1, 2, 3, 4].map(() => two.gql(Q, { from: '0x1', to: '0x2' })));
  const r = await two.control('DELETE', 'log');
  assert.equal(r.cleared, 4);
  assert.deepEqual(await two.control('GET', 'log'), []);
});

test('controls that change one worker only are refused', async () => {
  const r = await two.request({ method: 'POST', path: '/control/head', body: { number: 5 } });
  assert.equal(r.status, 501);
  assert.match(r.json.error, /--workers/);
  const f = await two.request({ method: 'POST', path: '/control/faults', body: [] });
  assert.equal(f.status, 501);
  const h = await two.control('GET', 'health');
  assert.equal(h.head, 199, 'the head is untouched');
});

test('SIGTERM to the primary stops the workers', async () => {
  const s = await startServer(['--generate', '10', '--workers', '2']);
  const r = await s.gql(Q, { from: '0x1', to: '0x1' });
  assert.equal(r.status, 200);
  const pid = (await s.control('GET', 'log'))[0].worker;
  assert.equal(await s.stop(), 0);
  await new Promise((res) => setTimeout(res, 300));
  assert.throws(() => process.kill(pid, 0), /ESRCH/, `worker ${pid} is gone`);
});
