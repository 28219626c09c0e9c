'use strict';
// Geth behaviour against real mainnet data (--data ../shared/data).

const { test, before, after, describe } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, readCSV, hex, DATA_DIR } = require('../testlib/helpers');

let srv;
before(async () => { srv = await startServer(['--data', DATA_DIR]); });
after(async () => { if (srv) await srv.stop(); });

const BLOCK_FIELDS = `number hash parent { hash } timestamp miner { address } gasUsed gasLimit baseFeePerGas transactionCount
  transactions { index hash from { address } to { address } value gas gasPrice inputData }`;

describe('mainnet data', () => {
  test('blocks 500000-500010 equal blocks.csv / txs.csv', async () => {
    const r = await srv.gql(`{ blocks(from: "0x7a120", to: "0x7a12a") { ${BLOCK_FIELDS} } }`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.errors, undefined);
    const blocks = readCSV('blocks.csv').filter((b) => +b.number >= 500000 && +b.number <= 500010);
    const txs = readCSV('txs.csv').filter((t) => +t.block >= 500000 && +t.block <= 500010);
    assert.equal(blocks.length, 11);
    const got = r.json.data.blocks;
    assert.equal(got.length, 11);
    for (let i = 0; i < 11; i++) {
      const b = blocks[i];
      const g = got[i];
      assert.equal(g.number, hex(b.number));
      assert.equal(g.hash, b.hash);
      assert.equal(g.parent.hash, b.parent_hash);
      assert.equal(g.timestamp, hex(b.timestamp));
      assert.equal(g.miner.address, b.miner);
      assert.equal(g.gasUsed, hex(b.gas_used));
      assert.equal(g.gasLimit, '0x0', 'gasLimit default');
      assert.equal(g.baseFeePerGas, null);
      assert.equal(g.transactionCount, hex(b.tx_count));
      const btx = txs.filter((t) => t.block === b.number).sort((x, y) => x.idx - y.idx);
      assert.equal(g.transactions.length, btx.length);
      btx.forEach((t, j) => {
        const gt = g.transactions[j];
        assert.deepEqual(gt, {
          index: hex(t.idx),
          hash: t.hash,
          from: { address: t.from },
          to: t.to ? { address: t.to } : null,
          value: hex(t.value_wei),
          gas: hex(t.gas),
          gasPrice: hex(t.gas_price),
          inputData: t.input_prefix,
        });
      });
    }
  });

  test('an unknown field in blocks(from,to) is rejected like Geth (HTTP 400, no data)', async () => {
    const q = '{ blocks(from: "0x7a120", to: "0x7a12a") { number foo transactions { hash } } }';
    const r = await srv.gql(q);
    assert.equal(r.status, 400, r.text);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.deepEqual(r.json, {
      errors: [{ message: 'Cannot query field "foo" on type "Block".', locations: [{ line: 1, column: q.indexOf('foo') + 1 }] }],
    });
    // the same query without the unknown field answers the CSV rows
    const ok = await srv.gql('{ blocks(from: "0x7a120", to: "0x7a12a") { number transactions { hash } } }');
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.data.blocks.length, 11);
    assert.equal(ok.json.data.blocks[2].transactions.length, 2);
  });

  test('hex serialisation of Long and BigInt, lowercase, empty bytes 0x', async () => {
    const r = await srv.gql('{ block(number: 500013) { number gasUsed transactions { value gasPrice nonce inputData to { address } } } }');
    assert.equal(r.status, 200);
    const b = r.json.data.block;
    assert.match(b.number, /^0x[0-9a-f]+$/);
    for (const t of b.transactions) {
      for (const k of ['value', 'gasPrice', 'nonce']) assert.match(t[k], /^0x(0|[1-9a-f][0-9a-f]*)$/, k);
      assert.match(t.inputData, /^0x([0-9a-f]{2})*$/);
    }
    assert.equal(b.transactions[0].inputData, '0x');
    // contract creation: to is null
    assert.equal(b.transactions[1].to, null);
    for (const m of r.text.matchAll(/"(0x[^"]*)"/g)) assert.equal(m[1], m[1].toLowerCase(), 'lowercase hex only');
  });

  test('to beyond head is cut at head, sparse blocks only', async () => {
    const r = await srv.gql('query($f: Long, $t: Long) { blocks(from: $f, to: $t) { number } }', { f: '0x1060a38', t: 999999999 });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.data.blocks.map((b) => b.number), [hex(17173049), hex(17173050)]);
    const r2 = await srv.gql('{ blocks(from: "500995", to: "600000") { number } }');
    assert.deepEqual(r2.json.data.blocks.map((b) => Number(b.number)), [500995, 500996, 500997, 500998, 500999, 501000]);
  });

  test('from beyond head gives []', async () => {
    const r = await srv.gql('{ blocks(from: "0x1060a3b", to: "0x1060b00") { number } }');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { data: { blocks: [] } });
    // without "to", "to" defaults to the head, so from > head is a range error in Geth
    const r2 = await srv.gql('{ blocks(from: "0x1060a3b") { number } }');
    assert.equal(r2.status, 400);
    assert.equal(r2.json.errors[0].message, 'invalid from and to block combination: from > to');
  });

  test('to < from is an error (HTTP 400, data null)', async () => {
    const r = await srv.gql('{ blocks(from: 10, to: 5) { number } }');
    assert.equal(r.status, 400);
    assert.deepEqual(r.json, {
      errors: [{ message: 'invalid from and to block combination: from > to', path: ['blocks'] }],
      data: null,
    });
    assert.ok(r.text.includes('from \\u003e to'), 'Go JSON escaping');
  });

  test('missing block is null with 200', async () => {
    const r = await srv.gql('{ block(number: 12345) { number hash } }');
    assert.equal(r.status, 200);
    assert.equal(r.text, '{"data":{"block":null}}');
  });

  test('transaction(hash:) lookup with receipt fields', async () => {
    const h = '0xf9e4ca8a940bd7f192dd12e75b32938f187e8098a41817a8e611448e22cca9cc';
    const r = await srv.gql(`{ transaction(hash: "${h}") { hash index block { number } status gasUsed cumulativeGasUsed createdContract { address code } to { address } } }`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.data.transaction, {
      hash: h,
      index: hex(115),
      block: { number: hex(17173050) },
      status: '0x1',
      gasUsed: hex(795706),
      cumulativeGasUsed: hex(8872191),
      createdContract: { address: '0x303abf64fe75964565d2b44b9e4518e6126f1f0e', code: '0x6080604052' },
      to: null,
    });
    const miss = await srv.gql('{ transaction(hash: "0x0000000000000000000000000000000000000000000000000000000000000001") { hash } }');
    assert.deepEqual(miss.json, { data: { transaction: null } });
  });

  test('token transfers are ERC-20 Transfer logs; filter by address and topics', async () => {
    const tt = readCSV('token_transfers.csv').filter((t) => t.block === '17173050');
    const token = tt[0].token;
    const expected = tt.filter((t) => t.token === token);
    const r = await srv.gql('query($f: FilterCriteria!) { logs(filter: $f) { index account { address } topics data transaction { hash } } }', {
      f: { fromBlock: '0x1060a3a', toBlock: '0x1060a3a', addresses: [token] },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.data.logs.length, expected.length);
    const l = r.json.data.logs[0];
    assert.equal(l.index, hex(expected[0].log_index));
    assert.equal(l.account.address, token);
    assert.equal(l.topics[0], '0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef');
    assert.equal(l.topics[1], '0x' + '0'.repeat(24) + expected[0].from.slice(2));
    assert.equal(l.topics[2], '0x' + '0'.repeat(24) + expected[0].to.slice(2));
    assert.equal(BigInt(l.data), BigInt(expected[0].value_raw));
    assert.equal(l.data.length, 66);
    assert.equal(l.transaction.hash, expected[0].tx_hash);
    // by topic: transfers to one recipient
    const to = expected[0].to;
    const r2 = await srv.gql('query($f: FilterCriteria!) { logs(filter: $f) { index } }', {
      f: { fromBlock: 17173049, toBlock: 17173050, topics: [[], [], ['0x' + '0'.repeat(24) + to.slice(2)]] },
    });
    const n = readCSV('token_transfers.csv').filter((t) => (t.block === '17173049' || t.block === '17173050') && t.to === to).length;
    assert.equal(r2.json.data.logs.length, n);
  });

  test('logs with toBlock beyond head is an error', async () => {
    const r = await srv.gql('{ logs(filter: {fromBlock: "0x1060a39", toBlock: "0x1060a3b"}) { index } }');
    assert.equal(r.status, 400);
    assert.equal(r.json.errors[0].message, 'block range extends beyond current head block');
    assert.deepEqual(r.json.errors[0].path, ['logs']);
  });
});
