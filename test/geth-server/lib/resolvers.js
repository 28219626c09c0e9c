'use strict';
// Field resolvers with Geth v1.17.5 semantics (graphql/graphql.go), on top of
// a chain source (lib/source-csv.js or lib/source-gen.js).
//
// Source object model (both sources produce the same shapes):
//   Block {number, hash, parentHash, nonce, transactionsRoot, stateRoot,
//          receiptsRoot, miner, extraData, gasLimit, gasUsed, baseFee (BigInt|null),
//          timestamp, logsBloom, mixHash, difficulty (BigInt), withdrawalsRoot,
//          withdrawals, txCount, txs: [Tx], logs: [Log]}
//   Tx    {hash, nonce, index, from, to|null, value (BigInt), type, gasPrice (BigInt),
//          maxFee|null, maxTip|null, gas, input, receipt|null, logs: [Log], block,
//          sig() -> {v, r, s}}
//   receipt {status|null, gasUsed|null, cumulativeGasUsed|null, contractAddress|null}
//   Log   {index, address, topics: [hash], data, tx, block}

const { GoError, hexNum } = require('./geth-values');

const ERR_INVALID_BLOCK_RANGE = 'invalid from and to block combination: from > to';
const OMMER_HASH_EMPTY = '0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347';
const ZERO_HASH = '0x' + '0'.repeat(64);
const ZERO_SIG = { v: 0n, r: 0n, s: 0n };
const MAX_U64 = Number.MAX_SAFE_INTEGER; // stands in for math.MaxUint64 ("latest")

function notSupported(what) {
  return () => { throw new GoError(`${what} is not supported by the ethwhale test server`); };
}

function hexOrNull(v) {
  return v === null || v === undefined ? null : hexNum(v);
}

// rpc.BlockNumber special values: -5 earliest, -4 safe, -3 finalized, -2 latest, -1 pending.
function headerByNumber(src, n) {
  if (n >= 0) return src.getBlock(n);
  switch (n) {
    case -2: return src.getBlock(src.head());
    case -1: throw new GoError('pending block is not available');
    case -3: {
      const f = src.finalized();
      if (f === null) throw new GoError('finalized block not found');
      return src.getBlock(f);
    }
    case -4: {
      const s = src.safe();
      if (s === null) throw new GoError('safe block not found');
      return src.getBlock(s);
    }
    case -5: return src.getBlock(src.earliest());
    default: return null; // uint64(negative) is far beyond head
  }
}

function account(address, block) {
  return { address, block: block === undefined ? null : block };
}

// A block known by number and hash; other properties load it on first use
// ("header not found" when the source does not have it, e.g. sparse CSV data).
function makeLazyBlock(src, number, hash) {
  let real;
  const base = { number, hash };
  return new Proxy(base, {
    get(t, k) {
      if (k === 'number' || k === 'hash') return t[k];
      if (typeof k === 'symbol' || k === 'then' || k === 'toJSON') return undefined;
      if (real === undefined) {
        const b = src.getBlock(number);
        real = b && b.hash === hash ? b : null;
      }
      if (!real) throw new GoError('header not found');
      return real[k];
    },
  });
}

function matchLog(log, addrSet, topics) {
  if (addrSet && !addrSet.has(log.address)) return false;
  if (topics && topics.length > 0) {
    if (topics.length > log.topics.length) return false;
    for (let i = 0; i < topics.length; i++) {
      const sub = topics[i];
      if (!sub || sub.length === 0) continue;
      if (!sub.includes(log.topics[i])) return false;
    }
  }
  return true;
}

function filterLogs(logs, addresses, topics) {
  const addrSet = addresses && addresses.length > 0 ? new Set(addresses) : null;
  if (!addrSet && (!topics || topics.length === 0)) return logs;
  const out = [];
  for (const l of logs) if (matchLog(l, addrSet, topics)) out.push(l);
  return out;
}

function nextBaseFee(b) {
  if (b.baseFee === null || b.baseFee === undefined) return null;
  const base = b.baseFee;
  const target = BigInt(Math.floor(b.gasLimit / 2));
  const used = BigInt(b.gasUsed);
  if (target === 0n || used === target) return base;
  if (used > target) {
    let delta = (base * (used - target)) / target / 8n;
    if (delta < 1n) delta = 1n;
    return base + delta;
  }
  const delta = (base * (target - used)) / target / 8n;
  const r = base - delta;
  return r < 0n ? 0n : r;
}

function isDynamic(t) {
  return t.type === 2 || t.type === 3 || t.type === 4;
}

function txGasPrice(t) {
  if (isDynamic(t)) {
    const base = t.block && t.block.baseFee;
    if (base !== null && base !== undefined) {
      const eff = t.maxTip + base;
      return eff < t.maxFee ? eff : t.maxFee;
    }
    return t.maxFee;
  }
  return t.gasPrice;
}

function feeCap(t) { return isDynamic(t) ? t.maxFee : t.gasPrice; }
function tipCap(t) { return isDynamic(t) ? t.maxTip : t.gasPrice; }

function sigOf(t) {
  return t.sig ? t.sig() : ZERO_SIG;
}

function accountState(src, a) {
  let n = a.block;
  if (n === null) n = src.head();
  else if (n < 0) {
    const b = headerByNumber(src, n);
    if (!b) throw new GoError('header not found');
    n = b.number;
  } else if (n > src.head()) {
    throw new GoError('header not found');
  }
  return src.accountState(a.address, n);
}

function makeResolvers() {
  return {
    Query: {
      block(_, args, ctx) {
        const src = ctx.source;
        if (args.number !== null && args.hash !== null) throw new GoError('only one of number or hash must be specified');
        // blockOrState: a CSV source with accounts.csv also knows the blocks
        // whose state (not header) it has.
        const get = (n) => (src.blockOrState ? src.blockOrState(n) : src.getBlock(n));
        if (args.number !== null) {
          if (args.number < 0) return null;
          return get(args.number);
        }
        if (args.hash !== null) {
          const b = src.blockByHash(args.hash);
          if (!b) throw new GoError('header for hash not found');
          return b;
        }
        return get(src.head());
      },
      blocks(_, args, ctx) {
        const src = ctx.source;
        if (args.from === null) throw new GoError('from block number must be specified');
        const from = args.from;
        const to = args.to !== null ? args.to : src.head();
        if (to < from) throw new GoError(ERR_INVALID_BLOCK_RANGE);
        const ret = [];
        let i = from;
        for (; i <= to && i < 0; i++) {
          const b = headerByNumber(src, i);
          if (!b) return ret;
          ret.push(b);
        }
        if (i > to) return ret;
        const rest = src.blocksInRange(i, to, ctx);
        if (ret.length === 0) return rest;
        return ret.concat(Array.isArray(rest) ? rest : rest.toArray());
      },
      pending() { return {}; },
      transaction(_, args, ctx) {
        return ctx.source.txByHash(args.hash);
      },
      logs(_, args, ctx) {
        const src = ctx.source;
        const f = args.filter;
        const begin = f.fromBlock !== null ? f.fromBlock : -2;
        const end = f.toBlock !== null ? f.toBlock : -2;
        if (begin >= 0 && end >= 0 && begin > end) throw new GoError(ERR_INVALID_BLOCK_RANGE);
        if (begin === -1 || end === -1) throw new GoError('pending logs are not supported');
        const resolveSpecial = (n) => {
          switch (n) {
            case -2: return MAX_U64;
            case -3: { const x = src.finalized(); if (x === null) throw new GoError('finalized header not found'); return x; }
            case -4: { const x = src.safe(); if (x === null) throw new GoError('safe header not found'); return x; }
            case -5: return src.earliest();
            default:
              if (n < 0) throw new GoError('negative block number');
              return n;
          }
        };
        let first = resolveSpecial(begin);
        let last = resolveSpecial(end);
        const head = src.head();
        if (first === MAX_U64) first = head;
        if (last === MAX_U64) last = head;
        if (first > last) throw new GoError('invalid block range params');
        if (last > head) throw new GoError('block range extends beyond current head block');
        return src.logsInRange(first, last, f.addresses, f.topics, ctx);
      },
      gasPrice(_, __, ctx) { return hexNum(ctx.source.gasPrice()); },
      maxPriorityFeePerGas(_, __, ctx) { return hexNum(ctx.source.maxPriorityFee()); },
      syncing(_, __, ctx) { return ctx.source.syncing(); },
      chainID(_, __, ctx) { return hexNum(ctx.source.chainId); },
    },
    Mutation: {
      sendRawTransaction: notSupported('sendRawTransaction'),
    },
    Pending: {
      transactionCount() { return '0x0'; },
      transactions() { return []; },
      account(_, args) { return account(args.address, null); },
      call: notSupported('call'),
      estimateGas: notSupported('estimateGas'),
    },
    SyncState: {
      startingBlock(s) { return hexNum(s.startingBlock); },
      currentBlock(s) { return hexNum(s.currentBlock); },
      highestBlock(s) { return hexNum(s.highestBlock); },
    },
    Block: {
      number(b) { return hexNum(b.number); },
      hash(b) { return b.hash; },
      parent(b, _, ctx) {
        // Like Geth, the parent is known by number and hash without a lookup;
        // it is only loaded when a field other than number/hash is asked for.
        if (b.number < 1) return null;
        const src = ctx.source;
        const p = src.peekBlock(b.number - 1);
        if (p && p.hash === b.parentHash) return p;
        return makeLazyBlock(src, b.number - 1, b.parentHash);
      },
      nonce(b) { return b.nonce; },
      transactionsRoot(b) { return b.transactionsRoot; },
      transactionCount(b) { return hexNum(b.txCount !== undefined ? b.txCount : b.txs.length); },
      stateRoot(b) { return b.stateRoot; },
      receiptsRoot(b) { return b.receiptsRoot; },
      miner(b, args) { return account(b.miner, args.block); },
      extraData(b) { return b.extraData; },
      gasLimit(b) { return hexNum(b.gasLimit); },
      gasUsed(b) { return hexNum(b.gasUsed); },
      baseFeePerGas(b) { return hexOrNull(b.baseFee); },
      nextBaseFeePerGas(b) { return hexOrNull(nextBaseFee(b)); },
      timestamp(b) { return hexNum(b.timestamp); },
      logsBloom(b) { return b.logsBloom; },
      mixHash(b) { return b.mixHash; },
      difficulty(b) { return hexNum(b.difficulty); },
      ommerCount() { return '0x0'; },
      ommers() { return []; },
      ommerAt() { return null; },
      ommerHash(b) { return b.ommerHash || OMMER_HASH_EMPTY; },
      transactions(b) { return b.txs; },
      transactionAt(b, args) {
        const txs = b.txs;
        if (args.index < 0 || args.index >= txs.length) return null;
        return txs[args.index];
      },
      logs(b, args) { return filterLogs(b.logs, args.filter.addresses, args.filter.topics); },
      account(b, args) { return account(args.address, b.number); },
      call: notSupported('call'),
      estimateGas: notSupported('estimateGas'),
      rawHeader: notSupported('rawHeader'),
      raw: notSupported('raw'),
      withdrawalsRoot(b) { return b.withdrawalsRoot === undefined ? null : b.withdrawalsRoot; },
      withdrawals(b) { return b.withdrawals === undefined ? null : b.withdrawals; },
      blobGasUsed(b) { return hexOrNull(b.blobGasUsed); },
      excessBlobGas(b) { return hexOrNull(b.excessBlobGas); },
    },
    Withdrawal: {
      index(w) { return hexNum(w.index); },
      validator(w) { return hexNum(w.validator); },
      address(w) { return w.address; },
      amount(w) { return hexNum(w.amount); },
    },
    Transaction: {
      hash(t) { return t.hash; },
      nonce(t) { return hexNum(t.nonce); },
      index(t) { return hexNum(t.index); },
      from(t, args) { return account(t.from, args.block); },
      to(t, args) { return t.to === null ? null : account(t.to, args.block); },
      value(t) { return t.valueHex || (t.valueHex = hexNum(t.value)); },
      gasPrice(t) { return hexNum(txGasPrice(t)); },
      maxFeePerGas(t) { return isDynamic(t) ? hexNum(t.maxFee) : null; },
      maxPriorityFeePerGas(t) { return isDynamic(t) ? hexNum(t.maxTip) : null; },
      maxFeePerBlobGas() { return null; },
      effectiveTip(t) {
        const base = t.block.baseFee;
        if (base === null || base === undefined) return hexNum(t.gasPrice);
        const a = tipCap(t);
        const b = feeCap(t) - base;
        if (b < 0n) throw new GoError('max fee per gas less than block base fee');
        return hexNum(a < b ? a : b);
      },
      gas(t) { return hexNum(t.gas); },
      inputData(t) { return t.input; },
      block(t) { return t.block; },
      status(t) { return t.receipt ? hexOrNull(t.receipt.status) : null; },
      gasUsed(t) { return t.receipt ? hexOrNull(t.receipt.gasUsed) : null; },
      cumulativeGasUsed(t) { return t.receipt ? hexOrNull(t.receipt.cumulativeGasUsed) : null; },
      effectiveGasPrice(t) {
        const base = t.block.baseFee;
        if (base === null || base === undefined) return hexNum(isDynamic(t) ? t.maxFee : t.gasPrice);
        const eff = tipCap(t) + base;
        const cap = feeCap(t);
        return hexNum(eff < cap ? eff : cap);
      },
      blobGasUsed() { return null; },
      blobGasPrice() { return null; },
      createdContract(t, args) {
        if (!t.receipt || !t.receipt.contractAddress) return null;
        return account(t.receipt.contractAddress, args.block);
      },
      logs(t) { return t.logs; },
      r(t) { return hexNum(sigOf(t).r); },
      s(t) { return hexNum(sigOf(t).s); },
      v(t) { return hexNum(sigOf(t).v); },
      yParity(t) { return t.type === 0 ? null : hexNum(sigOf(t).v); },
      type(t) { return hexNum(t.type); },
      accessList() { return []; },
      raw: notSupported('raw'),
      rawReceipt: notSupported('rawReceipt'),
      blobVersionedHashes() { return null; },
    },
    Log: {
      index(l) { return hexNum(l.index); },
      account(l, args) { return account(l.address, args.block); },
      topics(l) { return l.topics; },
      data(l) { return l.data; },
      transaction(l) { return l.tx; },
    },
    AccessTuple: {
      address(a) { return a.address; },
      storageKeys(a) { return a.storageKeys; },
    },
    Account: {
      address(a) { return a.address; },
      balance(a, _, ctx) { return hexNum(accountState(ctx.source, a).balance); },
      transactionCount(a, _, ctx) { return hexNum(accountState(ctx.source, a).nonce); },
      code(a, _, ctx) { return accountState(ctx.source, a).code; },
      storage(a, _, ctx) { accountState(ctx.source, a); return ZERO_HASH; },
    },
  };
}

module.exports = {
  makeResolvers,
  filterLogs,
  matchLog,
  headerByNumber,
  accountState,
  ZERO_HASH,
  OMMER_HASH_EMPTY,
};
