'use strict';
// Real account state (--data ../shared/data/accounts, with accounts.csv):
// block(number:){account(address:)} and eth_getBalance / eth_getTransactionCount
// / eth_getCode answer accounts.csv at the blocks it covers, and Geth's
// missing-state errors (a pruned node) everywhere else; never invented zeros.
// Nonces, gasLimit and baseFeePerGas of that data come from its CSV columns.

const { test, before, after, describe } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, readCSV, hex } = require('../testlib/helpers');

const ACC = 'accounts/';
let srv;
let rows;
let blocks;
let txs;

before(async () => {
  srv = await startServer(['--data', require('../testlib/helpers').DATA_DIR + '/accounts']);
  rows = readCSV(ACC + 'accounts.csv');
  blocks = readCSV(ACC + 'blocks.csv');
  txs = readCSV(ACC + 'txs.csv');
});
after(async () => { if (srv) await srv.stop(); });

async function rpc(body) {
  return srv.request({ path: '/', body });
}

const CODE = (flag) => (flag === 't' ? (c) => c !== '0x' && c.length > 2 : (c) => c === '0x');

describe('account state from accounts.csv', () => {
  test('GraphQL account(address:) at every covered block equals accounts.csv (a sample per block)', async () => {
    const byBlock = new Map();
    for (const r of rows) {
      if (!byBlock.has(r.block)) byBlock.set(r.block, []);
      byBlock.get(r.block).push(r);
    }
    assert.ok(byBlock.size >= 80, `expected the 84 state blocks, got ${byBlock.size}`);
    let checked = 0;
    let contracts = 0;
    let rich = 0;
    for (const [block, rs] of byBlock) {
      // first 20 of each block: contracts and EOAs, zero and non-zero balances
      const sample = rs.slice(0, 20);
      const sel = sample.map((r, i) => `a${i}: account(address: "${r.address}") { address balance transactionCount code }`).join(' ');
      const r = await srv.gql(`query($b: Long) { block(number: $b) { number ${sel} } }`, { b: block });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.errors, undefined, r.text);
      assert.equal(r.json.data.block.number, hex(block));
      sample.forEach((want, i) => {
        const got = r.json.data.block[`a${i}`];
        assert.equal(got.address, want.address);
        assert.equal(got.balance, hex(want.balance_wei), `${want.address} at ${block}`);
        assert.equal(got.transactionCount, hex(want.nonce), `${want.address} at ${block}`);
        assert.ok(CODE(want.is_contract)(got.code), `${want.address} at ${block}: code ${got.code} vs is_contract ${want.is_contract}`);
        checked++;
        if (want.is_contract === 't') contracts++;
        if (BigInt(want.balance_wei) > 10n ** 18n) rich++;
      });
    }
    assert.ok(checked > 1000 && contracts > 50 && rich > 50, `${checked} ${contracts} ${rich}`);
  });

  test('an account at a block of the data but not in accounts.csv: missing trie node, not zeros', async () => {
    const r0 = rows[0];
    const absent = '0x' + '12'.repeat(20);
    assert.ok(!rows.some((r) => r.block === r0.block && r.address === absent));
    const r = await srv.gql(`query($b: Long) { block(number: $b) { number ok: account(address: "${r0.address}") { balance } no: account(address: "${absent}") { balance } } }`, { b: r0.block });
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.errors[0].message, /^missing trie node [0-9a-f]{64} \(path \)/);
    assert.deepEqual(r.json.errors[0].path, ['block', 'no', 'balance']);
  });

  test('a block without state (the head, blocks of blocks.csv only): historical state is not available', async () => {
    const head = Math.max(...blocks.map((b) => +b.number));
    assert.ok(!rows.some((r) => +r.block === head), 'the head has no state in the data');
    const addr = rows[rows.length - 1].address;
    for (const q of [`{ block { number account(address: "${addr}") { balance } } }`,
      `{ block(number: ${head}) { account(address: "${addr}") { transactionCount } } }`]) {
      const r = await srv.gql(q);
      assert.equal(r.status, 400, r.text);
      assert.match(r.json.errors[0].message, /^historical state [0-9a-f]{64} is not available$/, r.text);
    }
    // beyond the head: no block at all
    const r = await srv.gql(`query($b: Long) { block(number: $b) { account(address: "${addr}") { balance } } }`, { b: head + 1 });
    assert.deepEqual(r.json, { data: { block: null } });
  });

  test('a state-only block answers number and accounts; its header fields are errors', async () => {
    const bset = new Set(blocks.map((b) => b.number));
    const r0 = rows.find((r) => !bset.has(r.block));
    assert.ok(r0, 'some state blocks are not in blocks.csv');
    const r = await srv.gql(`query($b: Long) { block(number: $b) { number hash } }`, { b: r0.block });
    assert.equal(r.status, 400);
    assert.match(r.json.errors[0].message, /only its account state is in the test data/);
  });

  test('JSON-RPC eth_getBalance / eth_getTransactionCount / eth_getCode equal accounts.csv; Geth errors elsewhere', async () => {
    const sample = rows.filter((_, i) => i % 97 === 0);
    assert.ok(sample.length > 300);
    const batch = [];
    sample.forEach((r, i) => {
      const b = hex(r.block);
      batch.push({ jsonrpc: '2.0', id: 3 * i, method: 'eth_getBalance', params: [r.address, b] });
      batch.push({ jsonrpc: '2.0', id: 3 * i + 1, method: 'eth_getTransactionCount', params: [r.address.toUpperCase().replace('0X', '0x'), b] });
      batch.push({ jsonrpc: '2.0', id: 3 * i + 2, method: 'eth_getCode', params: [r.address, b] });
    });
    const byId = new Map();
    for (let k = 0; k < batch.length; k += 900) { // Geth's batch limit is 1000 calls
      const r = await rpc(batch.slice(k, k + 900));
      assert.equal(r.status, 200);
      assert.equal(r.json.length, Math.min(900, batch.length - k), JSON.stringify(r.json).slice(0, 300));
      for (const x of r.json) byId.set(x.id, x);
    }
    let contracts = 0;
    sample.forEach((want, i) => {
      assert.equal(byId.get(3 * i).result, hex(want.balance_wei), JSON.stringify(byId.get(3 * i)));
      assert.equal(byId.get(3 * i + 1).result, hex(want.nonce));
      assert.ok(CODE(want.is_contract)(byId.get(3 * i + 2).result));
      if (want.is_contract === 't') contracts++;
    });
    assert.ok(contracts > 10);

    const head = Math.max(...blocks.map((b) => +b.number));
    const a = rows[0].address;
    const errs = await rpc([
      { jsonrpc: '2.0', id: 1, method: 'eth_getBalance', params: [a, 'latest'] },
      { jsonrpc: '2.0', id: 2, method: 'eth_getBalance', params: [a, hex(head + 1)] },
      { jsonrpc: '2.0', id: 3, method: 'eth_getBalance', params: ['0x' + '12'.repeat(20), hex(rows[0].block)] },
      { jsonrpc: '2.0', id: 4, method: 'eth_getBalance', params: [a] },
      { jsonrpc: '2.0', id: 5, method: 'eth_getBalance', params: ['0x1234', 'latest'] },
    ]);
    const e = new Map(errs.json.map((x) => [x.id, x]));
    assert.equal(e.get(1).error.code, -32000);
    assert.match(e.get(1).error.message, /^historical state [0-9a-f]{64} is not available$/);
    assert.deepEqual(e.get(2).error, { code: -32000, message: 'header not found' });
    assert.equal(e.get(3).error.code, -32000);
    assert.match(e.get(3).error.message, /^missing trie node /);
    // the block is a *rpc.BlockNumberOrHash: absent means latest (blockNrOrHashOrLatest)
    assert.deepEqual(e.get(4).error, e.get(1).error);
    assert.deepEqual(e.get(5).error, { code: -32602, message: 'invalid argument 0: hex string has length 4, want 40 for common.Address' });
  });

  test('POST /control/head to a state-only block: the head account answers from it', async () => {
    const bset = new Set(blocks.map((b) => b.number));
    const r0 = rows.find((r) => !bset.has(r.block));
    const old = Math.max(...blocks.map((b) => +b.number));
    try {
      const h = await srv.control('POST', 'head', { number: +r0.block });
      assert.equal(h.head, +r0.block);
      const r = await srv.gql(`{ block { number account(address: "${r0.address}") { balance } } }`);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.data.block, { number: hex(r0.block), account: { balance: hex(r0.balance_wei) } });
      const j = await rpc({ jsonrpc: '2.0', id: 1, method: 'eth_getBalance', params: [r0.address, 'latest'] });
      assert.equal(j.json.result, hex(r0.balance_wei));
    } finally {
      await srv.control('POST', 'head', { number: old });
    }
  });

  test('nonce, gasLimit and baseFeePerGas come from the CSV columns', async () => {
    const b = blocks.find((x) => x.base_fee_per_gas !== '' && +x.tx_count > 10);
    assert.ok(b);
    const want = txs.filter((t) => t.block === b.number);
    const r = await srv.gql(`query($b: Long) { block(number: $b) { gasLimit baseFeePerGas transactions { hash nonce } } }`, { b: b.number });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.data.block.gasLimit, hex(b.gas_limit));
    assert.equal(r.json.data.block.baseFeePerGas, hex(b.base_fee_per_gas));
    assert.equal(r.json.data.block.transactions.length, want.length);
    assert.ok(want.some((t) => +t.nonce > 0));
    want.forEach((t, i) => {
      assert.equal(r.json.data.block.transactions[i].hash, t.hash);
      assert.equal(r.json.data.block.transactions[i].nonce, hex(t.nonce));
    });
  });
});

describe('without accounts.csv (--data of the main data): the documented placeholders stay', () => {
  test('account balance 0x0 at the head', async () => {
    const s = await startServer(['--data', require('../testlib/helpers').DATA_DIR]);
    try {
      const r = await s.gql('{ block { account(address: "0xdac17f958d2ee523a2206206994597c13d831ec7") { balance code } } }');
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.data.block.account.balance, '0x0');
      assert.equal(r.json.data.block.account.code, '0x6080604052');
    } finally {
      await s.stop();
    }
  });
});
