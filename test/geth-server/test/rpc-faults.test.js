'use strict';
// Fault rules on JSON-RPC ("/"), the log fields of JSON-RPC requests, and
// the HTTP layer of "/" (rpc/http.go).

const { test, before, after, describe, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const zlib = require('node:zlib');
const { startServer, hex } = require('../testlib/helpers');

let srv;
let tmp;
let logFile;
before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'geth-server-rpc-'));
  logFile = path.join(tmp, 'log.jsonl');
  srv = await startServer(['--generate', '300', '--seed', '11', '--txs-per-block', '5-10', '--log', logFile]);
});
after(async () => {
  if (srv) await srv.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});
beforeEach(async () => { await srv.control('DELETE', 'faults'); });

const call = (method, params, id = 1) => ({ jsonrpc: '2.0', id, method, params });
const post = (body, opts = {}) => srv.request(Object.assign({ path: '/', body }, opts));
const BLOCK = call('eth_getBlockByNumber', ['0x69', true]);
async function setFaults(rules) {
  const r = await srv.request({ path: '/control/faults', body: rules });
  assert.equal(r.status, 200, r.text);
}
// POST without Accept-Encoding, raw body kept
function rawPost(body) {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(JSON.stringify(body));
    const req = http.request({
      host: '127.0.0.1', port: srv.port, method: 'POST', path: '/', agent: false,
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

describe('matching JSON-RPC requests', () => {
  test('match.method (any call of a batch), match.blocks, match.query, match.path', async () => {
    const tx = (await post(call('eth_getBlockByNumber', ['0x65', false]))).json.result.transactions[0];
    await setFaults([
      { match: { method: '^eth_getLogs$' }, fault: 'status', status: 502 },
      { match: { blocks: [100, 110] }, fault: 'status', status: 503 },
      { match: { query: 'eth_getBlockReceipts' }, fault: 'status', status: 500 },
      { match: { path: '/graphql' }, fault: 'status', status: 504 },
    ]);
    assert.equal((await post(call('eth_getLogs', [{ fromBlock: '0x1', toBlock: '0x2' }]))).status, 502);
    assert.equal((await post([call('eth_blockNumber', []), call('eth_getLogs', [{}], 2)])).status, 502);
    assert.equal((await post(call('eth_blockNumber', []))).status, 200);
    assert.equal((await post(BLOCK)).status, 503, 'block 105');
    assert.equal((await post(call('eth_getBlockByNumber', ['0x10', false]))).status, 200);
    assert.equal((await post([call('eth_getBlockByNumber', ['0x10', false]), call('eth_getBalance', ['0x' + '11'.repeat(20), '0x6e'], 2)])).status, 503);
    assert.equal((await post(call('eth_getTransactionReceipt', [tx]))).status, 503, 'the block of a tx hash');
    assert.equal((await post(call('eth_getBlockReceipts', ['0x5']))).status, 500);
    assert.equal((await srv.gql('{ chainID }')).status, 504);
    await setFaults([{ match: { path: '/' }, fault: 'status', status: 504 }, { match: { method: '.' }, fault: 'status', status: 502 }]);
    assert.equal((await srv.gql('{ chainID }')).status, 200, 'neither a "/" nor a method rule touches /graphql');
    assert.equal((await post(call('eth_chainId', []))).status, 504);
  });

  test('graphqlError never matches JSON-RPC, rpcError never /graphql; times and skip count per path', async () => {
    await setFaults([
      { fault: 'graphqlError', message: 'boom' },
      { fault: 'rpcError', code: -32000, message: 'rpc boom', skip: 1, times: 1 },
    ]);
    assert.equal((await post(call('eth_chainId', []))).json.result, '0x539', 'skipped once');
    assert.deepEqual((await post(call('eth_chainId', []))).json.error, { code: -32000, message: 'rpc boom' });
    assert.equal((await post(call('eth_chainId', []))).json.result, '0x539', 'times 1');
    assert.equal((await srv.gql('{ chainID }')).status, 400);
    const list = await srv.control('GET', 'faults');
    assert.equal(list[0]._matched, 1);
    assert.equal(list[1]._matched, 2, 'a rule whose times are used up no longer counts matches');
    assert.equal(list[1]._applied, 1);
  });

  test('rule validation', async () => {
    for (const bad of [
      [{ fault: 'rpcError', message: 'x' }],
      [{ fault: 'rpcError', code: 1 }],
      [{ fault: 'rpcError', code: 1, message: 'x', shape: 'blob' }],
      [{ fault: 'rpcError', code: 1, message: 'x', http: 99 }],
      [{ fault: 'rpcError', code: 1, message: 'x', methods: '(' }],
      [{ match: { method: 5 }, fault: 'drop' }],
      [{ match: { method: '[' }, fault: 'drop' }],
      [{ match: { path: '/x' }, fault: 'drop' }],
    ]) {
      assert.equal((await srv.request({ path: '/control/faults', body: bad })).status, 400, JSON.stringify(bad));
    }
  });
});

describe('fault kinds on JSON-RPC', () => {
  test('rpcError: entry (per matching call), single (id null), array (first id), with data and HTTP status', async () => {
    const batch = [call('eth_getLogs', [{}], 1), call('eth_blockNumber', [], 2), call('eth_getLogs', [{}], 3)];
    await setFaults([{ fault: 'rpcError', code: -32005, message: 'limit', data: { x: 1 }, methods: '^eth_getLogs$' }]);
    let r = await post(batch);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, [
      { jsonrpc: '2.0', id: 1, error: { code: -32005, message: 'limit', data: { x: 1 } } },
      { jsonrpc: '2.0', id: 2, result: '0x12b' },
      { jsonrpc: '2.0', id: 3, error: { code: -32005, message: 'limit', data: { x: 1 } } },
    ]);
    assert.equal((await post(call('eth_blockNumber', []))).json.result, '0x12b', 'no matching call: the rule does not apply');
    await setFaults([{ fault: 'rpcError', code: 429, message: 'slow down', shape: 'single', http: 429 }]);
    r = await post(batch);
    assert.equal(r.status, 429);
    assert.equal(r.text, '{"jsonrpc":"2.0","id":null,"error":{"code":429,"message":"slow down"}}');
    await setFaults([{ fault: 'rpcError', code: -32600, message: 'no', shape: 'array' }]);
    r = await post(batch);
    assert.equal(r.text, '[{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"no"}}]');
    await setFaults([{ fault: 'rpcError', code: -32000, message: 'one', http: 500 }]);
    r = await post(call('eth_chainId', [], 'q'));
    assert.equal(r.status, 500);
    assert.deepEqual(r.json, { jsonrpc: '2.0', id: 'q', error: { code: -32000, message: 'one' } });
    await srv.control('DELETE', 'log');
    await post(batch);
    assert.equal((await srv.control('GET', 'log'))[0].rpcErrors, 3);
  });

  test('timeout200: Geth\'s request timer, every call -32002', async () => {
    await setFaults([{ fault: 'timeout200', ms: 50 }]);
    const t0 = Date.now();
    const r = await post(call('eth_getLogs', [{}], 4));
    assert.ok(Date.now() - t0 >= 45);
    assert.equal(r.status, 200);
    assert.equal(r.text, '{"jsonrpc":"2.0","id":4,"error":{"code":-32002,"message":"request timed out"}}');
    const b = await post([call('eth_chainId', [], 1), { jsonrpc: '2.0', method: 'eth_chainId' }, call('eth_blockNumber', [], 2)]);
    assert.deepEqual(b.json, [1, 2].map((id) => ({ jsonrpc: '2.0', id, error: { code: -32002, message: 'request timed out' } })));
  });

  test('latency, status, hang, drop', async () => {
    await setFaults([{ fault: 'latency', ms: 100 }]);
    let t0 = Date.now();
    assert.equal((await post(BLOCK)).json.result.number, '0x69');
    assert.ok(Date.now() - t0 >= 95);
    await setFaults([{ fault: 'status', status: 429, retryAfter: 3 }]);
    const r = await post(BLOCK);
    assert.equal(r.status, 429);
    assert.equal(r.headers['retry-after'], '3');
    assert.equal(r.text, '429 Too Many Requests\n');
    await setFaults([{ fault: 'hang' }]);
    t0 = Date.now();
    await assert.rejects(post(BLOCK, { timeoutMs: 150 }), /client timeout/);
    assert.ok(Date.now() - t0 >= 145);
    await setFaults([{ fault: 'drop' }]);
    await assert.rejects(post(BLOCK), /socket hang up|ECONNRESET/);
  });

  test('broken bodies: malformed, truncated, reset, drip, oversize, gzipBomb, badGzip, deepNest', async () => {
    const plain = await post(BLOCK);
    await setFaults([{ fault: 'malformed' }]);
    let r = await post(BLOCK);
    assert.equal(r.status, 200);
    assert.equal(r.json, undefined);
    await setFaults([{ fault: 'truncated', mode: 'length', fraction: 0.3 }]);
    r = await post(BLOCK);
    assert.equal(Number(r.headers['content-length']), r.raw.length);
    assert.equal(r.json, undefined);
    await setFaults([{ fault: 'truncated' }]);
    r = await post(BLOCK);
    assert.ok(r.error || !r.complete);
    await setFaults([{ fault: 'reset' }]);
    try { r = await post(BLOCK); } catch (e) { r = { error: e }; }
    assert.ok(r.error || !r.complete);
    await setFaults([{ fault: 'drip', bytes: Math.ceil(plain.text.length / 3), ms: 20 }]);
    r = await post(BLOCK);
    assert.equal(r.text, plain.text);
    for (const [body, padding] of [[BLOCK, 'whitespace'], [[BLOCK, call('eth_chainId', [], 2)], 'extensions']]) {
      const want = (await post(body)).json;
      await setFaults([{ fault: 'oversize', mb: 1, padding }]);
      r = await post(body);
      assert.ok(r.raw.length >= 1024 * 1024);
      const got = r.json;
      if (padding === 'extensions') {
        assert.ok(got[1].extensions.padding.length > 1000);
        delete got[1].extensions;
      }
      assert.deepEqual(got, want, padding);
      await setFaults([]);
    }
    await setFaults([{ fault: 'gzipBomb', mb: 2 }]);
    r = await rawPost(call('eth_getLogs', [{}], 9));
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.ok(r.raw.length < 64 * 1024);
    const inflated = zlib.gunzipSync(r.raw).toString();
    assert.equal(inflated.length, 2 * 1024 * 1024);
    assert.deepEqual(JSON.parse(inflated), { jsonrpc: '2.0', id: 9, result: [] });
    await setFaults([{ fault: 'badGzip' }]);
    r = await rawPost(BLOCK);
    assert.throws(() => zlib.gunzipSync(r.raw));
    await setFaults([{ fault: 'deepNest', depth: 1000 }]);
    r = await post([call('eth_getLogs', [{}], 5)]);
    assert.ok(r.text.startsWith('[{"jsonrpc":"2.0","id":5,"result":[[[['));
    assert.equal(r.text.length, '[{"jsonrpc":"2.0","id":5,"result":'.length + 2000 + 2);
  });

  test('wrongTypes, missingFields, hugeNumbers on results', async () => {
    const batch = [call('eth_getBlockByNumber', ['0x10', false], 1), call('eth_getBlockByNumber', ['0x11', true], 2), call('eth_blockNumber', [], 3)];
    const want = (await post(batch)).json;
    await setFaults([{ fault: 'wrongTypes' }]);
    let r = (await post(batch)).json;
    assert.notEqual(typeof r[0].result.number, 'string');
    assert.ok(!Array.isArray(r[0].result.transactions), 'lists become objects');
    assert.notEqual(typeof r[2].result, 'string', 'a scalar result changes too');
    await setFaults([{ fault: 'wrongTypes', mode: 'numbers' }]);
    r = (await post(batch)).json;
    assert.equal(r[0].result.number, 16);
    assert.equal(r[2].result, 299);
    assert.equal(r[1].result.transactions[0].blockNumber, 17);
    assert.equal(typeof r[1].result.transactions[0].value, 'string', 'wei amounts stay hex');
    await setFaults([{ fault: 'wrongTypes', mode: 'set', fields: ['gasUsed'], value: null }]);
    r = (await post(batch)).json;
    assert.equal(r[0].result.gasUsed, null);
    assert.equal(r[0].result.number, '0x10');
    await setFaults([{ fault: 'missingFields' }]);
    r = (await post(batch)).json;
    const lastKey = (o) => Object.keys(o)[Object.keys(o).length - 1];
    assert.equal(r[0].result[lastKey(want[0].result)], undefined, 'each result of a batch loses its last key');
    assert.equal(Object.keys(r[1].result.transactions[0]).length, Object.keys(want[1].result.transactions[0]).length - 1);
    await setFaults([{ fault: 'missingFields', fields: ['hash'] }]);
    r = (await post(batch)).json;
    assert.equal(r[1].result.hash, undefined);
    assert.equal(r[1].result.transactions[0].hash, undefined);
    assert.equal(r[1].result.number, '0x11');
    await setFaults([{ fault: 'hugeNumbers' }]);
    r = (await post(batch)).json;
    assert.match(r[1].result.transactions[0].value, /^0x[f]{80}$/);
    assert.match(r[2].result, /^0x[f]{80}$/);
    assert.match(r[1].result.hash, /^0x[0-9a-f]{64}$/, 'hashes untouched');
  });
});

describe('request log of JSON-RPC requests', () => {
  test('rpc, batch, range, rpcErrors next to the usual fields', async () => {
    await srv.control('DELETE', 'log');
    await post(call('eth_getBlockByNumber', ['0x20', false], 'a'));
    const big = Array.from({ length: 150 }, (_, i) => call('eth_getBlockByNumber', [hex(i), false], i));
    big.push({ jsonrpc: '2.0', method: 'eth_chainId' }, 7, call('eth_nope', [], 'n'), call('eth_getLogs', [{ fromBlock: '0x5' }], 'l'));
    await post(big);
    await post('not json');
    await post(call('eth_getBalance', ['0x' + '11'.repeat(20)], 'b'));
    await post(call('eth_getLogs', [{ fromBlock: 'earliest', toBlock: '0x30' }], 'c'));
    await srv.gql('{ chainID }');
    const log = await srv.control('GET', 'log');
    assert.equal(log.length, 6);
    const [one, batch, bad, bal, lg, gql] = log;
    for (const k of ['seq', 'time', 'method', 'path', 'headers', 'query', 'variables', 'operationName', 'status', 'bytes',
      'fault', 'ms', 'range', 'rpc', 'batch', 'rpcErrors', 'jsonBytes']) assert.ok(k in one, k);
    assert.equal(one.path, '/');
    assert.equal(one.status, 200);
    assert.equal(one.query, JSON.stringify(call('eth_getBlockByNumber', ['0x20', false], 'a')));
    assert.deepEqual(one.rpc, [{ method: 'eth_getBlockByNumber', params: ['0x20', false], id: 'a' }]);
    assert.equal(one.batch, false);
    assert.deepEqual(one.range, [32, 32]);
    assert.equal(one.rpcErrors, 0);
    assert.equal(one.fault, null);
    assert.equal(batch.batch, true);
    assert.equal(batch.query.length, 10000, 'query is cut');
    assert.equal(batch.rpc.length, 154, 'rpc is not');
    assert.deepEqual(batch.rpc[149], { method: 'eth_getBlockByNumber', params: ['0x95', false], id: 149 });
    assert.deepEqual(batch.rpc[150], { method: 'eth_chainId', params: null, id: null });
    assert.deepEqual(batch.rpc[151], { method: null, params: null, id: null });
    assert.deepEqual(batch.range, [0, 299], 'fromBlock 5 .. latest (the head)');
    assert.equal(batch.rpcErrors, 2, 'the invalid entry and eth_nope');
    assert.deepEqual(bad.rpc, []);
    assert.equal(bad.batch, false);
    assert.equal(bad.range, null);
    assert.equal(bad.rpcErrors, 1);
    assert.deepEqual(bal.range, [299, 299], 'the state methods\' block defaults to latest');
    assert.deepEqual(lg.range, [0, 48]);
    assert.equal(gql.rpc, undefined, 'GraphQL entries keep their fields');
    const lines = fs.readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const last = lines.filter((l) => l.path === '/').pop();
    assert.deepEqual(last.rpc, lg.rpc);
    assert.equal(last.rpcErrors, 0);
  });
});

describe('HTTP layer of "/" (rpc/http.go)', () => {
  test('GET health check, 405, 415, 413 by Content-Length', async () => {
    const g = await srv.request({ method: 'GET', path: '/' });
    assert.equal(g.status, 200);
    assert.equal(g.text, '');
    const put = await srv.request({ method: 'PUT', path: '/', body: call('eth_chainId', []) });
    assert.equal(put.status, 405);
    assert.equal(put.text, 'method not allowed\n');
    const ct = await srv.request({ path: '/', body: call('eth_chainId', []), headers: { 'Content-Type': 'text/plain' } });
    assert.equal(ct.status, 415);
    assert.equal(ct.text, 'invalid content type, only application/json is supported\n');
    const alt = await srv.request({ path: '/', body: call('eth_chainId', []), headers: { 'Content-Type': 'application/json-rpc; charset=utf-8' } });
    assert.equal(alt.json.result, '0x539');
    const big = Buffer.alloc(5 * 1024 * 1024 + 1, 0x20);
    const r = await srv.request({ path: '/', body: big });
    assert.equal(r.status, 413);
    assert.equal(r.text, 'content length too large (5242881>5242880)\n');
  });
});
