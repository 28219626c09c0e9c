'use strict';
// Geth's HTTP/GraphQL protocol behaviour (graphql/service.go, graph-gophers).

const { test, before, after, describe } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, request } = require('../testlib/helpers');

let srv;
before(async () => { srv = await startServer(['--generate', '2000', '--seed', '3', '--txs-per-block', '20-40', '--vhosts', 'localhost']); });
after(async () => { if (srv) await srv.stop(); });

function nest(depth) {
  // depth counts fields: block(1) > parent(2) ... > number(depth)
  let q = 'number';
  for (let i = 0; i < depth - 2; i++) q = `parent { ${q} }`;
  return `{ block { ${q} } }`;
}

describe('validation errors are Geth-worded and answer HTTP 400', () => {
  test('unknown field', async () => {
    const r = await srv.gql('{ block { number foo } }');
    assert.equal(r.status, 400);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.deepEqual(r.json, { errors: [{ message: 'Cannot query field "foo" on type "Block".', locations: [{ line: 1, column: 18 }] }] });
  });

  test('unknown field with suggestions like graph-gophers', async () => {
    const r = await srv.gql('{ block { transaction { hash } } }');
    assert.equal(r.status, 400);
    assert.equal(r.json.errors[0].message,
      'Cannot query field "transaction" on type "Block". Did you mean "transactions", "transactionAt", "transactionsRoot", or "transactionCount"?');
    const r2 = await srv.gql('{ block { numbr } }');
    assert.equal(r2.json.errors[0].message, 'Cannot query field "numbr" on type "Block". Did you mean "number"?');
  });

  test('unknown argument and missing required argument', async () => {
    const r = await srv.gql('{ block(numbr: 1) { number } }');
    assert.equal(r.status, 400);
    assert.equal(r.json.errors[0].message, 'Unknown argument "numbr" on field "block" of type "Query".');
    const r2 = await srv.gql('{ transaction { hash } }');
    assert.equal(r2.json.errors[0].message, 'Field "transaction" argument "hash" of type "Bytes32!" is required but not provided.');
    const r3 = await srv.gql('{ logs(filter: {fromBlock: 1, bogus: 2}) { index } }');
    assert.equal(r3.json.errors[0].message, 'Argument "filter" has invalid value {fromBlock: 1, bogus: 2}.\nIn field "bogus": Unknown field.');
  });

  test('query depth is limited to 20', async () => {
    const ok = await srv.gql(nest(20));
    assert.equal(ok.status, 200, ok.text);
    const r = await srv.gql(nest(21));
    assert.equal(r.status, 400);
    assert.equal(r.json.errors.length, 1);
    assert.equal(r.json.errors[0].message, 'Field "number" has depth 21 that exceeds max depth 20');
    assert.equal(r.json.data, undefined);
  });

  test('syntax error', async () => {
    const r = await srv.gql('{ block { number }');
    assert.equal(r.status, 400);
    assert.match(r.json.errors[0].message, /^syntax error: /);
  });

  test('null for a required variable', async () => {
    const r = await srv.gql('query($h: Bytes32!) { transaction(hash: $h) { hash } }', {});
    assert.equal(r.status, 400);
    assert.equal(r.json.errors[0].message, 'Variable "h" has invalid value null.\nExpected type "Bytes32!", found null.');
  });
});

describe('Long and other scalar inputs', () => {
  test('hex string, decimal string, JSON number and int literal are all accepted', async () => {
    for (const [q, v] of [
      ['{ block(number: "0x64") { number } }', undefined],
      ['{ block(number: "100") { number } }', undefined],
      ['{ block(number: 100) { number } }', undefined],
      ['query($n: Long) { block(number: $n) { number } }', { n: 100 }],
      ['query($n: Long) { block(number: $n) { number } }', { n: '0x64' }],
    ]) {
      const r = await srv.gql(q, v);
      assert.equal(r.status, 200, q + ' ' + r.text);
      assert.equal(r.json.data.block.number, '0x64');
    }
  });

  test('int literals are 32-bit in the query text (Geth panics)', async () => {
    const r = await srv.gql('{ block(number: 5000000000) { number } }');
    assert.equal(r.status, 400);
    assert.deepEqual(r.json, { errors: [{ message: 'panic occurred: strconv.ParseInt: parsing "5000000000": value out of range' }] });
    const ok = await srv.gql('query($n: Long) { block(number: $n) { number } }', { n: 5000000000 });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.data.block, null);
  });

  test('bad Long inputs give hexutil messages and drop the rest of the selection', async () => {
    const r = await srv.gql('{ chainID block(number: "0x01") { number } gasPrice }');
    assert.equal(r.status, 400);
    assert.deepEqual(r.json, { errors: [{ message: 'hex number with leading zero digits' }], data: { chainID: '0x539' } });
    const r2 = await srv.gql('{ block(number: "abc") { number } }');
    assert.equal(r2.json.errors[0].message, 'strconv.ParseInt: parsing "abc": invalid syntax');
    const r3 = await srv.gql('{ block(number: true) { number } }');
    assert.equal(r3.json.errors[0].message, 'unexpected type bool for Long');
    const r4 = await srv.gql('{ transaction(hash: "0x12") { hash } }');
    assert.equal(r4.json.errors[0].message, 'hex string has length 2, want 64 for Hash');
  });
});

describe('resolver errors', () => {
  test('HTTP 400 with partial data', async () => {
    const r = await srv.gql('{ chainID block(hash: "0x0000000000000000000000000000000000000000000000000000000000000001") { number } }');
    assert.equal(r.status, 400);
    assert.deepEqual(r.json, {
      errors: [{ message: 'header for hash not found', path: ['block'] }],
      data: { chainID: '0x539', block: null },
    });
  });

  test('blocks without from, number and hash together', async () => {
    const r = await srv.gql('{ blocks { number } }');
    assert.equal(r.json.errors[0].message, 'from block number must be specified');
    const r2 = await srv.gql('{ block(number: 1, hash: "0x0000000000000000000000000000000000000000000000000000000000000001") { number } }');
    assert.equal(r2.json.errors[0].message, 'only one of number or hash must be specified');
  });
});

describe('HTTP layer', () => {
  test('request body over 5 MiB gets 413', async () => {
    const big = Buffer.alloc(5 * 1024 * 1024 + 10, 0x20);
    const r = await srv.request({ body: big });
    assert.equal(r.status, 413);
    assert.equal(r.text, 'http: request body too large\n');
    const ok = await srv.request({ body: Buffer.concat([Buffer.from('{"query":"{ chainID }"}'), Buffer.alloc(4 * 1024 * 1024, 0x20)]) });
    assert.equal(ok.status, 200);
  });

  test('vhosts: names not listed get 403, IP addresses pass', async () => {
    const q = { query: '{ chainID }' };
    const bad = await srv.request({ body: q, headers: { Host: 'evil.example:8545' } });
    assert.equal(bad.status, 403);
    assert.equal(bad.text, 'invalid host specified\n');
    assert.equal((await srv.request({ body: q, headers: { Host: 'localhost:8545' } })).status, 200);
    assert.equal((await srv.request({ body: q, headers: { Host: '192.0.2.7:8545' } })).status, 200);
    assert.equal((await srv.request({ body: q, headers: { Host: '[::1]:8545' } })).status, 200);
  });

  test('Accept-Encoding: gzip is honoured', async () => {
    const body = { query: '{ blocks(from: 1, to: 20) { hash transactions { hash } } }' };
    const gz = await srv.request({ body, headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(gz.status, 200);
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gz.json.data.blocks.length, 20);
    const plain = await srv.request({ body });
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.text, gz.text);
    assert.ok(gz.raw.length < plain.raw.length / 2);
  });

  test('bad request bodies: Go json errors, GET has no query support', async () => {
    let r = await srv.request({ method: 'GET', path: '/graphql?query=%7BchainID%7D' });
    assert.equal(r.status, 400);
    assert.equal(r.text, 'EOF\n');
    r = await srv.request({ body: 'nope' });
    assert.equal(r.status, 400);
    assert.equal(r.text, "invalid character 'o' in literal null (expecting 'u')\n");
    r = await srv.request({ body: '{"query" "x"}' });
    assert.equal(r.text, "invalid character '\"' after object key\n");
    r = await srv.request({ body: '{"query": "{ chainID }"' });
    assert.equal(r.text, 'unexpected EOF\n');
    r = await srv.request({ body: '{"query": 5}' });
    assert.equal(r.text, 'json: cannot unmarshal number into Go struct field .query of type string\n');
    r = await srv.request({ body: '{"query":"{ chainID }"} {}' });
    assert.equal(r.text, 'unexpected content after JSON value\n');
    r = await srv.request({ body: '{"query":""}' });
    assert.deepEqual(r.json, { errors: [{ message: 'no operations in query document' }] });
  });

  test('operationName selects the operation', async () => {
    const q = 'query A { chainID } query B { gasPrice }';
    const r = await srv.gql(q, undefined, { body: { query: q, operationName: 'B' } });
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.json.data), ['gasPrice']);
    const r2 = await srv.gql(q);
    assert.equal(r2.json.errors[0].message, 'more than one operation in query document and no operation name given');
  });

  test('server-side time-out answers 200 "request timed out"', async () => {
    const slow = await startServer(['--generate', '100000', '--seed', '1', '--write-timeout', '400']);
    try {
      // (no timing: that the answer is the time-out one proves the cut)
      const r = await slow.gql('{ blocks(from: 1, to: 90000) { hash transactions { hash value } } }');
      assert.equal(r.status, 200);
      assert.equal(r.text, '{"errors":[{"message":"request timed out"}]}');
      assert.equal(r.headers['content-length'], String(r.text.length));
    } finally {
      await slow.stop();
    }
  });

  test('introspection and __typename', async () => {
    const r = await srv.gql('{ __type(name: "Block") { fields { name } } block { __typename number } }');
    assert.equal(r.status, 200);
    assert.ok(r.json.data.__type.fields.some((f) => f.name === 'transactions'));
    assert.equal(r.json.data.block.__typename, 'Block');
  });

  test('JSON-RPC stub at / (extension point)', async () => {
    const r = await srv.request({ path: '/', body: { jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] } });
    assert.deepEqual(r.json, { jsonrpc: '2.0', id: 1, result: '0x539' });
    // eth_call is not served (-32601); eth_getBalance is, and checks its arguments like Geth
    const r2 = await srv.request({ path: '/', body: { jsonrpc: '2.0', id: 2, method: 'eth_call', params: [] } });
    assert.equal(r2.json.error.code, -32601);
    const r3 = await srv.request({ path: '/', body: { jsonrpc: '2.0', id: 3, method: 'eth_getBalance', params: [] } });
    assert.deepEqual(r3.json.error, { code: -32602, message: 'missing value for required argument 0' });
  });

  test('unknown path is 404', async () => {
    const r = await request(srv.port, { method: 'GET', path: '/nope' });
    assert.equal(r.status, 404);
  });
});
