'use strict';
// eth_getBlockReceipts, eth_getLogs, eth_getBlockTransactionCountByNumber and
// eth_getHeaderByNumber: Geth v1.17.5 shapes and argument errors, against the
// mainnet CSV data (shared/data) and, for consistency with /graphql, the
// generated chain.

const { test, before, after, describe } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, readCSV, hex, DATA_DIR } = require('../testlib/helpers');

const TRANSFER = '0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef';
const RECEIPT_KEYS = ['blockHash', 'blockNumber', 'contractAddress', 'cumulativeGasUsed', 'effectiveGasPrice',
  'from', 'gasUsed', 'logs', 'logsBloom', 'status', 'to', 'transactionHash', 'transactionIndex', 'type'];
const LOG_KEYS = ['address', 'topics', 'data', 'blockNumber', 'transactionHash', 'transactionIndex', 'blockHash',
  'blockTimestamp', 'logIndex', 'removed'];
const pad = (a) => '0x' + '0'.repeat(24) + a.slice(2);

let csv;
let gen;
before(async () => {
  [csv, gen] = await Promise.all([
    startServer(['--data', DATA_DIR]),
    startServer(['--generate', '300', '--seed', '11', '--txs-per-block', '40-60']),
  ]);
});
after(async () => { await Promise.all([csv && csv.stop(), gen && gen.stop()]); });

async function rpcOn(s, body) {
  const r = await s.request({ path: '/', body });
  assert.equal(r.status, 200, r.text);
  return r.json;
}
const call = (s, method, params, id = 1) => rpcOn(s, { jsonrpc: '2.0', id, method, params });
const result = async (s, method, params) => {
  const j = await call(s, method, params);
  assert.equal(j.error, undefined, JSON.stringify(j.error));
  return j.result;
};
const errorOf = async (s, method, params) => (await call(s, method, params)).error;

const blocks = readCSV('blocks.csv');
const txs = readCSV('txs.csv');
const receipts = readCSV('receipts.csv');
const transfers = readCSV('token_transfers.csv');
const txByHash = new Map(txs.map((t) => [t.hash, t]));
const blockByNumber = new Map(blocks.map((b) => [b.number, b]));
// token_transfers rows as the server's logs: only those whose tx is in txs.csv
const LOGS = transfers.filter((r) => txByHash.has(r.tx_hash))
  .sort((a, b) => (+a.block - +b.block) || (+a.log_index - +b.log_index));
const HEAD = Math.max(...blocks.map((b) => +b.number));

function expectLog(l, row) {
  const b = blockByNumber.get(row.block);
  assert.deepEqual(Object.keys(l), LOG_KEYS);
  assert.deepEqual(l, {
    address: row.token,
    topics: [TRANSFER, pad(row.from), pad(row.to)],
    data: '0x' + BigInt(row.value_raw).toString(16).padStart(64, '0'),
    blockNumber: hex(row.block),
    transactionHash: row.tx_hash,
    transactionIndex: hex(txByHash.get(row.tx_hash).idx),
    blockHash: b.hash,
    blockTimestamp: hex(b.timestamp),
    logIndex: hex(row.log_index),
    removed: false,
  });
}

describe('eth_getBlockReceipts (CSV data)', () => {
  test('every receipt of a block, in transaction order, equal to eth_getTransactionReceipt', async () => {
    const n = '17173049';
    const want = txs.filter((t) => t.block === n).sort((a, b) => a.idx - b.idx);
    const got = await result(csv, 'eth_getBlockReceipts', [hex(n)]);
    assert.equal(got.length, want.length);
    const byTx = new Map(receipts.map((r) => [r.tx_hash, r]));
    const batch = want.map((t, i) => ({ jsonrpc: '2.0', id: i, method: 'eth_getTransactionReceipt', params: [t.hash] }));
    const single = await rpcOn(csv, batch);
    let withLogs = 0;
    got.forEach((r, i) => {
      assert.deepEqual(Object.keys(r), RECEIPT_KEYS);
      assert.deepEqual(r, single[i].result);
      const t = want[i];
      const rc = byTx.get(t.hash);
      assert.equal(r.transactionHash, t.hash);
      assert.equal(r.transactionIndex, hex(t.idx));
      assert.equal(r.blockHash, blockByNumber.get(n).hash);
      assert.equal(r.status, hex(rc.status));
      assert.equal(r.gasUsed, hex(rc.gas_used));
      assert.equal(r.cumulativeGasUsed, hex(rc.cumulative_gas_used));
      assert.equal(r.contractAddress, rc.contract_address || null);
      const rows = LOGS.filter((x) => x.tx_hash === t.hash);
      assert.equal(r.logs.length, rows.length);
      r.logs.forEach((l, k) => expectLog(l, rows[k]));
      withLogs += rows.length;
    });
    assert.ok(withLogs > 50);
  });

  test('by number, tag, hash and {blockHash}/{blockNumber}; null without a block', async () => {
    const b = blockByNumber.get('17173050');
    const byNum = await result(csv, 'eth_getBlockReceipts', [hex(b.number)]);
    assert.equal(byNum.length, +b.tx_count);
    assert.deepEqual(await result(csv, 'eth_getBlockReceipts', ['latest']), byNum);
    assert.deepEqual(await result(csv, 'eth_getBlockReceipts', [b.hash]), byNum);
    assert.deepEqual(await result(csv, 'eth_getBlockReceipts', [{ blockHash: b.hash }]), byNum);
    assert.deepEqual(await result(csv, 'eth_getBlockReceipts', [{ blockNumber: hex(b.number) }]), byNum);
    assert.deepEqual(await result(csv, 'eth_getBlockReceipts', [hex(0)]), []);
    assert.equal(await result(csv, 'eth_getBlockReceipts', [hex(HEAD + 1)]), null);
    assert.equal(await result(csv, 'eth_getBlockReceipts', ['0x' + 'ab'.repeat(32)]), null);
  });

  test('argument errors: Geth texts', async () => {
    const h = blockByNumber.get('17173050').hash;
    const cases = [
      [[], 'missing value for required argument 0'],
      [['0x01'], 'invalid argument 0: hex number with leading zero digits'],
      [['0x1', true], 'too many arguments, want at most 1'],
      [[{ blockNumber: '0x1', blockHash: h }], 'invalid argument 0: cannot specify both BlockHash and BlockNumber, choose one or the other'],
      [[{}], 'invalid argument 0: must specify either BlockHash or BlockNumber'],
      [[null], 'invalid argument 0: must specify either BlockHash or BlockNumber'],
      [[5], 'invalid argument 0: json: cannot unmarshal number into Go value of type string'],
      [[{ blockNumber: '0x01' }], 'invalid argument 0: json: cannot unmarshal object into Go value of type string'],
      [['0x' + 'g'.repeat(64)], 'invalid argument 0: invalid hex string'],
      [['0x8000000000000000'], 'invalid argument 0: blocknumber too high'],
    ];
    for (const [params, message] of cases) {
      assert.deepEqual(await errorOf(csv, 'eth_getBlockReceipts', params), { code: -32602, message }, JSON.stringify(params));
    }
  });
});

describe('eth_getBlockTransactionCountByNumber and eth_getHeaderByNumber (CSV data)', () => {
  test('counts are tx_count; null beyond the head', async () => {
    const sample = blocks.filter((_, i) => i % 50 === 0).concat([blockByNumber.get('17173050')]);
    const j = await rpcOn(csv, sample.map((b, i) => ({ jsonrpc: '2.0', id: i, method: 'eth_getBlockTransactionCountByNumber', params: [hex(b.number)] })));
    sample.forEach((b, i) => assert.equal(j[i].result, hex(b.tx_count), b.number));
    assert.equal(await result(csv, 'eth_getBlockTransactionCountByNumber', ['latest']), hex(182));
    assert.equal(await result(csv, 'eth_getBlockTransactionCountByNumber', [hex(HEAD + 1)]), null);
    assert.deepEqual(await errorOf(csv, 'eth_getBlockTransactionCountByNumber', ['0x01']),
      { code: -32602, message: 'invalid argument 0: hex number with leading zero digits' });
  });

  test('a header is the block without size, transactions, uncles and withdrawals', async () => {
    const blk = await result(csv, 'eth_getBlockByNumber', ['0x7a120', false]);
    const hdr = await result(csv, 'eth_getHeaderByNumber', ['0x7a120']);
    const want = Object.assign({}, blk);
    for (const k of ['size', 'transactions', 'uncles', 'withdrawals']) delete want[k];
    assert.deepEqual(hdr, want);
    assert.deepEqual(await result(csv, 'eth_getHeaderByHash', [blk.hash]), want);
    assert.equal(await result(csv, 'eth_getHeaderByNumber', [hex(HEAD + 1)]), null);
  });
});

describe('eth_getLogs (CSV data)', () => {
  const range = (from, to, extra = {}) => Object.assign({ fromBlock: hex(from), toBlock: hex(to) }, extra);

  test('a range: token_transfers.csv as Transfer logs, in block then log order', async () => {
    const got = await result(csv, 'eth_getLogs', [range(17173049, 17173050)]);
    const want = LOGS.filter((r) => +r.block >= 17173049);
    assert.equal(got.length, want.length);
    got.forEach((l, i) => expectLog(l, want[i]));
    const all = await result(csv, 'eth_getLogs', [{ fromBlock: '0x0', toBlock: 'latest' }]);
    assert.equal(all.length, LOGS.length, 'every log the data has (the 1452581 rows have no tx)');
    assert.deepEqual(all.map((l) => l.transactionHash + l.logIndex), LOGS.map((r) => r.tx_hash + hex(r.log_index)));
    // defaults: latest..latest
    assert.equal((await result(csv, 'eth_getLogs', [{}])).length, LOGS.filter((r) => +r.block === HEAD).length);
    assert.deepEqual(await result(csv, 'eth_getLogs', [null]), await result(csv, 'eth_getLogs', [{}]));
    assert.deepEqual(await result(csv, 'eth_getLogs', [range(500000, 501000)]), []);
  });

  test('address: one or several (OR), any case; topics: positions, null, OR lists, prefix length', async () => {
    const span = range(17173049, 17173050);
    const weth = '0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2';
    const usdt = '0xdac17f958d2ee523a2206206994597c13d831ec7';
    const rows = LOGS.filter((r) => +r.block >= 17173049);
    const only = (pred) => rows.filter(pred).map((r) => r.tx_hash + hex(r.log_index));
    const keys = (ls) => ls.map((l) => l.transactionHash + l.logIndex);
    assert.deepEqual(keys(await result(csv, 'eth_getLogs', [Object.assign({ address: weth }, span)])), only((r) => r.token === weth));
    assert.deepEqual(keys(await result(csv, 'eth_getLogs', [Object.assign({ address: weth.toUpperCase().replace('0X', '0x') }, span)])),
      only((r) => r.token === weth));
    assert.deepEqual(keys(await result(csv, 'eth_getLogs', [Object.assign({ address: [weth, usdt] }, span)])),
      only((r) => r.token === weth || r.token === usdt));
    const to = rows.find((r) => r.token === usdt).to;
    assert.deepEqual(keys(await result(csv, 'eth_getLogs', [Object.assign({ topics: [TRANSFER, null, pad(to)] }, span)])),
      only((r) => r.to === to));
    const from = rows.find((r) => r.token === weth).from;
    assert.deepEqual(keys(await result(csv, 'eth_getLogs', [Object.assign({ topics: [null, [pad(from), pad(to)]] }, span)])),
      only((r) => r.from === from || r.from === to));
    assert.deepEqual(keys(await result(csv, 'eth_getLogs', [Object.assign({ topics: [[TRANSFER, null]] }, span)])), only(() => true),
      'a null alternative matches everything');
    assert.deepEqual(await result(csv, 'eth_getLogs', [Object.assign({ topics: [null, null, null, null] }, span)]), [],
      'four positions need four topics (Transfer logs have three)');
    assert.equal((await result(csv, 'eth_getLogs', [Object.assign({ topics: [[], [], null] }, span)])).length, rows.length);
    assert.deepEqual(await result(csv, 'eth_getLogs', [Object.assign({ topics: ['0x' + '00'.repeat(32)] }, span)]), []);
  });

  test('blockHash: the logs of that block', async () => {
    const b = blockByNumber.get('17173049');
    const byHash = await result(csv, 'eth_getLogs', [{ blockHash: b.hash }]);
    assert.deepEqual(byHash, await result(csv, 'eth_getLogs', [range(b.number, b.number)]));
    assert.equal(byHash.length, 114);
    assert.deepEqual(await errorOf(csv, 'eth_getLogs', [{ blockHash: '0x' + '12'.repeat(32) }]), { code: -32000, message: 'unknown block' });
  });

  test('Geth v1.17.5 errors and codes', async () => {
    const cases = [
      [[range(17173050, 17173049)], -32602, 'invalid block range params'],
      [[range(17173049, HEAD + 1)], -32602, 'block range extends beyond current head block'],
      [[{ fromBlock: hex(HEAD + 1) }], -32602, 'invalid block range params'],
      [[{ fromBlock: 'pending' }], -32602, 'pending logs are not supported'],
      [[{ toBlock: 'finalized' }], -32000, 'finalized header not found'],
      [[{ blockHash: blockByNumber.get('0').hash, fromBlock: '0x0' }], -32602,
        'invalid argument 0: cannot specify both BlockHash and FromBlock/ToBlock, choose one or the other'],
      [[{ topics: [null, null, null, null, null] }], -32602, 'invalid argument 0: exceed max topics'],
      [[{ topics: [[1]] }], -32602, 'invalid argument 0: invalid topic(s)'],
      [[{ topics: [7] }], -32602, 'invalid argument 0: invalid topic(s)'],
      [[{ topics: 'x' }], -32602, 'invalid argument 0: json: cannot unmarshal string into Go struct field input.topics of type []interface {}'],
      [[{ address: '0x12' }], -32602, 'invalid argument 0: invalid address: hex has invalid length 1 after decoding; expected 20 for address'],
      [[{ address: ['0x' + '11'.repeat(20), 'zz'] }], -32602, 'invalid argument 0: invalid address at index 1: hex string without 0x prefix'],
      [[{ address: [5] }], -32602, 'invalid argument 0: non-string address at index 0'],
      [[{ address: 5 }], -32602, 'invalid argument 0: invalid addresses in query'],
      [[{ fromBlock: '0x01' }], -32602, 'invalid argument 0: hex number with leading zero digits'],
      [[{ blockHash: '0x12' }], -32602, 'invalid argument 0: hex string has length 2, want 64 for common.Hash'],
      [[{ blockHash: 12 }], -32602, 'invalid argument 0: json: cannot unmarshal non-string into Go struct field input.blockHash of type common.Hash'],
      [['x'], -32602, 'invalid argument 0: json: cannot unmarshal string into Go value of type filters.input'],
      [[], -32602, 'missing value for required argument 0'],
    ];
    for (const [params, code, message] of cases) {
      assert.deepEqual(await errorOf(csv, 'eth_getLogs', params), { code, message }, JSON.stringify(params));
    }
  });

  test('hash and address arguments: Go\'s json type errors', async () => {
    const cases = [
      ['eth_getTransactionByHash', [null], 'invalid argument 0: json: cannot unmarshal non-string into Go value of type common.Hash'],
      ['eth_getTransactionByHash', ['12'], 'invalid argument 0: json: cannot unmarshal hex string without 0x prefix into Go value of type common.Hash'],
      ['eth_getTransactionByHash', ['0x123'], 'invalid argument 0: json: cannot unmarshal hex string of odd length into Go value of type common.Hash'],
      ['eth_getTransactionByHash', ['0x' + 'z'.repeat(64)], 'invalid argument 0: json: cannot unmarshal invalid hex string into Go value of type common.Hash'],
      ['eth_getBalance', [5], 'invalid argument 0: json: cannot unmarshal non-string into Go value of type common.Address'],
      ['eth_getBalance', ['0x' + '11'.repeat(20), '0x01'], 'invalid argument 1: hex number with leading zero digits'],
      ['eth_getBlockByNumber', ['0x01'], 'invalid argument 0: hex number with leading zero digits'],
    ];
    for (const [method, params, message] of cases) {
      assert.deepEqual(await errorOf(csv, method, params), { code: -32602, message }, method + JSON.stringify(params));
    }
  });
});

describe('the pruned profile on the mainnet data', () => {
  test('pruned (Geth --history.chain postmerge) on the mainnet data: bodies, receipts and logs below the merge are 4444', async () => {
    const s = csv;
    const r0 = await s.request({ path: '/control/rpc', body: { profile: 'pruned' } });
    assert.equal(r0.json.historyCutoff, 15537393);
    try {
      const pruned = { code: 4444, message: 'pruned history unavailable' };
      const ask = (method, params) => call(s, method, params);
      for (const [method, params] of [
        ['eth_getBlockByNumber', ['0x7a120', false]],
        ['eth_getBlockByNumber', ['0x7a120', true]],
        ['eth_getBlockReceipts', ['0x7a120']],
        ['eth_getBlockTransactionCountByNumber', ['0x7a120']],
        ['eth_getLogs', [{ fromBlock: '0x7a120', toBlock: 'latest' }]],
      ]) {
        assert.deepEqual((await ask(method, params)).error, pruned, method);
      }
      const old = await ask('eth_getHeaderByNumber', ['0x7a120']);
      assert.equal(old.result.number, '0x7a120', 'headers stay');
      assert.deepEqual((await ask('eth_getBlockByHash', [old.result.hash, false])).error, pruned);
      assert.deepEqual((await ask('eth_getLogs', [{ blockHash: old.result.hash }])).error, pruned);
      const oldTx = (await ask('eth_getBlockByNumber', ['0x1060a39', false])).result.transactions[0];
      assert.ok(oldTx, 'blocks after the merge are there');
      assert.equal((await ask('eth_getBlockReceipts', ['0x1060a39'])).result.length, 116);
      assert.equal((await ask('eth_getLogs', [{ fromBlock: '0x1060a39', toBlock: 'latest' }])).result.length, 291);
      // a transaction whose body is gone is not found (GetCanonicalTransaction): null
      const tx2015 = '0x99f1097abd8f33a68f0ed63d60de5f3e7e2a3e0579b90d5f46a4f201c658b46d';
      assert.deepEqual(await ask('eth_getTransactionByHash', [tx2015]), { jsonrpc: '2.0', id: 1, result: null });
      assert.deepEqual(await ask('eth_getTransactionReceipt', [tx2015]), { jsonrpc: '2.0', id: 1, result: null });
      assert.equal((await ask('eth_getTransactionReceipt', [oldTx])).result.transactionHash, oldTx);
      // state is not history
      assert.equal((await ask('eth_getBalance', ['0x' + '11'.repeat(20), '0x7a120'])).result, '0x0');
    } finally {
      await s.control('DELETE', 'rpc');
    }
  });

});

describe('generated chain: JSON-RPC equals /graphql', () => {
  test('eth_getLogs equals logs(filter:) with the same addresses and topics', async () => {
    const facts = await gen.control('GET', 'chain');
    const tokens = facts.tokens.map((t) => t.address);
    const q = `query($f: Long!, $t: Long!, $a: [Address!], $top: [[Bytes32!]!]) {
      logs(filter: {fromBlock: $f, toBlock: $t, addresses: $a, topics: $top}) {
        index account { address } topics data transaction { hash index block { number hash timestamp } } } }`;
    for (const [addresses, topics] of [[[], []], [tokens.slice(0, 2), [[TRANSFER]]], [[facts.nft.address], [[TRANSFER], [], []]]]) {
      const g = (await gen.gql(q, { f: 100, t: 140, a: addresses, top: topics })).json.data.logs;
      const filter = { fromBlock: hex(100), toBlock: hex(140), address: addresses, topics: topics.map((t) => (t.length ? t : null)) };
      const r = await result(gen, 'eth_getLogs', [filter]);
      assert.ok(g.length > 10, `${g.length} logs`);
      assert.equal(r.length, g.length);
      r.forEach((l, i) => {
        const x = g[i];
        assert.deepEqual(l, {
          address: x.account.address,
          topics: x.topics,
          data: x.data,
          blockNumber: x.transaction.block.number,
          transactionHash: x.transaction.hash,
          transactionIndex: x.transaction.index,
          blockHash: x.transaction.block.hash,
          blockTimestamp: x.transaction.block.timestamp,
          logIndex: x.index,
          removed: false,
        });
      });
    }
  });

  test('eth_getBlockReceipts equals the receipts GraphQL gives; finalized and safe tags', async () => {
    const g = (await gen.gql('{ block(number: 222) { hash transactions { hash status gasUsed cumulativeGasUsed effectiveGasPrice logs { index } } } }')).json.data.block;
    const r = await result(gen, 'eth_getBlockReceipts', [hex(222)]);
    assert.equal(r.length, g.transactions.length);
    r.forEach((x, i) => {
      const t = g.transactions[i];
      assert.equal(x.transactionHash, t.hash);
      assert.equal(x.status, t.status);
      assert.equal(x.gasUsed, t.gasUsed);
      assert.equal(x.cumulativeGasUsed, t.cumulativeGasUsed);
      assert.equal(x.effectiveGasPrice, t.effectiveGasPrice);
      assert.deepEqual(x.logs.map((l) => l.logIndex), t.logs.map((l) => l.index));
    });
    assert.equal((await result(gen, 'eth_getBlockReceipts', ['finalized']))[0].blockNumber, hex(299 - 64));
    assert.equal((await result(gen, 'eth_getBlockReceipts', ['safe']))[0].blockNumber, hex(299 - 32));
    assert.equal(await result(gen, 'eth_getBlockTransactionCountByNumber', ['0x0']), '0x0');
  });
});
