'use strict';
// The query log records each request's headers, so that tests can check
// what a client sent (e.g. the wrapper's Authorization header).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer } = require('../testlib/helpers');

let srv;
before(async () => { srv = await startServer(['--generate', '20']); });
after(async () => { if (srv) await srv.stop(); });

test('request headers are logged, Authorization and custom ones included', async () => {
  await srv.control('DELETE', 'log');
  const r = await srv.gql('{ block(number: 3) { number } }', undefined, {
    headers: { Authorization: 'Bearer t0k3n', 'X-Api-Key': 'k-1' },
  });
  assert.equal(r.status, 200);
  await srv.gql('{ chainID }');
  const log = await srv.control('GET', 'log');
  assert.equal(log.length, 2);
  assert.equal(log[0].headers.authorization, 'Bearer t0k3n');
  assert.equal(log[0].headers['x-api-key'], 'k-1');
  assert.equal(log[0].headers['content-type'], 'application/json');
  assert.equal(log[1].headers.authorization, undefined);
});
