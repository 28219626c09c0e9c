'use strict';
// JSON-RPC methods with Geth v1.17.5 semantics (internal/ethapi/api.go,
// eth/api_backend.go, eth/filters/api.go + filter.go), and the profile's
// limits and error texts (lib/rpc-limits.js).
//
// Each method gets ctx = {src, s (resolved settings), deadline} and the raw
// params; it returns a JSON value or throws InvalidParams (-32602),
// GoError (-32000), RpcError (its code) or TimeoutSignal.

const { GoError, hexNum } = require('./geth-values');
const { filterLogs, headerByNumber } = require('./resolvers');
const { checkDeadline, ZERO_HASH } = require('./source-base');
const A = require('./rpc-args');
const L = require('./rpc-limits');
const { rpcBlock, rpcHeader, rpcTransaction, rpcReceipt, rpcLog } = require('./rpc-shapes');

const { InvalidParams, LATEST, PENDING, EARLIEST, FINALIZED, SAFE } = A;
const { RpcError } = L;
const U64_MAX = (1n << 64n) - 1n;

const CLIENT_VERSION = 'Geth/v1.17.5-stable-ethwhale-test/linux-amd64/go1.24';

const required = (parse) => ({ required: true, parse });
const optional = (parse) => ({ required: false, parse });
const blockNumberArg = required(A.parseBlockNumber);
const boolArg = required(A.parseBool);
const hashArg = required(A.parseHashArg);
const addressArg = required(A.parseAddressArg);
const optBlockArg = optional((v, i) => A.parseBlockNumberOrHash(v, i, true));

function cutoffOf(ctx) { return ctx.s.historyCutoff; }

// A block number or tag -> a number (HeaderByNumber's resolution): pending
// is the head here (no pending block), earliest the history cutoff.
function resolveTag(ctx, n) {
  const src = ctx.src;
  if (n >= 0) return n;
  switch (n) {
    case PENDING:
    case LATEST: return src.head();
    case EARLIEST: return cutoffOf(ctx) === null ? src.earliest() : cutoffOf(ctx);
    default: {
      const b = headerByNumber(src, n); // "finalized block not found" / "safe block not found"
      return b ? b.number : null;
    }
  }
}

// eth/api_backend.go BlockByNumber: beyond the head null; below the history
// cutoff the body is gone (pruned history, 4444 in Geth).
function blockByNumber(ctx, n) {
  const src = ctx.src;
  const num = resolveTag(ctx, n);
  if (num === null || num > src.head()) return null;
  const cutoff = cutoffOf(ctx);
  if (cutoff !== null && num < cutoff) throw L.prunedHistory(ctx.s.family, num, cutoff);
  return src.getBlock(num);
}

// BlockByHash: unknown null; a header below the cutoff has no body.
function blockByHash(ctx, hash) {
  const b = ctx.src.blockByHash(hash);
  if (!b) return null;
  const cutoff = cutoffOf(ctx);
  if (cutoff !== null && b.number < cutoff) throw L.prunedHistory(ctx.s.family, b.number, cutoff);
  return b;
}

function blockOf(ctx, bnh) {
  return bnh.hash !== undefined ? blockByHash(ctx, bnh.hash) : blockByNumber(ctx, bnh.number);
}

// A transaction by hash; below the cutoff Geth finds nothing (null), some
// clients answer pruned history.
function txByHash(ctx, hash) {
  const t = ctx.src.txByHash(hash);
  const cutoff = cutoffOf(ctx);
  if (t && cutoff !== null && t.block.number < cutoff) {
    if (L.prunedTxLookupFails(ctx.s.family)) throw L.prunedHistory(ctx.s.family, t.block.number, cutoff);
    return null;
  }
  return t;
}

const shapeOpts = (ctx) => ({ txTimestamp: ctx.s.txTimestamp, logTimestamp: ctx.s.logTimestamp });

// eth_getBalance / eth_getTransactionCount / eth_getCode (address, block =
// latest): StateAndHeaderByNumberOrHash, then the profile's state window.
// Returns the account, or null when the profile answers null (Besu).
function stateAt(ctx, params) {
  const src = ctx.src;
  const [address, bnh] = A.decodeArgs(params, [addressArg, optBlockArg]);
  let n;
  let block = null;
  if (bnh.hash !== undefined) {
    block = src.blockByHash(bnh.hash);
    if (!block) throw new GoError('header for hash not found');
    n = block.number;
  } else {
    n = bnh.number === PENDING ? LATEST : bnh.number;
    if (n >= 0 && n > src.head()) throw new GoError('header not found');
    n = resolveTag(ctx, n);
  }
  const w = ctx.s.stateWindow;
  if (w !== null && n < src.head() - w) {
    const b = block || src.getBlock(n) || { number: n, hash: ZERO_HASH, stateRoot: ZERO_HASH };
    const r = L.missingState(ctx.s, b);
    if (r instanceof RpcError) throw r;
    return null;
  }
  return src.accountState(address, n);
}

// --- eth_getLogs -------------------------------------------------------------

// Logs of [first, last] matching crit, in block then log order, with the
// profile's result cap.
function collectLogs(ctx, first, last, crit) {
  const s = ctx.s;
  const cap = s.logsMaxResults;
  const capHere = cap !== null && (first !== last || L.resultsCapSingleBlock(s.family));
  const list = ctx.src.blocksInRange(first, last, ctx);
  const get = Array.isArray(list) ? (i) => list[i] : (i) => list.get(i);
  const out = [];
  for (let i = 0; i < list.length; i++) {
    checkDeadline(ctx);
    const b = get(i);
    const ls = filterLogs(b.logs, crit.addresses, crit.topics);
    for (let k = 0; k < ls.length; k++) out.push(ls[k]);
    if (capHere && out.length > cap) throw L.resultsError(s, first, b.number === first ? first : b.number - 1);
  }
  const opts = shapeOpts(ctx);
  return out.map((l) => rpcLog(l, opts));
}

function checkCutoff(ctx, from) {
  const cutoff = cutoffOf(ctx);
  if (cutoff !== null && from < cutoff) throw L.prunedHistory(ctx.s.family, from, cutoff);
}

// Geth v1.17.5 (FilterAPI.GetLogs + Filter.Logs + searchSession): also the
// providers, after their gateway's range check.
function gethLogs(ctx, crit) {
  const { src, s } = ctx;
  const head = src.head();
  if (crit.blockHash !== null) {
    const b = src.blockByHash(crit.blockHash);
    if (!b) throw new GoError('unknown block');
    checkCutoff(ctx, b.number);
    return collectLogs(ctx, b.number, b.number, crit);
  }
  const begin = crit.fromBlock === null ? LATEST : crit.fromBlock;
  const end = crit.toBlock === null ? LATEST : crit.toBlock;
  if (begin > 0 && end > 0 && begin > end) throw new InvalidParams('invalid block range params');
  if (begin >= 0) checkCutoff(ctx, begin);
  if (begin === PENDING || end === PENDING) throw new InvalidParams('pending logs are not supported');
  const special = (n) => {
    switch (n) {
      case LATEST: return U64_MAX; // resolved to the head by the search session
      case FINALIZED: { const x = src.finalized(); if (x === null) throw new GoError('finalized header not found'); return BigInt(x); }
      case SAFE: { const x = src.safe(); if (x === null) throw new GoError('safe header not found'); return BigInt(x); }
      case EARLIEST: return BigInt(cutoffOf(ctx) === null ? 0 : cutoffOf(ctx));
      default:
        if (n < 0) throw new GoError('negative block number');
        return BigInt(n);
    }
  };
  const b = special(begin);
  const e = special(end);
  // --rpc.rangelimit: checked on the uint64 numbers, "latest" being
  // MaxUint64, so {fromBlock: N} with the default toBlock is over any limit
  if (s.family === 'geth' && s.logsMaxRange !== null && BigInt.asUintN(64, e - b) > BigInt(s.logsMaxRange)) {
    throw new InvalidParams(`exceed maximum block range ${s.logsMaxRange}`);
  }
  const first = b === U64_MAX ? head : Number(b);
  const last = e === U64_MAX ? head : Number(e);
  if (first > last) throw new InvalidParams('invalid block range params');
  if (last > head) throw new InvalidParams('block range extends beyond current head block');
  return collectLogs(ctx, first, last, crit);
}

// Geth 1.12 (filter.go of v1.12.2): no range errors; the search ends at the head.
function geth112Logs(ctx, crit) {
  const { src, s } = ctx;
  const head = src.head();
  if (crit.blockHash !== null) {
    const b = src.blockByHash(crit.blockHash);
    if (!b) throw new GoError('unknown block');
    checkCutoff(ctx, b.number);
    return collectLogs(ctx, b.number, b.number, crit);
  }
  const begin = crit.fromBlock === null ? LATEST : crit.fromBlock;
  const end = crit.toBlock === null ? LATEST : crit.toBlock;
  if (begin === PENDING && end !== PENDING) throw new GoError('invalid block range');
  if (begin === PENDING && end === PENDING) return []; // no pending block here
  const res = (n) => {
    switch (n) {
      case LATEST: case PENDING: return head;
      case FINALIZED: { const x = src.finalized(); if (x === null) throw new GoError('finalized header not found'); return x; }
      case SAFE: { const x = src.safe(); if (x === null) throw new GoError('safe header not found'); return x; }
      case EARLIEST: return 0; // EarliestBlockNumber was 0 in 1.12
      default: return n;
    }
  };
  const from = res(begin);
  const to = res(end);
  const re = L.rangeError(s, from, to);
  if (re) throw re;
  checkCutoff(ctx, from);
  if (from > to || from > head) return [];
  return collectLogs(ctx, from, Math.min(to, head), crit);
}

// Erigon 3 (rpc/jsonrpc/eth_receipts.go GetLogs).
function erigonLogs(ctx, crit) {
  const { src, s } = ctx;
  const head = src.head();
  let begin;
  let end;
  if (crit.blockHash !== null) {
    const b = src.blockByHash(crit.blockHash);
    if (!b) throw new GoError(`block not found: ${crit.blockHash.slice(2)}`);
    begin = b.number;
    end = b.number;
  } else {
    const res = (n) => {
      switch (n) {
        case LATEST: case PENDING: return head;
        case EARLIEST: return 0;
        default: {
          if (n >= 0) return n;
          const b = headerByNumber(src, n); // finalized / safe
          return b ? b.number : head;
        }
      }
    };
    begin = head;
    if (crit.fromBlock !== null) {
      begin = res(crit.fromBlock);
      if (begin > head) return [];
    }
    end = crit.toBlock !== null ? res(crit.toBlock) : head;
  }
  if (end < begin) throw new GoError(`end (${end}) < begin (${begin})`);
  checkCutoff(ctx, begin);
  const re = L.rangeError(s, begin, end);
  if (re) throw re;
  return collectLogs(ctx, begin, Math.min(end, head), crit);
}

// Reth (crates/rpc/rpc/src/eth/filter.rs).
function rethLogs(ctx, crit) {
  const { src, s } = ctx;
  const head = src.head();
  if (crit.blockHash !== null) {
    const b = src.blockByHash(crit.blockHash);
    if (!b) throw new RpcError(-32001, `block not found: hash ${crit.blockHash}`);
    checkCutoff(ctx, b.number);
    return collectLogs(ctx, b.number, b.number, crit);
  }
  const res = (n) => {
    if (n === null) return null;
    switch (n) {
      case LATEST: case PENDING: return head;
      case EARLIEST: return cutoffOf(ctx) === null ? 0 : cutoffOf(ctx);
      case FINALIZED: return src.finalized();
      case SAFE: return src.safe();
      default: return n;
    }
  };
  const from = res(crit.fromBlock);
  const to = res(crit.toBlock);
  if (to !== null && to > head) throw new InvalidParams(`block range extends beyond current head block: requested ${to}, head ${head}`);
  if (from !== null && from > head) return [];
  const f = from === null ? head : from;
  const t = to === null ? head : to;
  checkCutoff(ctx, f);
  if (t < f) throw new InvalidParams('invalid block range params');
  const re = L.rangeError(s, f, t);
  if (re) throw re;
  return collectLogs(ctx, f, t, crit);
}

// Nethermind (EthRpcModule.eth_getLogs) and Besu (EthGetLogs).
function nethermindBesuLogs(ctx, crit) {
  const { src, s } = ctx;
  const head = src.head();
  const besu = s.family === 'besu';
  if (crit.blockHash !== null) {
    const b = src.blockByHash(crit.blockHash);
    if (!b) {
      if (besu) throw new GoError('Block not found');
      throw new RpcError(-32001, `Block ${crit.blockHash} could not be found`); // UNCONFIRMED
    }
    checkCutoff(ctx, b.number);
    const re = L.rangeError(s, b.number, b.number);
    if (re) throw re;
    return collectLogs(ctx, b.number, b.number, crit);
  }
  const res = (n) => {
    switch (n) {
      case null: case LATEST: case PENDING: return head;
      case EARLIEST: return 0;
      default: {
        if (n >= 0) return n;
        const b = headerByNumber(src, n);
        return b ? b.number : head;
      }
    }
  };
  const f = res(crit.fromBlock);
  const t = res(crit.toBlock);
  if (besu) {
    // the exception texts (fromBlock (X) is greater than toBlock (Y), ...) are dropped
    if (f > t || t > head) throw new InvalidParams('Invalid params');
  } else {
    if (head < f || head < t) throw new InvalidParams('requested block range is in the future');
    if (f > t) throw new InvalidParams('invalid block range params');
  }
  checkCutoff(ctx, f);
  const re = L.rangeError(s, f, t);
  if (re) throw re;
  return collectLogs(ctx, f, t, crit);
}

// A provider's gateway checks the range first (tags resolved to the head),
// then a Geth-like node answers.
function providerLogs(ctx, crit) {
  const src = ctx.src;
  if (crit.blockHash === null) {
    const res = (n) => {
      if (n === null || n === LATEST || n === PENDING) return src.head();
      if (n === EARLIEST) return 0;
      if (n >= 0) return n;
      return null;
    };
    const f = res(crit.fromBlock);
    const t = res(crit.toBlock);
    if (f !== null && t !== null) {
      const re = L.rangeError(ctx.s, f, t);
      if (re) throw re;
    }
  }
  return gethLogs(ctx, crit);
}

function getLogs(ctx, params) {
  const [crit] = A.decodeArgs(params, [required(A.parseFilterCriteria)]);
  // eth/filters/api.go: --rpc.logquerylimit (1000 addresses per query)
  if (crit.addresses.length > 1000) throw new GoError('exceed max addresses or topics per search position');
  switch (ctx.s.family) {
    case 'geth': return gethLogs(ctx, crit);
    case 'geth-1.12': return geth112Logs(ctx, crit);
    case 'erigon-3.3': case 'erigon': return erigonLogs(ctx, crit);
    case 'reth': return rethLogs(ctx, crit);
    case 'nethermind': case 'besu': return nethermindBesuLogs(ctx, crit);
    default: return providerLogs(ctx, crit);
  }
}

// --- the methods ---------------------------------------------------------------

const METHODS = {
  web3_clientVersion: () => CLIENT_VERSION,
  net_version: (ctx) => ctx.src.chainId.toString(10),
  eth_chainId: (ctx) => hexNum(ctx.src.chainId),
  eth_blockNumber: (ctx) => hexNum(ctx.src.head()),
  eth_syncing: () => false,

  eth_getBalance: (ctx, params) => { const a = stateAt(ctx, params); return a && hexNum(a.balance); },
  eth_getTransactionCount: (ctx, params) => { const a = stateAt(ctx, params); return a && hexNum(a.nonce); },
  eth_getCode: (ctx, params) => { const a = stateAt(ctx, params); return a && a.code; },

  eth_getBlockByNumber: (ctx, params) => {
    const [n, full] = A.decodeArgs(params, [blockNumberArg, boolArg]);
    const b = blockByNumber(ctx, n);
    return b ? rpcBlock(b, full, shapeOpts(ctx)) : null;
  },
  eth_getBlockByHash: (ctx, params) => {
    const [h, full] = A.decodeArgs(params, [hashArg, boolArg]);
    const b = blockByHash(ctx, h);
    return b ? rpcBlock(b, full, shapeOpts(ctx)) : null;
  },
  // Headers survive history pruning (GetHeaderByNumber has no body lookup).
  eth_getHeaderByNumber: (ctx, params) => {
    const [n] = A.decodeArgs(params, [blockNumberArg]);
    const num = resolveTag(ctx, n);
    if (num === null || num > ctx.src.head()) return null;
    const b = ctx.src.getBlock(num);
    return b ? rpcHeader(b) : null;
  },
  eth_getHeaderByHash: (ctx, params) => {
    const [h] = A.decodeArgs(params, [hashArg]);
    const b = ctx.src.blockByHash(h);
    return b ? rpcHeader(b) : null;
  },
  // hexutil.Uint of len(block.Transactions()); null when there is no block.
  eth_getBlockTransactionCountByNumber: (ctx, params) => {
    const [n] = A.decodeArgs(params, [blockNumberArg]);
    const b = blockByNumber(ctx, n);
    return b ? hexNum(b.txCount !== undefined ? b.txCount : b.txs.length) : null;
  },
  eth_getBlockTransactionCountByHash: (ctx, params) => {
    const [h] = A.decodeArgs(params, [hashArg]);
    const b = blockByHash(ctx, h);
    return b ? hexNum(b.txCount !== undefined ? b.txCount : b.txs.length) : null;
  },
  eth_getTransactionByHash: (ctx, params) => {
    const [h] = A.decodeArgs(params, [hashArg]);
    const t = txByHash(ctx, h);
    return t ? rpcTransaction(t, shapeOpts(ctx)) : null;
  },
  eth_getTransactionReceipt: (ctx, params) => {
    const [h] = A.decodeArgs(params, [hashArg]);
    const t = txByHash(ctx, h);
    return t ? rpcReceipt(t, shapeOpts(ctx)) : null;
  },
  // BlockChainAPI.GetBlockReceipts: receipts in transaction order; null when
  // there is no block (beyond the head, unknown hash).
  eth_getBlockReceipts: (ctx, params) => {
    const [bnh] = A.decodeArgs(params, [required((v, i) => A.parseBlockNumberOrHash(v, i, false))]);
    const b = blockOf(ctx, bnh);
    if (!b) return null;
    const opts = shapeOpts(ctx);
    return b.txs.map((t) => rpcReceipt(t, opts));
  },
  eth_getLogs: getLogs,
};

// Is `name` served under settings s? (eth_getBlockReceipts can be off.)
function methodFor(s, name) {
  if (!Object.prototype.hasOwnProperty.call(METHODS, name)) return null;
  if (name === 'eth_getBlockReceipts' && !s.blockReceipts) return null;
  return METHODS[name];
}

module.exports = { METHODS, methodFor, resolveTag, CLIENT_VERSION };
