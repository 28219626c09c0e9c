'use strict';
// Node profiles of the JSON-RPC endpoint (POST /control/rpc, --rpc-profile,
// --rpc-options): batch limits, eth_getLogs caps, missing methods, older
// shapes, pruned history, missing state and rate limits, each with the exact
// texts, codes, HTTP statuses and single-object-or-array shapes of
// shared/node-limits.md.

const { test, before, after, describe, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, hex } = require('../testlib/helpers');

const HEAD = 19999;
let srv;
before(async () => { srv = await startServer(['--generate', String(HEAD + 1), '--seed', '5', '--txs-per-block', '20-30']); });
after(async () => { if (srv) await srv.stop(); });
beforeEach(async () => { await srv.control('DELETE', 'rpc'); });

async function profile(o) {
  const r = await srv.request({ path: '/control/rpc', body: o });
  assert.equal(r.status, 200, r.text);
  return r.json;
}
const post = (body, s = srv) => s.request({ path: '/', body });
const callBody = (method, params, id = 1) => ({ jsonrpc: '2.0', id, method, params });
const logs = (from, to, extra) => callBody('eth_getLogs', [Object.assign({ fromBlock: hex(from), toBlock: hex(to) }, extra || {})]);
const many = (n, id0 = 7) => Array.from({ length: n }, (_, i) => callBody('eth_blockNumber', [], id0 + i));

// status, raw text and parsed body of one request
async function answer(body, s) {
  const r = await post(body, s);
  return { status: r.status, text: r.text, json: r.json, headers: r.headers };
}

describe('/control/rpc', () => {
  test('GET, POST (profile first, then keys), DELETE, and validation', async () => {
    const geth = {
      profile: 'geth', maxBatch: 1000, logsMaxRange: null, logsMaxResults: null, blockReceipts: true, logTimestamp: true,
      txTimestamp: true, historyCutoff: null, stateWindow: null, stateError: 'hash', rateLimit: null,
    };
    assert.deepEqual(await srv.control('GET', 'rpc'), geth);
    assert.deepEqual(await profile({ profile: 'reth', logsMaxRange: 0, stateWindow: 128 }),
      Object.assign({}, geth, { profile: 'reth', maxBatch: null, logsMaxRange: null, logsMaxResults: 20000, txTimestamp: false, stateWindow: 128 }));
    assert.deepEqual(await profile({ maxBatch: 5 }), Object.assign({}, geth, { maxBatch: 5 }), 'POST replaces: no profile is geth');
    assert.deepEqual(await profile({ rateLimit: { every: 3 } }), Object.assign({}, geth, { rateLimit: { every: 3, style: 'alchemy' } }));
    assert.deepEqual((await profile({ profile: 'infura', rateLimit: { every: 3, retryAfter: 2 } })).rateLimit, { every: 3, style: 'infura', retryAfter: 2 });
    assert.deepEqual(await srv.control('DELETE', 'rpc'), geth);
    const want = {
      'geth-ranged': { logsMaxRange: 1000 },
      'geth-1.12': { blockReceipts: false, logTimestamp: false, txTimestamp: false },
      'erigon-3.3': { maxBatch: 100, txTimestamp: false },
      erigon: { maxBatch: 100, logsMaxRange: 1000, logsMaxResults: 20000, txTimestamp: false },
      nethermind: { maxBatch: 1024, logsMaxRange: 1000, logsMaxResults: 20000 },
      besu: { maxBatch: 1024, logsMaxRange: 5000, txTimestamp: false },
      alchemy: { logsMaxRange: 10, logsMaxResults: 10000 },
      infura: { logsMaxRange: 10000, logsMaxResults: 10000 },
      quicknode: { logsMaxRange: 10000 },
      ankr: { maxBatch: 10, logsMaxRange: 1000, logsMaxResults: 200000 },
      cloudflare: { logsMaxRange: 800, blockReceipts: false },
      pruned: { historyCutoff: 15537393 },
    };
    for (const [name, values] of Object.entries(want)) {
      assert.deepEqual(await profile({ profile: name }), Object.assign({}, geth, { profile: name }, values), name);
    }
    for (const bad of [{ profile: 'parity' }, { maxBatch: -1 }, { logsMaxRange: 'x' }, { blockReceipts: 1 }, { stateError: 'x' },
      { rateLimit: { every: 0 } }, { rateLimit: { every: 2, style: 'ankr' } }, { nope: 1 }, [1]]) {
      const r = await srv.request({ path: '/control/rpc', body: bad });
      assert.equal(r.status, 400, JSON.stringify(bad));
      assert.ok(r.json.error, r.text);
    }
  });

  test('a bad --rpc-profile or --rpc-options exits 2 (a good one: see the write-timeout test)', async () => {
    await assert.rejects(startServer(['--generate', '10', '--rpc-profile', 'nope', '--rpc-options', '{"maxBatch":true}']),
      /exited with 2: .*unknown rpc profile "nope"/s);
    const { parseArgs } = require('../server');
    assert.throws(() => parseArgs(['--generate', '10', '--rpc-options', '{"maxBatch":true}']), /maxBatch must be/);
    assert.throws(() => parseArgs(['--generate', '10', '--rpc-options', '[1]']), /wants a JSON object/);
    assert.throws(() => parseArgs(['--generate', '10', '--rpc-profile', 'reth', '--rpc-options', '{"profile":"besu"}']), /differ/);
  });
});

describe('batch too large', () => {
  test('each profile\'s reply: status, shape, code, text, id', async () => {
    const cases = [
      // [profile, calls, status, raw body]
      ['geth', 1001, 200, '[{"jsonrpc":"2.0","id":7,"error":{"code":-32600,"message":"batch too large"}}]'],
      ['erigon-3.3', 101, 200, '{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"batch limit 100 exceeded (can increase by --rpc.batch.limit). Requested batch of size: 101"}}'],
      ['erigon', 101, 200, '[{"jsonrpc":"2.0","id":7,"error":{"code":-32600,"message":"batch limit 100 exceeded (can increase by --rpc.batch.limit). Requested batch of size: 101"}}]'],
      ['nethermind', 1025, 503, '{"jsonrpc":"2.0","error":{"code":-32005,"message":"Batch size limit exceeded"},"id":null}'],
      ['besu', 1025, 200, '{"jsonrpc":"2.0","id":null,"error":{"code":-32005,"message":"Number of requests exceeds max batch size"}}'],
      ['ankr', 11, 200, '[{"jsonrpc":"2.0","id":7,"error":{"code":-32600,"message":"batch too large"}}]'],
    ];
    for (const [name, n, status, body] of cases) {
      await profile({ profile: name });
      const r = await answer(many(n));
      assert.equal(r.status, status, name);
      assert.equal(r.text, body, name);
      const ok = await answer(many(n - 1));
      assert.equal(ok.status, 200);
      assert.equal(ok.json.length, n - 1, `${name}: ${n - 1} calls pass`);
    }
    // reth has no limit; one set explicitly answers like jsonrpsee
    await profile({ profile: 'reth' });
    assert.equal((await answer(many(1500))).json.length, 1500);
    await profile({ profile: 'reth', maxBatch: 3 });
    assert.equal((await answer(many(4))).text,
      '{"jsonrpc":"2.0","id":null,"error":{"code":-32010,"message":"The batch request was too large","data":"Exceeded max limit of 3"}}');
    // the first *call* gives the id; notifications count towards the size
    await profile({ maxBatch: 2 });
    const r = await answer([{ jsonrpc: '2.0', method: 'eth_blockNumber' }, callBody('eth_blockNumber', [], 'a'), callBody('eth_blockNumber', [], 'b')]);
    assert.equal(r.text, '[{"jsonrpc":"2.0","id":"a","error":{"code":-32600,"message":"batch too large"}}]');
  });

  test('Nethermind writes error and result before id', async () => {
    await profile({ profile: 'nethermind' });
    assert.equal((await answer(callBody('eth_blockNumber', [], 3))).text, `{"jsonrpc":"2.0","result":"${hex(HEAD)}","id":3}`);
    assert.equal((await answer(callBody('eth_nope', [], 3))).text,
      '{"jsonrpc":"2.0","error":{"code":-32601,"message":"the method eth_nope does not exist/is not available"},"id":3}');
  });
});

describe('eth_getLogs range caps', () => {
  test('Geth --rpc.rangelimit: -32602, end - begin, "latest" counts as MaxUint64', async () => {
    await profile({ profile: 'geth-ranged' });
    assert.deepEqual((await answer(logs(100, 1101))).json.error, { code: -32602, message: 'exceed maximum block range 1000' });
    await profile({ profile: 'geth-ranged', logsMaxRange: 10 });
    const err = { code: -32602, message: 'exceed maximum block range 10' };
    assert.ok(Array.isArray((await answer(logs(100, 110))).json.result), '10 = end - begin passes');
    assert.deepEqual((await answer(logs(100, 111))).json.error, err);
    assert.deepEqual((await answer(callBody('eth_getLogs', [{ fromBlock: hex(HEAD - 5) }]))).json.error, err,
      'fromBlock with toBlock latest is a huge range');
    assert.ok(Array.isArray((await answer(callBody('eth_getLogs', [{}]))).json.result), 'latest..latest is 0');
    await profile({ profile: 'geth-ranged', logsMaxRange: 5 });
    // latest..5: 5 - MaxUint64 wraps to 6
    assert.deepEqual((await answer(callBody('eth_getLogs', [{ fromBlock: 'latest', toBlock: '0x5' }]))).json.error,
      { code: -32602, message: 'exceed maximum block range 5' });
    await profile({ profile: 'geth-ranged', logsMaxRange: 6 });
    assert.deepEqual((await answer(callBody('eth_getLogs', [{ fromBlock: 'latest', toBlock: '0x5' }]))).json.error,
      { code: -32602, message: 'invalid block range params' });
  });

  test('each profile\'s text, code and HTTP status (alone and in a batch)', async () => {
    const cases = [
      // [profile, the default cap's first rejected [from, to], HTTP status, error,
      //  largest [from, to] allowed with a cap of 10]
      ['erigon', [0, 1001], 200, { code: -32602, message: 'query block range exceeds server limit, narrow your filter: 1000' }, [5, 15]],
      ['nethermind', [0, 1000], 200, { code: -32602, message: 'Block range 1001 exceeds the maximum of 1000 blocks per logs request. Use a narrower fromBlock/toBlock range or increase Receipt.MaxBlockDepth.' }, [5, 14]],
      ['besu', [0, 5001], 200, { code: -32005, message: 'Requested range exceeds maximum RPC range limit' }, [5, 15]],
      ['alchemy', [100, 110], 400, { code: -32600, message: 'You can make eth_getLogs requests with up to a 10 block range. Based on your parameters, this block range should work: [0x64, 0x6d]' }, [5, 14]],
      ['infura', [0, 10001], 200, { code: -32602, message: 'range 10001 exceeds limit of 10000' }, [5, 15]],
      ['quicknode', [0, 10000], 413, { code: -32614, message: 'eth_getLogs is limited to a 10,000 range' }, [5, 14]],
      ['ankr', [0, 1000], 400, { code: -32600, message: 'block range is too wide' }, [5, 14]],
      ['cloudflare', [0, 800], 200, { code: -32000, message: 'Max range: 800' }, [5, 14]],
    ];
    for (const [name, [from, to], status, error, [a, b]] of cases) {
      await profile({ profile: name, logsMaxResults: null });
      const over = await answer(logs(from, to));
      assert.equal(over.status, status, name);
      assert.deepEqual(over.json, { jsonrpc: '2.0', id: 1, error }, name);
      const inBatch = await answer([logs(from, to), callBody('eth_blockNumber', [], 2)]);
      assert.equal(inBatch.status, 200, `${name}: a batch is HTTP 200`);
      assert.deepEqual(inBatch.json[0].error, error);
      assert.equal(inBatch.json[1].result, hex(HEAD));
      // where the edge is: with a cap of 10, [a, b] passes and [a, b + 1] does not
      await profile({ profile: name, logsMaxResults: null, logsMaxRange: 10 });
      assert.ok(Array.isArray((await answer(logs(a, b))).json.result), `${name}: [${a}, ${b}] passes`);
      assert.ok((await answer(logs(a, b + 1))).json.error, `${name}: [${a}, ${b + 1}] does not`);
    }
    // caps given explicitly
    await profile({ profile: 'reth', logsMaxRange: 10 });
    assert.deepEqual((await answer(logs(5, 16))).json.error, { code: -32602, message: 'query exceeds max block range 10' });
    await profile({ profile: 'erigon-3.3', logsMaxRange: 10 });
    assert.deepEqual((await answer(logs(5, 16))).json.error, { code: -32000, message: 'query block range exceeds server limit, narrow your filter: 10' });
    await profile({ profile: 'geth-1.12', logsMaxRange: 10 });
    assert.deepEqual((await answer(logs(5, 16))).json.error, { code: -32000, message: 'exceed maximum block range: 10' });
  });
});

describe('eth_getLogs result caps', () => {
  // logs per block of the generated chain, from the uncapped geth profile
  let perBlock;
  const FROM = 200;
  const TO = 260;
  before(async () => {
    await srv.control('DELETE', 'rpc');
    const all = (await answer(logs(FROM, TO))).json.result;
    perBlock = new Map();
    for (const l of all) perBlock.set(parseInt(l.blockNumber, 16), (perBlock.get(parseInt(l.blockNumber, 16)) || 0) + 1);
  });
  // the last block whose logs still fit under `cap` (Reth's retry_to_block)
  const lastGood = (cap) => {
    let n = 0;
    for (let b = FROM; b <= TO; b++) {
      n += perBlock.get(b) || 0;
      if (n > cap) return b === FROM ? FROM : b - 1;
    }
    return null;
  };

  test('each profile\'s text, with the suggested range where there is one', async () => {
    const cap = 40;
    const good = lastGood(cap);
    assert.ok(good > FROM + 2, `${good}`);
    const X = (n) => '0x' + n.toString(16).toUpperCase();
    const cases = [
      ['reth', 200, { code: -32602, message: `query exceeds max results 40, retry with the range ${FROM}-${good}` }],
      ['erigon', 200, { code: -32000, message: 'query returns too many logs, narrow your filter: 40' }],
      ['nethermind', 503, { code: -32005, message: 'Too many logs requested. Max logs per response is 40.' }],
      ['infura', 200, { code: -32005, data: { from: X(FROM), limit: 40, to: X(good) }, message: `query returned more than 40 results. Try with this block range [${X(FROM)}, ${X(good)}].` }],
      ['alchemy', 200, { code: -32602, message: `Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on the response size, or you can request any block range with a cap of 40 logs in the response. Based on your parameters and the response size limit, this block range should work: [${hex(FROM)}, ${hex(good)}]` }],
      ['geth', 200, { code: -32005, message: 'query returned more than 40 results' }],
    ];
    for (const [name, status, error] of cases) {
      await profile({ profile: name, logsMaxResults: cap, logsMaxRange: null });
      const r = await answer(logs(FROM, TO));
      assert.equal(r.status, status, name);
      assert.deepEqual(r.json, { jsonrpc: '2.0', id: 1, error }, name);
      assert.deepEqual(Object.keys(r.json.error), Object.keys(error), `${name}: key order`);
      const inBatch = await answer([logs(FROM, TO)]);
      assert.equal(inBatch.status, 200, `${name}: a batch is HTTP 200`);
      assert.deepEqual(inBatch.json[0].error, error);
      const fits = await answer(logs(FROM, good));
      assert.ok(Array.isArray(fits.json.result) && fits.json.result.length <= cap, `${name}: the suggested range fits`);
    }
    // the Alchemy text shortens round caps ("10K logs")
    await profile({ profile: 'alchemy', logsMaxResults: 1000, logsMaxRange: null });
    const big = (await answer(logs(0, 3000, { address: [] }))).json.error;
    assert.match(big.message, /with a cap of 1K logs in the response/);
  });

  test('Reth returns every log of a single block; the others cap it too', async () => {
    const b = [...perBlock.entries()].find(([, n]) => n >= 3);
    assert.ok(b, 'a block with three logs');
    await profile({ profile: 'reth', logsMaxResults: 2 });
    assert.equal((await answer(logs(b[0], b[0]))).json.result.length, b[1]);
    await profile({ profile: 'nethermind', logsMaxResults: 2 });
    assert.equal((await answer(logs(b[0], b[0]))).json.error.code, -32005);
  });

  test('per-client parameter errors', async () => {
    const cases = [
      ['reth', logs(5, HEAD + 1), { code: -32602, message: `block range extends beyond current head block: requested ${HEAD + 1}, head ${HEAD}` }],
      ['reth', logs(9, 5), { code: -32602, message: 'invalid block range params' }],
      ['reth', callBody('eth_getLogs', [{ fromBlock: hex(HEAD + 5) }]), null],
      ['reth', callBody('eth_getLogs', [{ blockHash: '0x' + '12'.repeat(32) }]), { code: -32001, message: `block not found: hash 0x${'12'.repeat(32)}` }],
      ['erigon', logs(9, 5), { code: -32000, message: 'end (5) < begin (9)' }],
      ['erigon', callBody('eth_getLogs', [{ fromBlock: hex(HEAD + 5) }]), null],
      ['erigon', callBody('eth_getLogs', [{ blockHash: '0x' + '12'.repeat(32) }]), { code: -32000, message: `block not found: ${'12'.repeat(32)}` }],
      ['nethermind', logs(5, HEAD + 1), { code: -32602, message: 'requested block range is in the future' }],
      ['nethermind', logs(9, 5), { code: -32602, message: 'invalid block range params' }],
      ['besu', logs(9, 5), { code: -32602, message: 'Invalid params' }],
      ['besu', logs(5, HEAD + 1), { code: -32602, message: 'Invalid params' }],
      ['geth-1.12', logs(9, 5), null],
      ['geth-1.12', callBody('eth_getLogs', [{ fromBlock: 'pending', toBlock: '0x5' }]), { code: -32000, message: 'invalid block range' }],
    ];
    for (const [name, body, error] of cases) {
      await profile({ profile: name });
      const r = await answer(body);
      if (error === null) assert.deepEqual(r.json.result, [], `${name} ${JSON.stringify(body.params)}`);
      else assert.deepEqual(r.json.error, error, `${name} ${JSON.stringify(body.params)}`);
    }
    // Geth 1.12 and Erigon: a toBlock beyond the head ends the search at the head
    const atHead = (await answer(logs(HEAD - 2, HEAD))).json.result;
    for (const name of ['geth-1.12', 'erigon']) {
      await profile({ profile: name });
      assert.deepEqual((await answer(logs(HEAD - 2, HEAD + 10))).json.result.map((l) => l.logIndex + l.blockNumber),
        atHead.map((l) => l.logIndex + l.blockNumber), name);
    }
  });
});

describe('methods and shapes of older nodes', () => {
  test('eth_getBlockReceipts missing: each profile\'s method-not-found', async () => {
    const cases = [
      ['geth-1.12', 200, { code: -32601, message: 'the method eth_getBlockReceipts does not exist/is not available' }],
      ['cloudflare', 403, { code: -32601, message: 'Method not found' }],
    ];
    for (const [name, status, error] of cases) {
      await profile({ profile: name });
      const r = await answer(callBody('eth_getBlockReceipts', ['0x5']));
      assert.equal(r.status, status, name);
      assert.deepEqual(r.json, { jsonrpc: '2.0', id: 1, error }, name);
    }
    await profile({ profile: 'reth', blockReceipts: false });
    assert.deepEqual((await answer(callBody('eth_getBlockReceipts', ['0x5']))).json.error, { code: -32601, message: 'Method not found' });
    await profile({ profile: 'ankr' });
    const r = await answer(callBody('eth_nope', []));
    assert.equal(r.status, 404);
    assert.deepEqual(r.json.error, { code: -32601, message: 'Method not found' });
    assert.equal((await answer([callBody('eth_nope', [])])).status, 200);
  });

  test('geth-1.12: no blockTimestamp in logs, receipts\' logs or transactions', async () => {
    const full = (await answer(callBody('eth_getBlockByNumber', ['0x64', true]))).json.result;
    const lg = (await answer(logs(100, 101))).json.result;
    const rc = (await answer(callBody('eth_getTransactionReceipt', [lg[0].transactionHash]))).json.result;
    assert.ok('blockTimestamp' in full.transactions[0] && 'blockTimestamp' in lg[0] && 'blockTimestamp' in rc.logs[0]);
    await profile({ profile: 'geth-1.12' });
    const full2 = (await answer(callBody('eth_getBlockByNumber', ['0x64', true]))).json.result;
    const lg2 = (await answer(logs(100, 101))).json.result;
    const rc2 = (await answer(callBody('eth_getTransactionReceipt', [lg[0].transactionHash]))).json.result;
    const tx2 = (await answer(callBody('eth_getTransactionByHash', [lg[0].transactionHash]))).json.result;
    const strip = (o) => { const c = Object.assign({}, o); delete c.blockTimestamp; return c; };
    assert.deepEqual(full2.transactions, full.transactions.map(strip));
    assert.deepEqual(lg2, lg.map(strip));
    assert.deepEqual(rc2.logs, rc.logs.map(strip));
    assert.ok(!('blockTimestamp' in tx2));
    await profile({ logTimestamp: false });
    const mixed = (await answer(callBody('eth_getBlockByNumber', ['0x64', true]))).json.result;
    assert.ok('blockTimestamp' in mixed.transactions[0], 'each key on its own');
  });
});

describe('pruned history (historyCutoff)', () => {
  test('other clients\' texts', async () => {
    const tx = (await answer(callBody('eth_getBlockByNumber', ['0x5', false]))).json.result.transactions[0];
    const cases = [
      ['reth', { code: 4444, message: 'pruned history unavailable: requested 5, earliest available 100' }, true],
      ['nethermind', { code: 4444, message: 'Pruned history unavailable' }, true],
      ['erigon', { code: -32000, message: 'old data not available due to pruning' }, false],
    ];
    for (const [name, error, txFails] of cases) {
      await profile({ profile: name, historyCutoff: 100 });
      assert.deepEqual((await answer(callBody('eth_getBlockByNumber', ['0x5', false]))).json.error, error, name);
      assert.deepEqual((await answer(logs(5, 6))).json.error, error, name);
      const r = (await answer(callBody('eth_getTransactionReceipt', [tx]))).json;
      if (txFails) assert.equal(r.error.code, 4444, name);
      else assert.equal(r.result, null, name);
      assert.equal((await answer(callBody('eth_getBlockByNumber', ['0x64', false]))).json.result.number, '0x64');
    }
  });
});

describe('missing state (stateWindow)', () => {
  test('Geth\'s three wordings, and the other clients\'', async () => {
    const a = '0x' + '11'.repeat(20);
    const n = HEAD - 11;
    const root = (await answer(callBody('eth_getBlockByNumber', [hex(n), false]))).json.result.stateRoot.slice(2);
    await profile({ stateWindow: 10 });
    assert.match((await answer(callBody('eth_getBalance', [a, hex(HEAD - 10)]))).json.result, /^0x/);
    for (const method of ['eth_getBalance', 'eth_getTransactionCount', 'eth_getCode']) {
      assert.deepEqual((await answer(callBody(method, [a, hex(n)]))).json.error, { code: -32000, message: `missing trie node ${root} (path )` }, method);
    }
    assert.deepEqual((await answer(callBody('eth_getBalance', [a, hex(HEAD + 1)]))).json.error, { code: -32000, message: 'header not found' });
    await profile({ stateWindow: 10, stateError: 'path' });
    assert.deepEqual((await answer(callBody('eth_getBalance', [a, hex(n)]))).json.error, { code: -32000, message: `state 0x${root} is not available` });
    await profile({ stateWindow: 10, stateError: 'historical' });
    assert.deepEqual((await answer(callBody('eth_getBalance', [a, hex(n)]))).json.error, { code: -32000, message: `historical state ${root} is not available` });
    const hash = (await answer(callBody('eth_getBlockByNumber', [hex(n), false]))).json.result.hash;
    assert.deepEqual((await answer(callBody('eth_getCode', [a, { blockHash: hash }]))).json.error.message, `historical state ${root} is not available`);
    await profile({ profile: 'reth', stateWindow: 10 });
    assert.deepEqual((await answer(callBody('eth_getBalance', [a, hex(n)]))).json.error, { code: -32603, message: `state at block #${n} is pruned` });
    await profile({ profile: 'erigon', stateWindow: 10 });
    assert.deepEqual((await answer(callBody('eth_getBalance', [a, hex(n)]))).json.error, { code: -32000, message: 'old data not available due to pruning' });
    await profile({ profile: 'nethermind', stateWindow: 10 });
    assert.deepEqual((await answer(callBody('eth_getBalance', [a, hex(n)]))).json.error, { code: -32002, message: `No state available for block ${n} (${hash})` });
    await profile({ profile: 'besu', stateWindow: 10 });
    assert.deepEqual((await answer(callBody('eth_getBalance', [a, hex(n)]))).json, { jsonrpc: '2.0', id: 1, result: null });
  });
});

describe('rate limits (every Nth request)', () => {
  test('Alchemy, Infura and QuickNode answers', async () => {
    await profile({ profile: 'alchemy', rateLimit: { every: 3 } });
    const got = [];
    for (let i = 0; i < 6; i++) got.push(await answer(callBody('eth_blockNumber', [], 40 + i)));
    assert.deepEqual(got.map((r) => r.status), [200, 200, 429, 200, 200, 429]);
    assert.equal(got[2].headers['retry-after'], '1');
    assert.equal(got[2].text, '{"jsonrpc":"2.0","id":42,"error":{"code":429,"message":"Your app has exceeded its compute units per second capacity. If you have retries enabled, you can safely ignore this message. If not, check out https://docs.alchemy.com/reference/throughput"}}');

    await profile({ profile: 'infura', rateLimit: { every: 1 } });
    const inf = await answer(callBody('eth_blockNumber', [], 9));
    assert.equal(inf.status, 429);
    assert.equal(inf.text, '{"jsonrpc":"2.0","id":9,"error":{"code":-32005,"message":"project ID request rate exceeded","data":{"see":"https://infura.io/docs/ethereum/jsonrpc/ratelimits","current_rps":13.333,"allowed_rps":10.0,"backoff_seconds":1.0}}}');

    await profile({ rateLimit: { every: 1, style: 'quicknode', rps: 50 } });
    const qn = await answer([callBody('eth_blockNumber', [], 1), callBody('eth_blockNumber', [], 2)]);
    assert.equal(qn.status, 429);
    assert.equal(qn.text, '{"jsonrpc":"2.0","id":null,"error":{"code":-32007,"message":"50/second request limit reached - reduce calls per second or upgrade your account at quicknode.com"}}',
      'a batch gets one object');
    await srv.control('DELETE', 'log');
    await answer([callBody('eth_blockNumber', [], 1), callBody('eth_blockNumber', [], 2)]);
    const log = await srv.control('GET', 'log');
    assert.equal(log[0].fault, 'rateLimit');
    assert.equal(log[0].rpcErrors, 2);
    assert.equal(log[0].status, 429);
  });
});

describe('limits on the work of one request', () => {
  test('batch response cap: Geth and Nethermind answer the rest under their ids, Reth drops the batch (in-process, cap shrunk)', () => {
    const { GenSource } = require('../lib/source-gen');
    const { handleJsonRpc } = require('../lib/jsonrpc');
    const L = require('../lib/rpc-limits');
    assert.equal(L.responseCap('geth').max, 25000000, '--rpc.batch-response-max-size');
    assert.equal(L.responseCap('nethermind').max, 33554432, 'MaxBatchResponseBodySize');
    assert.equal(L.responseCap('reth').max, 167772160, '--rpc.max-response-size');
    const src = new GenSource({ blocks: 100, seed: 3, minTx: 20, maxTx: 20, cacheBlocks: 8 });
    const batch = Array.from({ length: 40 }, (_, i) => callBody('eth_getBlockByNumber', [hex(i + 1), true], i));
    batch.splice(30, 0, { jsonrpc: '2.0', method: 'eth_chainId' });
    const body = JSON.stringify(batch);
    const ids = batch.filter((m) => 'id' in m).map((m) => m.id);
    for (const [name, error] of [['geth', { code: -32003, message: 'response too large' }],
      ['nethermind', { code: -32005, message: 'MaxBatchResponseBodySize of 32768KB exceeded' }]]) {
      const cap = Object.assign({}, L.responseCap(name), { max: 200000 });
      const r = handleJsonRpc(src, L.resolveSettings({ profile: name }), body, { responseCap: cap });
      const out = JSON.parse(r.text);
      assert.equal(out.length, 40, 'no answer for the notification');
      const firstErr = out.findIndex((x) => x.error);
      assert.ok(firstErr > 5 && firstErr < 35, `${firstErr}`);
      let size = 0;
      for (let i = 0; i < firstErr; i++) size += JSON.stringify(out[i].result).length;
      assert.ok(size > 200000, 'the answer that crossed the cap is kept');
      assert.ok(size - JSON.stringify(out[firstErr - 1].result).length <= 200000);
      out.slice(firstErr).forEach((x, k) => {
        assert.deepEqual(x.error, error, name);
        assert.equal(x.id, ids[firstErr + k]);
      });
      assert.equal(r.rpcErrors, 40 - firstErr);
    }
    const reth = handleJsonRpc(src, L.resolveSettings({ profile: 'reth' }), body, { responseCap: Object.assign({}, L.responseCap('reth'), { max: 200000 }) });
    assert.equal(reth.text, '{"jsonrpc":"2.0","id":null,"error":{"code":-32011,"message":"The batch response was too large","data":"Exceeded max limit of 167772160"}}');
  });

  test('the write timeout: -32002 for the call that runs too long and every call after it; --rpc-profile, --rpc-options', async () => {
    // also the command line: a profile and options over it
    const s = await startServer(['--generate', '20000', '--seed', '2', '--write-timeout', '150',
      '--rpc-profile', 'erigon', '--rpc-options', '{"logsMaxRange":null,"stateWindow":64}']);
    try {
      const g = await s.control('GET', 'rpc');
      assert.equal(g.profile, 'erigon');
      assert.equal(g.maxBatch, 100);
      assert.equal(g.logsMaxRange, null);
      assert.equal(g.logsMaxResults, 20000);
      assert.equal(g.stateWindow, 64);
      const slow = callBody('eth_getLogs', [{ fromBlock: '0x0', toBlock: hex(5000) }], 2);
      const one = await answer(slow, s);
      assert.equal(one.text, '{"jsonrpc":"2.0","id":2,"error":{"code":-32002,"message":"request timed out"}}');
      const b = await answer([callBody('eth_chainId', [], 1), slow, callBody('eth_blockNumber', [], 3)], s);
      assert.deepEqual(b.json, [
        { jsonrpc: '2.0', id: 1, result: '0x539' },
        { jsonrpc: '2.0', id: 2, error: { code: -32002, message: 'request timed out' } },
        { jsonrpc: '2.0', id: 3, error: { code: -32002, message: 'request timed out' } },
      ]);
    } finally {
      await s.stop();
    }
  });
});
