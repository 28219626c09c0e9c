'use strict';
// Smoke checks of bench/compare's pieces (no timing): the floor's curl replay
// sends exactly the requests it was built from, and ethereum-etl (when its
// venv from bench/compare exists) reads this server's JSON-RPC and exports
// every transaction GraphQL reports.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startServer } = require('../testlib/helpers');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CACHE = process.env.ETHWHALE_CACHE || '/var/cache/ethwhale_fdw';
const ETL_PY = path.join(CACHE, 'bench', 'venv-etl', 'bin', 'python');
const Q = 'query($from: Long!, $to: Long!) { blocks(from: $from, to: $to) {number timestamp transactions{index value}} }';

let srv;
let tmp;
before(async () => {
  srv = await startServer(['--generate', '60', '--seed', '4', '--txs-per-block', '10-20']);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ew-bench-smoke-'));
});
after(async () => {
  if (srv) await srv.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function have(cmd) {
  try { execFileSync(cmd, ['--version'], { stdio: 'ignore' }); return true; } catch (e) { return false; }
}

test('the floor replays the logged requests byte for byte', { skip: !have('curl') && 'curl not installed' }, async () => {
  await srv.control('DELETE', 'log');
  // gzip asked for by two of them: the wrapper's option compression decides
  // per server, and the floor must ask for it exactly where they did
  for (const [f, t, gz] of [['0x1', '0x14', true], ['0x15', '0x28', false], ['0x29', '0x3b', true]]) {
    const r = await srv.gql(Q, { from: f, to: t }, gz ? { headers: { 'Accept-Encoding': 'gzip' } } : {});
    assert.equal(r.status, 200);
  }
  const sent = await srv.control('GET', 'log');
  const logFile = path.join(tmp, 'log.json');
  fs.writeFileSync(logFile, JSON.stringify(sent));
  const cfg = execFileSync('python3', [path.join(ROOT, 'bench', 'compare.py'), 'replay', logFile, srv.url, path.join(tmp, 'floor')])
    .toString().trim();
  await srv.control('DELETE', 'log');
  execFileSync('curl', ['-sS', '--parallel', '--parallel-max', '2', '-K', cfg]);
  const replayed = await srv.control('GET', 'log');
  assert.equal(replayed.length, 3);
  const key = (e) => JSON.stringify([e.query, e.variables, e.status, e.jsonBytes, e.bytes,
    /gzip/.test(e.headers['accept-encoding'] || '')]);
  assert.deepEqual(replayed.map(key).sort(), sent.map(key).sort(),
    'same queries, variables, answers and gzip as the original requests');
  assert.notEqual(sent[0].bytes, sent[0].jsonBytes, 'the first was sent gzipped');
});

test('the JSON-RPC floor replays the logged batches: same calls, ids and answers, bodies over the log cut rebuilt',
  { skip: !have('curl') && 'curl not installed' }, async () => {
    await srv.control('DELETE', 'log');
    // the wrapper's body format (jsonrpc.c begin_call); enough calls make a body
    // longer than the 10,000 characters the log keeps of it (the third)
    const batch = (from, n, full) => '[' + Array.from({ length: n }, (_, i) =>
      `{"jsonrpc":"2.0","id":${(from + i) * 16},"method":"eth_getBlockByNumber","params":["0x${(from + i).toString(16)}",${full}]}`).join(',') + ']';
    const once = batch(1, 59, false).slice(1, -1);
    // the third: 177 calls, each block three times with the same id (as a
    // retried chunk's would be), a body over the cut
    const bodies = [batch(1, 20, true), batch(21, 39, true), `[${once},${once},${once}]`];
    assert.ok(bodies[2].length > 10000 && bodies[0].length < 10000);
    for (const b of bodies) {
      const r = await srv.request({ path: '/', body: b, headers: { 'Accept-Encoding': 'gzip' } });
      assert.equal(r.status, 200);
    }
    const sent = (await srv.control('GET', 'log')).filter((e) => e.path === '/');
    assert.equal(sent.length, 3);
    assert.equal(sent[2].query.length, 10000, 'the log cut the long body');
    const logFile = path.join(tmp, 'rpclog.json');
    fs.writeFileSync(logFile, JSON.stringify(sent));
    const rpcUrl = srv.url.replace(/graphql$/, '');
    const cfg = execFileSync('python3', [path.join(ROOT, 'bench', 'compare.py'), 'replay', logFile, rpcUrl, path.join(tmp, 'floor-rpc')])
      .toString().trim();
    const files = fs.readdirSync(path.dirname(cfg)).filter((f) => f.endsWith('.json')).sort();
    assert.deepEqual(files.map((f) => fs.readFileSync(path.join(path.dirname(cfg), f), 'utf8')), bodies,
      'every body byte for byte, the cut one rebuilt from its calls');
    await srv.control('DELETE', 'log');
    execFileSync('curl', ['-sS', '--parallel', '--parallel-max', '2', '-K', cfg]);
    const replayed = (await srv.control('GET', 'log')).filter((e) => e.path === '/');
    const key = (e) => JSON.stringify([e.rpc, e.batch, e.status, e.jsonBytes, e.bytes, e.rpcErrors]);
    assert.deepEqual(replayed.map(key).sort(), sent.map(key).sort(),
      'same calls (method, params, id), answers and gzip as the original requests');
  });

test('the JSON-RPC replay refuses a cut body its calls do not rebuild', async () => {
  const body = '[' + Array.from({ length: 130 }, (_, i) => `{"jsonrpc": "2.0", "id": ${i}, "method": "eth_chainId"}`).join(', ') + ']';
  await srv.control('DELETE', 'log');
  assert.equal((await srv.request({ path: '/', body })).status, 200);
  const logFile = path.join(tmp, 'rpclog-spaced.json');
  fs.writeFileSync(logFile, JSON.stringify(await srv.control('GET', 'log')));
  assert.throws(() => execFileSync('python3', [path.join(ROOT, 'bench', 'compare.py'), 'replay', logFile,
    srv.url.replace(/graphql$/, ''), path.join(tmp, 'floor-rpc-spaced')], { stdio: ['ignore', 'pipe', 'pipe'] }),
  /could not be rebuilt/);
});

test('ethereum-etl exports every transaction from the JSON-RPC endpoint',
  { skip: !fs.existsSync(ETL_PY) && 'no ethereum-etl venv (bench/compare creates it)' }, async () => {
    const out = path.join(tmp, 'txs.csv');
    const blocks = path.join(tmp, 'blocks.csv');
    execFileSync(ETL_PY, ['-m', 'ethereumetl', 'export_blocks_and_transactions', '-s', '1', '-e', '59', '-b', '25',
      '-w', '2', '-p', srv.url.replace(/graphql$/, ''), '--blocks-output', blocks, '--transactions-output', out],
    { stdio: ['ignore', 'ignore', 'pipe'] });
    const g = (await srv.gql(Q, { from: '0x1', to: '0x3b' })).json.data.blocks;
    const want = new Map();
    for (const b of g) for (const t of b.transactions) want.set(`${Number(b.number)}:${Number(t.index)}`, BigInt(t.value).toString());
    const lines = fs.readFileSync(out, 'utf8').trim().split('\n');
    const head = lines[0].split(',');
    const col = (n) => head.indexOf(n);
    const got = new Map();
    for (const l of lines.slice(1)) {
      const c = l.split(',');
      got.set(`${c[col('block_number')]}:${c[col('transaction_index')]}`, c[col('value')]);
    }
    assert.equal(got.size, want.size);
    assert.deepEqual(got, want);
    assert.equal(fs.readFileSync(blocks, 'utf8').trim().split('\n').length, 60, 'a header and 59 blocks');
  });
