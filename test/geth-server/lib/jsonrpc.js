'use strict';
// JSON-RPC 2.0 endpoint at "/" (Geth serves eth_* there when --http is on),
// with the shapes, argument decoding and error texts of Geth v1.17.5
// (rpc/handler.go, rpc/json.go, rpc/types.go, internal/ethapi/api.go), checked
// against a real v1.17.5 dev node. Enough for ethereum-etl's
// export_blocks_and_transactions (batched eth_getBlockByNumber with full
// transaction objects) and for receipts; add methods to METHODS.
//
// Shapes:
//   - a block is a Go map, so its keys come out sorted (RPCMarshalHeader +
//     RPCMarshalBlock): optional keys (baseFeePerGas, withdrawals, ...) are
//     absent when the block has no such field; no totalDifficulty (gone in 1.17);
//   - a transaction is the RPCTransaction struct, in struct order; legacy
//     transactions have no maxFeePerGas/maxPriorityFeePerGas/accessList/yParity,
//     and chainId only when EIP-155 protected; gasPrice is the effective price;
//   - a receipt is a map (sorted keys); its logs are structs (struct order).
// `size` is an estimate of the RLP size (the test server has no RLP).

const { hexNum, decodeUint64, goJSONString, GoError } = require('./geth-values');
const { headerByNumber, accountState, OMMER_HASH_EMPTY } = require('./resolvers');

const BATCH_REQUEST_LIMIT = 1000;          // --rpc.batch-request-limit
const BATCH_RESPONSE_MAX_SIZE = 25000000;  // --rpc.batch-response-max-size
const MAX_INT64 = (1n << 63n) - 1n;

// An argument error: code -32602, "invalid argument N: ..." style texts.
class InvalidParams extends Error {}

function hexOrNull(v) {
  return v === null || v === undefined ? null : hexNum(v);
}

function isDynamic(t) {
  return t.type === 2 || t.type === 3 || t.type === 4;
}

// Effective gas price in a mined block (Geth's newRPCTransaction).
function effectiveGasPrice(t) {
  if (!isDynamic(t)) return t.gasPrice;
  const base = t.block && t.block.baseFee;
  if (base === null || base === undefined) return t.maxFee;
  const eff = t.maxTip + base;
  return eff < t.maxFee ? eff : t.maxFee;
}

function sigOf(t) {
  return t.sig ? t.sig() : { v: 0n, r: 0n, s: 0n };
}

// types.Transaction.Protected() for a legacy transaction.
function legacyProtected(v) {
  return !(v === 0n || v === 1n || v === 27n || v === 28n);
}

// RPCTransaction (struct order).
function rpcTransaction(t) {
  const b = t.block;
  const o = {
    blockHash: b.hash,
    blockNumber: hexNum(b.number),
    blockTimestamp: hexNum(b.timestamp),
    from: t.from,
    gas: hexNum(t.gas),
    gasPrice: hexNum(effectiveGasPrice(t)),
  };
  if (isDynamic(t)) {
    o.maxFeePerGas = hexNum(t.maxFee);
    o.maxPriorityFeePerGas = hexNum(t.maxTip);
  }
  o.hash = t.hash;
  o.input = t.input;
  o.nonce = hexNum(t.nonce);
  o.to = t.to;
  o.transactionIndex = hexNum(t.index);
  o.value = t.valueHex || (t.valueHex = hexNum(t.value));
  o.type = hexNum(t.type);
  const sig = sigOf(t);
  if (t.type === 0) {
    if (legacyProtected(sig.v) && b.chainId !== undefined) o.chainId = hexNum(b.chainId);
  } else {
    o.accessList = [];
    o.chainId = hexNum(b.chainId !== undefined ? b.chainId : 1n);
  }
  o.v = hexNum(sig.v);
  o.r = hexNum(sig.r);
  o.s = hexNum(sig.s);
  if (t.type !== 0) o.yParity = hexNum(sig.v);
  return o;
}

// Rough RLP size of a transaction and a block (see the file comment).
function txSizeEstimate(t) {
  const inputBytes = Math.max(0, (t.input.length - 2) / 2);
  return (isDynamic(t) ? 120 : 110) + inputBytes + (inputBytes >= 56 ? 3 : 1);
}

// RPCMarshalHeader + RPCMarshalBlock, keys sorted like a Go map.
function rpcBlock(b, fullTx) {
  const txs = b.txs;
  let size = 530 + (b.extraData.length - 2) / 2 + (b.withdrawals ? 3 : 0);
  for (let i = 0; i < txs.length; i++) size += txSizeEstimate(txs[i]);
  const o = {};
  if (b.baseFee !== null && b.baseFee !== undefined) o.baseFeePerGas = hexNum(b.baseFee);
  if (b.blobGasUsed !== null && b.blobGasUsed !== undefined) o.blobGasUsed = hexNum(b.blobGasUsed);
  o.difficulty = hexNum(b.difficulty);
  if (b.excessBlobGas !== null && b.excessBlobGas !== undefined) o.excessBlobGas = hexNum(b.excessBlobGas);
  o.extraData = b.extraData;
  o.gasLimit = hexNum(b.gasLimit);
  o.gasUsed = hexNum(b.gasUsed);
  o.hash = b.hash;
  o.logsBloom = b.logsBloom;
  o.miner = b.miner;
  o.mixHash = b.mixHash;
  o.nonce = b.nonce;
  o.number = hexNum(b.number);
  if (b.parentBeaconBlockRoot) o.parentBeaconBlockRoot = b.parentBeaconBlockRoot;
  o.parentHash = b.parentHash;
  o.receiptsRoot = b.receiptsRoot;
  if (b.requestsHash) o.requestsHash = b.requestsHash;
  o.sha3Uncles = b.ommerHash || OMMER_HASH_EMPTY;
  o.size = hexNum(Math.round(size));
  o.stateRoot = b.stateRoot;
  o.timestamp = hexNum(b.timestamp);
  o.transactions = fullTx ? txs.map(rpcTransaction) : txs.map((t) => t.hash);
  o.transactionsRoot = b.transactionsRoot;
  o.uncles = [];
  if (b.withdrawals !== null && b.withdrawals !== undefined) {
    o.withdrawals = b.withdrawals.map((w) => ({
      index: hexNum(w.index), validatorIndex: hexNum(w.validator), address: w.address, amount: hexNum(w.amount),
    }));
  }
  if (b.withdrawalsRoot !== null && b.withdrawalsRoot !== undefined) o.withdrawalsRoot = b.withdrawalsRoot;
  return o;
}

// types.Log (struct order) as Geth marshals it in a receipt.
function rpcLog(l) {
  const b = l.block;
  return {
    address: l.address,
    topics: l.topics,
    data: l.data,
    blockNumber: hexNum(b.number),
    transactionHash: l.tx.hash,
    transactionIndex: hexNum(l.tx.index),
    blockHash: b.hash,
    blockTimestamp: hexNum(b.timestamp),
    logIndex: hexNum(l.index),
    removed: false,
  };
}

// MarshalReceipt (a map: keys sorted).
function rpcReceipt(t) {
  const b = t.block;
  const r = t.receipt || {};
  const o = {
    blockHash: b.hash,
    blockNumber: hexNum(b.number),
    contractAddress: r.contractAddress || null,
    cumulativeGasUsed: hexOrNull(r.cumulativeGasUsed),
    effectiveGasPrice: hexNum(effectiveGasPrice(t)),
    from: t.from,
    gasUsed: hexOrNull(r.gasUsed),
    logs: t.logs.map(rpcLog),
    logsBloom: b.logsBloom,
  };
  if (r.status === null || r.status === undefined) o.root = '0x' + '0'.repeat(64); // pre-Byzantium
  else o.status = hexNum(r.status);
  o.to = t.to;
  o.transactionHash = t.hash;
  o.transactionIndex = hexNum(t.index);
  o.type = hexNum(t.type);
  return o;
}

// --- argument decoding (rpc/json.go parsePositionalArguments) -------------

// params -> array of `n` JSON values (undefined when absent); `required` of
// them must be present.
function positional(params, n, required) {
  if (params === undefined || params === null) params = [];
  if (!Array.isArray(params)) throw new InvalidParams('non-array args');
  if (params.length > n) throw new InvalidParams(`too many arguments, want at most ${n}`);
  for (let i = params.length; i < required; i++) throw new InvalidParams(`missing value for required argument ${i}`);
  return params;
}

function jsonKind(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v === 'object' ? 'object' : typeof v;
}

// rpc.BlockNumber.UnmarshalJSON -> number (negative: the special tags).
function parseBlockNumber(v, i) {
  let s;
  if (typeof v === 'string') s = v.trim();
  else s = JSON.stringify(v);
  switch (s) {
    case 'earliest': return -5;
    case 'safe': return -4;
    case 'finalized': return -3;
    case 'latest': return -2;
    case 'pending': return -1;
    default: break;
  }
  let n;
  try {
    n = decodeUint64(s);
  } catch (e) {
    throw new InvalidParams(`invalid argument ${i}: ${e.message}`);
  }
  if (n > MAX_INT64) throw new InvalidParams(`invalid argument ${i}: block number larger than int64`);
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
}

// A Go bool argument (null decodes to false).
function parseBool(v, i) {
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') {
    throw new InvalidParams(`invalid argument ${i}: json: cannot unmarshal ${jsonKind(v)} into Go value of type bool`);
  }
  return v;
}

// common.Hash.UnmarshalJSON
function parseHashArg(v, i) {
  if (typeof v !== 'string') {
    throw new InvalidParams(`invalid argument ${i}: json: cannot unmarshal ${jsonKind(v)} into Go value of type common.Hash`);
  }
  const raw = /^0[xX]/.test(v) ? v.slice(2) : null;
  if (raw === null) throw new InvalidParams(`invalid argument ${i}: hex string without 0x prefix`);
  if (raw.length % 2 !== 0) throw new InvalidParams(`invalid argument ${i}: hex string of odd length`);
  if (raw.length !== 64) throw new InvalidParams(`invalid argument ${i}: hex string has length ${raw.length}, want 64 for common.Hash`);
  if (!/^[0-9a-fA-F]*$/.test(raw)) throw new InvalidParams(`invalid argument ${i}: invalid hex string`);
  return '0x' + raw.toLowerCase();
}

function blockByTag(src, n) {
  if (n === -1) return src.getBlock(src.head()); // no pending block here: the head
  return headerByNumber(src, n); // GoError (e.g. no finalized block) -> -32000
}

function parseAddressArg(v, i) {
  if (typeof v !== 'string') {
    throw new InvalidParams(`invalid argument ${i}: json: cannot unmarshal ${jsonKind(v)} into Go value of type common.Address`);
  }
  if (!/^0[xX]/.test(v)) throw new InvalidParams(`invalid argument ${i}: hex string without 0x prefix`);
  const raw = v.slice(2);
  if (!/^[0-9a-fA-F]*$/.test(raw)) throw new InvalidParams(`invalid argument ${i}: json: cannot unmarshal invalid hex string into Go value of type common.Address`);
  if (raw.length !== 40) throw new InvalidParams(`invalid argument ${i}: hex string has length ${raw.length}, want 40 for common.Address`);
  return '0x' + raw.toLowerCase();
}

// eth_getBalance / eth_getTransactionCount / eth_getCode (address, block):
// the state at a block number or tag ("latest", "pending" = the head); a
// number beyond the head is Geth's "header not found"; a state the source
// does not have is its missing-state error (-32000).
function stateArg(src, params) {
  const p = positional(params, 2, 2);
  const address = parseAddressArg(p[0], 0);
  let n = parseBlockNumber(p[1], 1);
  if (n === -1) n = -2;
  if (n >= 0 && n > src.head()) throw new GoError('header not found');
  return accountState(src, { address, block: n === -2 ? null : n });
}

const METHODS = {
  eth_getBalance: (src, params) => hexNum(stateArg(src, params).balance),
  eth_getTransactionCount: (src, params) => hexNum(stateArg(src, params).nonce),
  eth_getCode: (src, params) => stateArg(src, params).code,
  web3_clientVersion: () => 'Geth/v1.17.5-stable-ethwhale-test/linux-amd64/go1.24',
  net_version: (src) => src.chainId.toString(10),
  eth_chainId: (src) => hexNum(src.chainId),
  eth_blockNumber: (src) => hexNum(src.head()),
  eth_syncing: () => false,
  eth_getBlockByNumber: (src, params) => {
    const p = positional(params, 2, 2);
    const n = parseBlockNumber(p[0], 0);
    const full = parseBool(p[1], 1);
    const b = blockByTag(src, n);
    return b ? rpcBlock(b, full) : null;
  },
  eth_getBlockByHash: (src, params) => {
    const p = positional(params, 2, 2);
    const h = parseHashArg(p[0], 0);
    const full = parseBool(p[1], 1);
    const b = src.blockByHash(h);
    return b ? rpcBlock(b, full) : null;
  },
  eth_getTransactionByHash: (src, params) => {
    const p = positional(params, 1, 1);
    const t = src.txByHash(parseHashArg(p[0], 0));
    return t ? rpcTransaction(t) : null;
  },
  eth_getTransactionReceipt: (src, params) => {
    const p = positional(params, 1, 1);
    const t = src.txByHash(parseHashArg(p[0], 0));
    return t ? rpcReceipt(t) : null;
  },
};

// One call -> [responseText, resultBytes] (null text for a notification).
function callOne(src, req) {
  const hasId = req && typeof req === 'object' && !Array.isArray(req) && Object.prototype.hasOwnProperty.call(req, 'id');
  const id = hasId ? req.id : null;
  // error texts are escaped like Go's encoding/json ('>' -> \u003e)
  const answer = (o) => [JSON.stringify(Object.assign({ jsonrpc: '2.0', id }, o))
    .replace(/"message":("(?:[^"\\]|\\.)*")/, (m, str) => '"message":' + goJSONString(JSON.parse(str))), 0];
  if (!req || typeof req !== 'object' || Array.isArray(req) || req.jsonrpc !== '2.0' || typeof req.method !== 'string') {
    return answer({ error: { code: -32600, message: 'invalid request' } });
  }
  if (!hasId) return [null, 0]; // a notification: no answer
  const fn = METHODS[req.method];
  if (!fn) {
    return answer({ error: { code: -32601, message: `the method ${req.method} does not exist/is not available` } });
  }
  let result;
  try {
    result = JSON.stringify(fn(src, req.params));
  } catch (e) {
    const code = e instanceof InvalidParams ? -32602 : -32000;
    return answer({ error: { code, message: e.message } });
  }
  if (result === undefined) result = 'null';
  return [`{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${result}}`, result.length];
}

// Returns {status, body}; body is '' when nothing is to be answered.
function handleJsonRpc(src, bodyText) {
  let msg;
  try {
    msg = JSON.parse(bodyText);
  } catch (e) {
    return { status: 200, body: JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse error' } }) };
  }
  if (!Array.isArray(msg)) {
    const [text] = callOne(src, msg);
    return { status: 200, body: text === null ? '' : text };
  }
  if (msg.length === 0) {
    return { status: 200, body: JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'empty batch' } }) };
  }
  if (msg.length > BATCH_REQUEST_LIMIT) {
    // rpc/handler.go respondWithBatchTooLarge: one error carrying the first call's id
    const first = msg.find((m) => m && typeof m === 'object' && Object.prototype.hasOwnProperty.call(m, 'id'));
    const id = first ? first.id : null;
    return { status: 200, body: JSON.stringify([{ jsonrpc: '2.0', id, error: { code: -32600, message: 'batch too large' } }]) };
  }
  const out = [];
  let resultBytes = 0;
  for (let i = 0; i < msg.length; i++) {
    const [text, n] = callOne(src, msg[i]);
    if (text !== null) out.push(text);
    resultBytes += n;
    if (resultBytes > BATCH_RESPONSE_MAX_SIZE) {
      // the calls not yet answered get "response too large" (-32003)
      for (let k = i + 1; k < msg.length; k++) {
        const m = msg[k];
        if (!m || typeof m !== 'object' || !Object.prototype.hasOwnProperty.call(m, 'id')) continue;
        out.push(JSON.stringify({ jsonrpc: '2.0', id: m.id, error: { code: -32003, message: 'response too large' } }));
      }
      break;
    }
  }
  return { status: 200, body: out.length ? '[' + out.join(',') + ']' : '' };
}

module.exports = { handleJsonRpc, METHODS, rpcBlock, rpcTransaction, rpcReceipt, BATCH_REQUEST_LIMIT };
