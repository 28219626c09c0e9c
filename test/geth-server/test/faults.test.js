'use strict';
// Fault injection, query log and control API.

const { test, before, after, describe, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const zlib = require('node:zlib');
const { startServer } = require('../testlib/helpers');

const Q = '{ blocks(from: 10, to: 14) { number hash transactions { hash value gas to { address } } } }';

let srv;
let logFile;
let tmp;
before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'geth-server-test-'));
  logFile = path.join(tmp, 'queries.jsonl');
  const faultFile = path.join(tmp, 'faults.json');
  fs.writeFileSync(faultFile, JSON.stringify([{ match: { query: 'maxPriorityFeePerGas' }, fault: 'status', status: 502 }]));
  srv = await startServer(['--generate', '300', '--seed', '11', '--txs-per-block', '5-10', '--faults', faultFile, '--log', logFile]);
});
after(async () => {
  if (srv) await srv.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

// POST a query without Accept-Encoding and keep the body as sent.
function rawPost(port, query) {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(JSON.stringify({ query }));
    const req = http.request({
      host: '127.0.0.1', port, method: 'POST', path: '/graphql', agent: false,
      headers: { 'Content-Type': 'application/json', 'Content-Length': data.length },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, raw: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function setFaults(rules) {
  const r = await srv.control('POST', 'faults', rules);
  assert.equal(r.rules, rules.length, JSON.stringify(r));
}

describe('fault rules from --faults FILE', () => {
  test('rules from --faults FILE', async () => {
    const r = await srv.gql('{ maxPriorityFeePerGas }');
    assert.equal(r.status, 502);
    assert.equal((await srv.gql('{ chainID }')).status, 200);
  });
});

describe('fault rules', () => {
  beforeEach(async () => { await srv.control('DELETE', 'faults'); });

  test('latency', async () => {
    await setFaults([{ fault: 'latency', ms: 300 }]);
    const t0 = Date.now();
    const r = await srv.gql(Q);
    assert.equal(r.status, 200);
    assert.ok(Date.now() - t0 >= 290);
    assert.equal(r.json.data.blocks.length, 5);
  });

  test('status with Retry-After', async () => {
    await setFaults([{ fault: 'status', status: 429, retryAfter: 2 }]);
    const r = await srv.gql(Q);
    assert.equal(r.status, 429);
    assert.equal(r.headers['retry-after'], '2');
    await setFaults([{ fault: 'status', status: 503 }]);
    assert.equal((await srv.gql(Q)).status, 503);
  });

  test('hang: no answer until the client gives up', async () => {
    await setFaults([{ fault: 'hang' }]);
    const t0 = Date.now();
    await assert.rejects(srv.gql(Q, undefined, { timeoutMs: 400 }), /client timeout/);
    assert.ok(Date.now() - t0 >= 390);
  });

  test('timeout200: Geth\'s own time-out answer', async () => {
    await setFaults([{ fault: 'timeout200' }]);
    const r = await srv.gql(Q, undefined, { headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-encoding'], undefined, 'no gzip on the time-out answer');
    assert.equal(r.text, '{"errors":[{"message":"request timed out"}]}');
  });

  test('malformed JSON', async () => {
    await setFaults([{ fault: 'malformed' }]);
    const r = await srv.gql(Q);
    assert.equal(r.status, 200);
    assert.equal(r.json, undefined);
    assert.throws(() => JSON.parse(r.text));
  });

  test('truncated: connection closed short of Content-Length, or honest short length', async () => {
    await setFaults([{ fault: 'truncated' }]);
    const r = await srv.gql(Q);
    assert.ok(r.error || !r.complete, 'body must be incomplete');
    assert.ok(Number(r.headers['content-length']) > r.raw.length);
    await setFaults([{ fault: 'truncated', mode: 'length', fraction: 0.3 }]);
    const r2 = await srv.gql(Q);
    assert.equal(Number(r2.headers['content-length']), r2.raw.length);
    assert.equal(r2.json, undefined, 'cut JSON');
    await setFaults([{ fault: 'truncated', mode: 'chunked' }]);
    const r3 = await srv.gql(Q);
    assert.ok(r3.error || !r3.complete);
  });

  test('reset: socket destroyed mid-body', async () => {
    await setFaults([{ fault: 'reset', fraction: 0.5 }]);
    let r;
    try { r = await srv.gql(Q); } catch (e) { r = { error: e }; }
    assert.ok(r.error || !r.complete);
  });

  test('drop: connection closed without an answer', async () => {
    await setFaults([{ fault: 'drop' }]);
    await assert.rejects(srv.gql(Q), /socket hang up|ECONNRESET/);
  });

  test('graphqlError: HTTP 400 with errors and partial data', async () => {
    await setFaults([{ fault: 'graphqlError', message: 'boom' }]);
    const r = await srv.gql(Q);
    assert.equal(r.status, 400);
    assert.deepEqual(r.json.errors, [{ message: 'boom', path: ['blocks', 0, 'transactions'] }]);
    assert.equal(r.json.data.blocks.length, 5);
    assert.equal(r.json.data.blocks[0].transactions, null);
    assert.ok(Array.isArray(r.json.data.blocks[1].transactions));
  });

  test('oversize: valid response padded to N MiB', async () => {
    const plain = await srv.gql(Q);
    await setFaults([{ fault: 'oversize', mb: 3 }]);
    const r = await srv.gql(Q);
    assert.equal(r.status, 200);
    assert.ok(r.raw.length >= 3 * 1024 * 1024);
    assert.deepEqual(r.json, plain.json);
    const gz = await srv.gql(Q, undefined, { headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.ok(gz.raw.length < 1024 * 1024 && gz.text.length >= 3 * 1024 * 1024);
  });

  test('deepNest: deeply nested JSON', async () => {
    await setFaults([{ fault: 'deepNest', depth: 50000 }]);
    const r = await srv.gql(Q);
    assert.equal(r.status, 200);
    assert.ok(r.text.startsWith('{"data":{"blocks":[[[[['));
    assert.equal(r.text.length, '{"data":{"blocks":'.length + 100000 + 2);
  });

  test('wrongTypes, missingFields, hugeNumbers', async () => {
    await setFaults([{ fault: 'wrongTypes' }]);
    let r = await srv.gql(Q);
    assert.equal(r.status, 200);
    assert.notEqual(typeof r.json.data.blocks[0].number, 'string');
    assert.ok(!Array.isArray(r.json.data.blocks[0].transactions));

    await setFaults([{ fault: 'wrongTypes', mode: 'numbers' }]);
    r = await srv.gql(Q);
    assert.equal(r.json.data.blocks[0].number, 10, 'Long as JSON number like Geth < 1.12');
    assert.equal(typeof r.json.data.blocks[0].transactions[0].value, 'string', 'BigInt stays hex');

    await setFaults([{ fault: 'missingFields', fields: ['hash'] }]);
    r = await srv.gql(Q);
    assert.equal(r.json.data.blocks[0].hash, undefined);
    assert.equal(r.json.data.blocks[0].transactions[0].hash, undefined);
    assert.ok(r.json.data.blocks[0].number);

    await setFaults([{ fault: 'hugeNumbers' }]);
    r = await srv.gql(Q);
    assert.match(r.json.data.blocks[0].transactions[0].value, /^0x[0-9a-f]{80}$/);
    assert.match(r.json.data.blocks[0].hash, /^0x[0-9a-f]{64}$/, 'hashes untouched');
  });

  test('wrongTypes mode set: any JSON value in the selected fields', async () => {
    for (const value of [null, 1.5, -1, [], {}, 'zz', true]) {
      await setFaults([{ fault: 'wrongTypes', mode: 'set', fields: ['gas', 'number'], value }]);
      const r = await srv.gql(Q);
      assert.equal(r.status, 200);
      assert.deepEqual(r.json.data.blocks[0].number, value);
      assert.deepEqual(r.json.data.blocks[0].transactions[0].gas, value);
      assert.match(r.json.data.blocks[0].hash, /^0x[0-9a-f]{64}$/, 'other fields untouched');
    }
    await assert.rejects(setFaults([{ fault: 'wrongTypes', mode: 'set' }]));
  });

  test('gzipBomb: small gzip body that inflates to mb MiB of valid JSON', async () => {
    await setFaults([{ fault: 'gzipBomb', mb: 8 }]);
    // no Accept-Encoding: a hostile node sends gzip anyway
    const r = await rawPost(srv.port, Q);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.ok(r.raw.length < 64 * 1024, `compressed size ${r.raw.length}`);
    const text = zlib.gunzipSync(r.raw).toString();
    assert.equal(text.length, 8 * 1024 * 1024);
    assert.deepEqual(JSON.parse(text), { data: { blocks: [] } });
  });

  test('badGzip: Content-Encoding gzip on bytes that do not inflate', async () => {
    await setFaults([{ fault: 'badGzip' }]);
    const r = await rawPost(srv.port, Q);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.throws(() => zlib.gunzipSync(r.raw));
  });

  test('drip: the correct answer a few bytes at a time', async () => {
    await setFaults([]);
    const want = (await srv.gql(Q)).text;
    await setFaults([{ fault: 'drip', bytes: Math.ceil(want.length / 4), ms: 100 }]);
    const t0 = Date.now();
    const r = await srv.gql(Q);
    assert.equal(r.status, 200);
    assert.equal(r.text, want);
    assert.ok(Date.now() - t0 >= 290, 'three pauses between four pieces');
  });

  test('match by block range, query regex, times, first match wins', async () => {
    await setFaults([
      { match: { blocks: [100, 110] }, fault: 'status', status: 502 },
      { match: { query: 'gasPrice' }, fault: 'status', status: 500, times: 1 },
      { match: { query: 'gasPrice' }, fault: 'status', status: 503 },
    ]);
    assert.equal((await srv.gql('{ blocks(from: 0, to: 50) { number } }')).status, 200);
    assert.equal((await srv.gql('{ blocks(from: 105, to: 120) { number } }')).status, 502);
    assert.equal((await srv.gql('query($f: Long, $t: Long) { blocks(from: $f, to: $t) { number } }', { f: '0x5a', t: '0x64' })).status, 502);
    assert.equal((await srv.gql('{ block(number: 107) { number } }')).status, 502);
    assert.equal((await srv.gql('{ logs(filter: {fromBlock: 111, toBlock: 120}) { index } }')).status, 200);
    assert.equal((await srv.gql('{ logs(filter: {fromBlock: 90, toBlock: 100}) { index } }')).status, 502);
    assert.equal((await srv.gql('{ gasPrice }')).status, 500);
    assert.equal((await srv.gql('{ gasPrice }')).status, 503);
    assert.equal((await srv.gql('{ chainID }')).status, 200);
    const list = await srv.control('GET', 'faults');
    assert.equal(list[1]._applied, 1);
    const bad = await srv.request({ method: 'POST', path: '/control/faults', body: [{ fault: 'nope' }] });
    assert.equal(bad.status, 400);
  });
});

describe('query log', () => {
  test('every request is logged; DELETE clears; --log writes JSON lines', async () => {
    await srv.control('DELETE', 'faults');
    await srv.control('DELETE', 'log');
    await srv.gql('query Q($n: Long) { block(number: $n) { number } }', { n: 5 }, { body: { query: 'query Q($n: Long) { block(number: $n) { number } }', variables: { n: 5 }, operationName: 'Q' } });
    await setFaults([{ fault: 'status', status: 503 }]);
    await srv.gql('{ chainID }');
    const log = await srv.control('GET', 'log');
    assert.equal(log.length, 2);
    assert.equal(log[0].query, 'query Q($n: Long) { block(number: $n) { number } }');
    assert.deepEqual(log[0].variables, { n: 5 });
    assert.equal(log[0].operationName, 'Q');
    assert.equal(log[0].status, 200);
    assert.ok(log[0].bytes > 0);
    assert.equal(log[0].fault, null);
    assert.deepEqual(log[0].range, [5, 5]);
    assert.equal(log[1].status, 503);
    assert.equal(log[1].fault, 'status');
    assert.ok(log[1].seq > log[0].seq);
    await srv.control('DELETE', 'log');
    assert.deepEqual(await srv.control('GET', 'log'), []);
    await srv.control('DELETE', 'faults');
    const lines = fs.readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(lines.length >= 2);
    for (const k of ['seq', 'query', 'variables', 'operationName', 'status', 'bytes', 'fault']) assert.ok(k in lines[0], k);
  });

  test('SIGTERM stops the server cleanly', async () => {
    const s = await startServer(['--generate', '10']);
    const code = await s.stop();
    assert.equal(code, 0);
  });
});
