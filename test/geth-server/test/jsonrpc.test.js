'use strict';
// JSON-RPC at "/": eth_getBlockByNumber & co. with Geth v1.17.5's shapes and
// error texts (the expected key orders and messages were read off a real
// v1.17.5 dev node), consistent with what /graphql serves for the same chain.

const { test, before, after, describe } = require('node:test');
const assert = require('node:assert/strict');
const { startServer } = require('../testlib/helpers');

let srv;
before(async () => { srv = await startServer(['--generate', '300', '--seed', '11', '--txs-per-block', '40-60']); });
after(async () => { if (srv) await srv.stop(); });

async function rpc(body) {
  const r = await srv.request({ path: '/', body });
  assert.equal(r.status, 200, r.text);
  return r;
}
const call = (method, params, id = 1) => rpc({ jsonrpc: '2.0', id, method, params });

// Real geth v1.17.5: keys of eth_getBlockByNumber (a Go map: sorted), minus the
// Cancun/Prague-only keys the generated chain has no values for
// (blobGasUsed, excessBlobGas, parentBeaconBlockRoot, requestsHash).
const BLOCK_KEYS = ['baseFeePerGas', 'difficulty', 'extraData', 'gasLimit', 'gasUsed', 'hash', 'logsBloom',
  'miner', 'mixHash', 'nonce', 'number', 'parentHash', 'receiptsRoot', 'sha3Uncles', 'size', 'stateRoot',
  'timestamp', 'transactions', 'transactionsRoot', 'uncles', 'withdrawals', 'withdrawalsRoot'];
// RPCTransaction in struct order, as a real node sends a type-2 and a legacy (EIP-155) transaction.
const TX2_KEYS = ['blockHash', 'blockNumber', 'blockTimestamp', 'from', 'gas', 'gasPrice', 'maxFeePerGas',
  'maxPriorityFeePerGas', 'hash', 'input', 'nonce', 'to', 'transactionIndex', 'value', 'type', 'accessList',
  'chainId', 'v', 'r', 's', 'yParity'];
const TX0_KEYS = ['blockHash', 'blockNumber', 'blockTimestamp', 'from', 'gas', 'gasPrice', 'hash', 'input',
  'nonce', 'to', 'transactionIndex', 'value', 'type', 'chainId', 'v', 'r', 's'];
const RECEIPT_KEYS = ['blockHash', 'blockNumber', 'contractAddress', 'cumulativeGasUsed', 'effectiveGasPrice',
  'from', 'gasUsed', 'logs', 'logsBloom', 'status', 'to', 'transactionHash', 'transactionIndex', 'type'];
const LOG_KEYS = ['address', 'topics', 'data', 'blockNumber', 'transactionHash', 'transactionIndex', 'blockHash',
  'blockTimestamp', 'logIndex', 'removed'];

const GQL_BLOCK = `query($n: Long) { block(number: $n) { number hash parent { hash } timestamp gasLimit gasUsed
  baseFeePerGas miner { address } transactionCount
  transactions { hash index from { address } to { address } value gas gasPrice nonce inputData type
    maxFeePerGas maxPriorityFeePerGas status gasUsed cumulativeGasUsed effectiveGasPrice
    createdContract { address } logs { index account { address } topics data } } } }`;

describe('eth_getBlockByNumber', () => {
  test('full transactions: Geth key order and the same values as GraphQL', async () => {
    const r = await call('eth_getBlockByNumber', ['0x7b', true]);
    assert.deepEqual(Object.keys(r.json), ['jsonrpc', 'id', 'result']);
    const b = r.json.result;
    assert.deepEqual(Object.keys(b), BLOCK_KEYS);
    const g = (await srv.gql(GQL_BLOCK, { n: 123 })).json.data.block;
    assert.equal(b.number, '0x7b');
    assert.equal(b.hash, g.hash);
    assert.equal(b.parentHash, g.parent.hash);
    assert.equal(b.timestamp, g.timestamp);
    assert.equal(b.gasUsed, g.gasUsed);
    assert.equal(b.gasLimit, g.gasLimit);
    assert.equal(b.baseFeePerGas, g.baseFeePerGas);
    assert.equal(b.miner, g.miner.address);
    assert.equal(b.transactions.length, Number(g.transactionCount));
    assert.ok(b.transactions.length >= 40 && b.transactions.length <= 60);
    assert.deepEqual(b.uncles, []);
    assert.deepEqual(b.withdrawals, []);
    assert.match(b.size, /^0x[1-9a-f][0-9a-f]*$/);
    let legacy = 0;
    let creations = 0;
    b.transactions.forEach((t, i) => {
      const gt = g.transactions[i];
      assert.deepEqual(Object.keys(t), t.type === '0x0' ? TX0_KEYS : TX2_KEYS, `tx ${i} (type ${t.type})`);
      if (t.type === '0x0') legacy++;
      assert.equal(t.blockHash, b.hash);
      assert.equal(t.blockNumber, b.number);
      assert.equal(t.blockTimestamp, b.timestamp);
      assert.equal(t.hash, gt.hash);
      assert.equal(t.transactionIndex, gt.index);
      assert.equal(t.from, gt.from.address);
      assert.equal(t.to, gt.to === null ? null : gt.to.address);
      if (t.to === null) creations++;
      assert.equal(t.value, gt.value);
      assert.equal(t.gas, gt.gas);
      assert.equal(t.gasPrice, gt.gasPrice, 'the effective gas price, like GraphQL');
      assert.equal(t.nonce, gt.nonce);
      assert.equal(t.input, gt.inputData);
      assert.equal(t.type, gt.type);
      if (t.type === '0x2') {
        assert.equal(t.maxFeePerGas, gt.maxFeePerGas);
        assert.equal(t.maxPriorityFeePerGas, gt.maxPriorityFeePerGas);
        assert.equal(t.yParity, t.v);
        assert.ok(t.v === '0x0' || t.v === '0x1');
      } else {
        // EIP-155: v = 35 + 2 * chainId + parity
        assert.ok(t.v === '0xa95' || t.v === '0xa96', t.v);
      }
      assert.equal(t.chainId, '0x539');
    });
    assert.ok(legacy > 0, 'the block has legacy transactions to check');
    void creations;
  });

  test('hashes only, tags, beyond head, and numbers at the int64 edge', async () => {
    const b = (await call('eth_getBlockByNumber', ['0x10', false])).json.result;
    const full = (await call('eth_getBlockByNumber', ['0x10', true])).json.result;
    assert.deepEqual(b.transactions, full.transactions.map((t) => t.hash));
    assert.equal((await call('eth_getBlockByNumber', ['latest', false])).json.result.number, '0x12b');
    assert.equal((await call('eth_getBlockByNumber', ['earliest', false])).json.result.number, '0x0');
    assert.deepEqual((await call('eth_getBlockByNumber', ['earliest', true])).json.result.transactions, []);
    assert.equal((await call('eth_getBlockByNumber', ['finalized', false])).json.result.number, '0xeb');
    assert.equal((await call('eth_getBlockByNumber', ['0x12c', true])).json.result, null);
    assert.equal((await call('eth_getBlockByNumber', ['0x7fffffffffffffff', true])).json.result, null);
    // a null hydration flag decodes to false, like Go
    assert.equal(typeof (await call('eth_getBlockByNumber', ['0x10', null])).json.result.transactions[0], 'string');
  });

  test('argument errors: Geth codes and texts', async () => {
    const cases = [
      [['0x04', true], 'invalid argument 0: hex number with leading zero digits'],
      [[4, true], 'invalid argument 0: hex string without 0x prefix'],
      [['4', true], 'invalid argument 0: hex string without 0x prefix'],
      [[null, true], 'invalid argument 0: hex string without 0x prefix'],
      [['LATEST', true], 'invalid argument 0: hex string without 0x prefix'],
      [['0x', true], 'invalid argument 0: hex string "0x"'],
      [['0xzz', true], 'invalid argument 0: invalid hex string'],
      [['0xffffffffffffffffff', true], 'invalid argument 0: hex number > 64 bits'],
      [['0x8000000000000000', true], 'invalid argument 0: block number larger than int64'],
      [['0x4'], 'missing value for required argument 1'],
      [[], 'missing value for required argument 0'],
      [['0x4', true, 1], 'too many arguments, want at most 2'],
      [['0x4', 'yes'], 'invalid argument 1: json: cannot unmarshal string into Go value of type bool'],
      [['0x4', 1], 'invalid argument 1: json: cannot unmarshal number into Go value of type bool'],
      [{ a: 1 }, 'non-array args'],
    ];
    for (const [params, message] of cases) {
      const r = await call('eth_getBlockByNumber', params, 7);
      assert.deepEqual(r.json, { jsonrpc: '2.0', id: 7, error: { code: -32602, message } }, JSON.stringify(params));
    }
    // Go's encoding/json escapes '>' in the message: Geth sends \u003e
    const raw = await call('eth_getBlockByNumber', ['0xffffffffffffffffff', true]);
    assert.ok(raw.text.includes('hex number \\u003e 64 bits'), raw.text);
  });
});

describe('eth_getTransactionReceipt', () => {
  test('receipts: Geth key order and the same values as GraphQL', async () => {
    const g = (await srv.gql(GQL_BLOCK, { n: 200 })).json.data.block;
    let withLogs = 0;
    for (const gt of g.transactions) {
      const r = (await call('eth_getTransactionReceipt', [gt.hash])).json.result;
      assert.deepEqual(Object.keys(r), RECEIPT_KEYS);
      assert.equal(r.transactionHash, gt.hash);
      assert.equal(r.blockHash, g.hash);
      assert.equal(r.status, gt.status);
      assert.equal(r.gasUsed, gt.gasUsed);
      assert.equal(r.cumulativeGasUsed, gt.cumulativeGasUsed);
      assert.equal(r.effectiveGasPrice, gt.effectiveGasPrice);
      assert.equal(r.contractAddress, gt.createdContract ? gt.createdContract.address : null);
      assert.equal(r.logs.length, gt.logs.length);
      r.logs.forEach((l, i) => {
        assert.deepEqual(Object.keys(l), LOG_KEYS);
        assert.equal(l.logIndex, gt.logs[i].index);
        assert.equal(l.address, gt.logs[i].account.address);
        assert.deepEqual(l.topics, gt.logs[i].topics);
        assert.equal(l.data, gt.logs[i].data);
        assert.equal(l.removed, false);
        withLogs++;
      });
    }
    assert.ok(withLogs > 0);
    const none = await call('eth_getTransactionReceipt', ['0x' + '0'.repeat(63) + '1']);
    assert.deepEqual(none.json, { jsonrpc: '2.0', id: 1, result: null });
    const bad = await call('eth_getTransactionReceipt', ['0x12']);
    assert.deepEqual(bad.json.error, { code: -32602, message: 'invalid argument 0: hex string has length 2, want 64 for common.Hash' });
  });
});

describe('batches and envelopes', () => {
  test('a batch answers in order with each id; notifications get no answer', async () => {
    const batch = [];
    for (let n = 1; n <= 100; n++) batch.push({ jsonrpc: '2.0', id: n * 10, method: 'eth_getBlockByNumber', params: ['0x' + n.toString(16), true] });
    batch.push({ jsonrpc: '2.0', method: 'eth_blockNumber' });
    batch.push({ jsonrpc: '2.0', id: 'x', method: 'eth_foo', params: [] });
    const r = await rpc(batch);
    assert.equal(r.json.length, 101);
    r.json.slice(0, 100).forEach((a, i) => {
      assert.equal(a.id, (i + 1) * 10);
      assert.equal(a.result.number, '0x' + (i + 1).toString(16));
    });
    assert.deepEqual(r.json[100], { jsonrpc: '2.0', id: 'x', error: { code: -32601, message: 'the method eth_foo does not exist/is not available' } });
  });

  test('batch limits, bad envelopes and parse errors', async () => {
    const many = Array.from({ length: 1001 }, (_, i) => ({ jsonrpc: '2.0', id: i + 5, method: 'eth_blockNumber' }));
    assert.deepEqual((await rpc(many)).json, [{ jsonrpc: '2.0', id: 5, error: { code: -32600, message: 'batch too large' } }]);
    assert.equal((await rpc(many.slice(0, 1000))).json.length, 1000);
    assert.deepEqual((await rpc([])).json, { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'empty batch' } });
    assert.deepEqual((await rpc([1])).json, [{ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'invalid request' } }]);
    assert.deepEqual((await rpc({ id: 1, method: 'eth_blockNumber' })).json, { jsonrpc: '2.0', id: 1, error: { code: -32600, message: 'invalid request' } });
    assert.equal((await rpc({ jsonrpc: '2.0', method: 'eth_blockNumber' })).text, '');
    assert.deepEqual((await rpc('xx')).json, { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse error' } });
    assert.deepEqual((await call('eth_blockNumber', undefined)).json, { jsonrpc: '2.0', id: 1, result: '0x12b' });
  });

  test('the request log records JSON bytes before gzip and wire bytes after it', async () => {
    await srv.control('DELETE', 'log');
    const body = { jsonrpc: '2.0', id: 1, method: 'eth_getBlockByNumber', params: ['0x20', true] };
    const plain = await srv.request({ path: '/', body });
    const gz = await srv.request({ path: '/', body, headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gz.text, plain.text);
    await srv.gql('query($f: Long!, $t: Long!) { blocks(from: $f, to: $t) { number transactions { value } } }', { f: 1, t: 9 },
      { headers: { 'Accept-Encoding': 'gzip' } });
    const log = await srv.control('GET', 'log');
    assert.equal(log.length, 3);
    assert.equal(log[0].jsonBytes, Buffer.byteLength(plain.text));
    assert.equal(log[0].bytes, log[0].jsonBytes);
    assert.equal(log[1].jsonBytes, log[0].jsonBytes);
    assert.equal(log[1].bytes, gz.raw.length);
    assert.ok(log[1].bytes < log[1].jsonBytes / 2);
    assert.ok(log[2].jsonBytes > log[2].bytes, 'GraphQL answers are logged with both sizes too');
  });
});
