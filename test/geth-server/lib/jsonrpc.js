'use strict';
// Minimal JSON-RPC 2.0 endpoint at "/" (Geth serves eth_* there when --http
// is on). Only a few read-only methods exist today; this is the place to add
// eth_getBlockByNumber & co. later: add an entry to METHODS.

const { hexNum } = require('./geth-values');

const METHODS = {
  web3_clientVersion: () => 'Geth/v1.17.5-stable-ethwhale-test/linux-amd64/go1.24',
  net_version: (src) => src.chainId.toString(10),
  eth_chainId: (src) => hexNum(src.chainId),
  eth_blockNumber: (src) => hexNum(src.head()),
  eth_syncing: () => false,
};

function callOne(src, req) {
  const id = req && Object.prototype.hasOwnProperty.call(req, 'id') ? req.id : null;
  if (!req || typeof req !== 'object' || req.jsonrpc !== '2.0' || typeof req.method !== 'string') {
    return { jsonrpc: '2.0', id, error: { code: -32600, message: 'invalid request' } };
  }
  const fn = METHODS[req.method];
  if (!fn) {
    return { jsonrpc: '2.0', id, error: { code: -32601, message: `the method ${req.method} does not exist/is not available` } };
  }
  try {
    return { jsonrpc: '2.0', id, result: fn(src, req.params || []) };
  } catch (e) {
    return { jsonrpc: '2.0', id, error: { code: -32000, message: e.message } };
  }
}

// Returns {status, body}
function handleJsonRpc(src, bodyText) {
  let msg;
  try {
    msg = JSON.parse(bodyText);
  } catch (e) {
    return { status: 200, body: JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse error' } }) };
  }
  if (Array.isArray(msg)) {
    if (msg.length === 0) {
      return { status: 200, body: JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'empty batch' } }) };
    }
    return { status: 200, body: JSON.stringify(msg.map((m) => callOne(src, m))) };
  }
  return { status: 200, body: JSON.stringify(callOne(src, msg)) };
}

module.exports = { handleJsonRpc, METHODS };
