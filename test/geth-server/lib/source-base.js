'use strict';
// Behaviour shared by the chain sources.

const { TimeoutSignal } = require('./geth-values');
const { filterLogs } = require('./resolvers');

const TRANSFER_TOPIC = '0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef';
const ZERO_HASH = '0x' + '0'.repeat(64);
const ZERO_BLOOM = '0x' + '0'.repeat(512);
const ZERO_NONCE = '0x0000000000000000';
const EMPTY_TRIE_ROOT = '0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421';
// Placeholder byte code served for addresses known to be contracts.
const CONTRACT_CODE = '0x6080604052';
const GWEI = 1000000000n;

function checkDeadline(ctx) {
  if (ctx && ctx.deadline && Date.now() > ctx.deadline) throw new TimeoutSignal('request timed out');
}

// A flat (sequential, one-byte) copy of an ASCII string. Strings built with
// `+` are trees of ConsString nodes that take several times the memory of
// their text; generated blocks hold hundreds of thousands of hashes, so the
// strings they keep are flattened once when made (fewer bytes for the
// garbage collector to copy and mark).
const FLAT_SCRATCH = Buffer.allocUnsafe(64 * 1024);
function flat(s) {
  const n = s.length;
  if (n > FLAT_SCRATCH.length) return Buffer.from(s, 'latin1').toString('latin1');
  FLAT_SCRATCH.latin1Write(s, 0, n);
  return FLAT_SCRATCH.latin1Slice(0, n);
}

// 0x + 40 hex -> 0x + 64 hex (address as a 32-byte topic)
function addressTopic(addr) {
  return flat('0x000000000000000000000000' + addr.slice(2));
}

function uint256Hex(v) {
  return flat('0x' + BigInt(v).toString(16).padStart(64, '0'));
}

// A list whose elements are produced on demand (get(i)), so that a request
// over thousands of generated blocks keeps only the LRU cache alive.
class LazyList {
  constructor(length, get) {
    this.length = length;
    this.get = get;
  }

  toArray() {
    const out = new Array(this.length);
    for (let i = 0; i < this.length; i++) out[i] = this.get(i);
    return out;
  }
}

class ChainSource {
  constructor() {
    this.headNumber = 0;
  }

  head() { return this.headNumber; }

  // A block if it is at hand without work (cache), else null.
  peekBlock(n) { return this.getBlock(n); }

  earliest() { return 0; }

  finalized() { return null; }

  safe() { return null; }

  syncing() { return null; }

  maxPriorityFee() { return GWEI; }

  gasPrice() {
    const b = this.getBlock(this.head());
    const base = b && b.baseFee ? b.baseFee : 0n;
    return base + this.maxPriorityFee();
  }

  // Present blocks with from <= number <= min(to, head), ascending.
  blocksInRange(from, to, ctx) {
    const last = Math.min(to, this.head());
    const out = [];
    for (let n = from; n <= last; n++) {
      checkDeadline(ctx);
      const b = this.getBlock(n);
      if (b) out.push(b);
    }
    return out;
  }

  logsInRange(first, last, addresses, topics, ctx) {
    const out = [];
    for (const b of this.blocksInRange(first, last, ctx)) {
      const ls = filterLogs(b.logs, addresses, topics);
      for (const l of ls) out.push(l);
    }
    return out;
  }

  // Block numbers a request touches are used by fault rules; sources may
  // override this to map a tx hash to its block.
  blockOfTx(hash) {
    const t = this.txByHash(hash);
    return t ? t.block.number : null;
  }

  setHead() { throw new Error('this chain source does not support moving the head'); }

  fork() { throw new Error('this chain source does not support forks'); }

  close() {}
}

module.exports = {
  ChainSource,
  LazyList,
  checkDeadline,
  flat,
  addressTopic,
  uint256Hex,
  TRANSFER_TOPIC,
  ZERO_HASH,
  ZERO_BLOOM,
  ZERO_NONCE,
  EMPTY_TRIE_ROOT,
  CONTRACT_CODE,
  GWEI,
};
