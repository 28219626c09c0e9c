'use strict';
// Deterministic synthetic chain, generated lazily per block from
// (seed, number, fork salt). Nothing is precomputed per block, so a chain of
// any length starts instantly; recently generated blocks sit in an LRU cache.
// See README.md ("Generated chain") for the planted facts.

const {
  ChainSource, LazyList, checkDeadline, flat, addressTopic, uint256Hex, TRANSFER_TOPIC,
  ZERO_HASH, ZERO_BLOOM, ZERO_NONCE, EMPTY_TRIE_ROOT, CONTRACT_CODE, GWEI,
} = require('./source-base');
const { filterLogs } = require('./resolvers');

const GENESIS_TIMESTAMP = 1682899200; // 2023-05-01T00:00:00Z
const BLOCK_TIME = 12;
const GAS_LIMIT = 30000000;
const POPULATION = 20000;
const EXTRA_DATA = '0x' + Buffer.from('ethwhale-gen').toString('hex');
const DEPOSIT_TOPIC = '0xe1fffcc4923d04b559f4d29a8bfc6cda04eb5b0d3c460751c2402c5c5cc9109c'; // Deposit(address,uint256)
const SEL_TRANSFER = '0xa9059cbb';
const SEL_TRANSFER_FROM = '0x23b872dd';
const SEL_SWAP = '0x38ed1739';
const SEL_DEPOSIT = '0xd0e30db0';
const CREATE_PREFIX = '0x60806040';
const CREATED_TAG = 'c0de';

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
function hex32(x) {
  return HEX[x >>> 24] + HEX[(x >>> 16) & 255] + HEX[(x >>> 8) & 255] + HEX[x & 255];
}
function hex16(x) {
  return HEX[(x >>> 8) & 255] + HEX[x & 255];
}
// 48-bit number as 12 hex digits
function hex48(n) {
  return hex16(Math.floor(n / 4294967296) & 0xffff) + hex32(n >>> 0);
}

function fmix32(h) {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function strHash32(s, seed = 0x811c9dc5) {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

// sfc32
class Rng {
  constructor(a, b, c, d) {
    this.a = a | 0; this.b = b | 0; this.c = c | 0; this.d = d | 0;
    for (let i = 0; i < 12; i++) this.next();
  }

  next() {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  float() { return this.next() / 4294967296; }

  int(n) { return Math.floor(this.float() * n); }

  range(a, b) { return a + this.float() * (b - a); }

  logRange(a, b) { return a * Math.pow(b / a, this.float()); }

  hex(nbytes) {
    let s = '';
    for (let i = 0; i < nbytes; i += 4) s += hex32(this.next());
    return s;
  }
}

function labelAddress(label) {
  let s = '0x';
  let h = strHash32('ethwhale:' + label);
  for (let i = 0; i < 5; i++) {
    h = fmix32(h + 0x9e3779b9 + i);
    s += hex32(h);
  }
  return flat(s);
}

function ethToWei(eth) {
  return BigInt(Math.round(eth * 1e9)) * GWEI;
}

function units(amount, decimals) {
  if (decimals <= 9) return BigInt(Math.round(amount * 10 ** decimals));
  return BigInt(Math.round(amount * 1e9)) * 10n ** BigInt(decimals - 9);
}

// Planted, seed-independent addresses.
const WHALES = [1, 2, 3, 4, 5].map((i) => labelAddress('whale-' + i));
const EXCHANGE_HOT = labelAddress('exchange-hot');
const EXCHANGE_COLD = labelAddress('exchange-cold');
const VAULT = labelAddress('vault-contract');
const POOL = labelAddress('dex-pool');
const NFT = labelAddress('nft-collection');
const BUILDERS = [1, 2, 3, 4].map((i) => labelAddress('builder-' + i));
const TOKENS = [
  { symbol: 'USDX', decimals: 6, address: labelAddress('token-usdx'), priced: 'usd', userMax: 40000, whaleMin: 1000000, whaleMax: 20000000 },
  { symbol: 'WETHX', decimals: 18, address: labelAddress('token-wethx'), priced: 'eth', userMax: 20, whaleMin: 1000, whaleMax: 10000 },
  { symbol: 'DAIX', decimals: 18, address: labelAddress('token-daix'), priced: 'usd', userMax: 40000, whaleMin: 1000000, whaleMax: 10000000 },
  { symbol: 'GTK', decimals: 18, address: labelAddress('token-gtk'), priced: null, userMax: 1000000, whaleMin: 1000000, whaleMax: 50000000 },
];
const TOKEN_PICK = [0.45, 0.70, 0.90, 1.0];

// Transaction kinds, cumulative probabilities of a regular slot.
const KIND_CDF = [
  [0.455, 'plain'],
  [0.525, 'deposit'],
  [0.575, 'sweep'],
  [0.655, 'withdrawal'],
  [0.855, 'erc20'],
  [0.895, 'swap'],
  [0.935, 'vault'],
  [0.955, 'nft'],
  [0.960, 'create'],
  [1.000, 'plain'],
];

class GenTx {
  constructor(block, index, hash) {
    this.block = block;
    this.index = index;
    this.hash = hash;
    this.nonce = 0;
    this.from = '';
    this.to = null;
    this.value = 0n;
    this.valueHex = null;
    this.type = 2;
    this.gasPrice = 0n;
    this.maxFee = null;
    this.maxTip = null;
    this.gas = 21000;
    this.input = '0x';
    this.receipt = null;
    this.logs = [];
    this.kind = '';
  }

  sig() {
    const h = parseInt(this.hash.slice(2, 10), 16);
    const rng = new Rng(h, this.block.number >>> 0, this.index, 0x51c);
    const r = BigInt('0x' + rng.hex(32)) >> 1n;
    const s = BigInt('0x' + rng.hex(32)) >> 2n;
    const parity = rng.int(2);
    const v = this.type === 0 ? BigInt(parity + 35) + this.block.chainId * 2n : BigInt(parity);
    return { v, r, s };
  }
}

class GenSource extends ChainSource {
  constructor(opts = {}) {
    super();
    this.kind = 'generate';
    this.length = opts.blocks !== undefined ? opts.blocks : 1000;
    if (!Number.isInteger(this.length) || this.length < 1) throw new Error('--generate needs a positive block count');
    this.seed = opts.seed !== undefined ? String(opts.seed) : '1';
    this.seedHash = strHash32('seed:' + this.seed);
    this.minTx = opts.minTx !== undefined ? opts.minTx : 150;
    this.maxTx = opts.maxTx !== undefined ? opts.maxTx : 250;
    if (this.minTx < 0 || this.maxTx < this.minTx || this.maxTx > 65535) throw new Error('bad --txs-per-block range');
    this.chainId = BigInt(opts.chainId !== undefined ? opts.chainId : 1337);
    this.cacheSize = opts.cacheBlocks || 256;
    this.cache = new Map();
    this.headNumber = this.length - 1;
    this.forks = [];
    this.users = new Array(POPULATION);
    this.deposits = new Array(POPULATION);
    this.topics = new Map();
    this.planted = new Map();
    for (const w of WHALES) this.planted.set(w, 'whale');
    this.planted.set(EXCHANGE_HOT, 'exchange-hot');
    this.planted.set(EXCHANGE_COLD, 'exchange-cold');
    this.planted.set(VAULT, 'contract');
    this.planted.set(POOL, 'contract');
    this.planted.set(NFT, 'contract');
    for (const t of TOKENS) this.planted.set(t.address, 'contract');
    for (const b of BUILDERS) this.planted.set(b, 'builder');
    this.growTimer = null;
    this.generated = 0;
  }

  // --- addresses ---------------------------------------------------------

  user(i) {
    let a = this.users[i];
    if (a === undefined) {
      let h = fmix32(this.seedHash ^ Math.imul(i + 1, 0x27d4eb2d));
      a = '0x';
      for (let k = 0; k < 5; k++) {
        h = fmix32(h + 0x9e3779b9 + k);
        a += hex32(h);
      }
      a = flat(a);
      this.users[i] = a;
    }
    return a;
  }

  // Exchange deposit address assigned to user i (an EOA the exchange sweeps).
  depositAddress(i) {
    let a = this.deposits[i];
    if (a === undefined) {
      let h = fmix32((this.seedHash ^ 0xdeb051) + Math.imul(i + 1, 0x165667b1));
      a = '0x';
      for (let k = 0; k < 5; k++) {
        h = fmix32(h + 0x7f4a7c15 + k);
        a += hex32(h);
      }
      a = flat(a);
      this.deposits[i] = a;
    }
    return a;
  }

  // An address as a 32-byte log topic, cached (users recur in many logs).
  topic(address) {
    let t = this.topics.get(address);
    if (t === undefined) {
      t = addressTopic(address);
      if (this.topics.size < 200000) this.topics.set(address, t);
    }
    return t;
  }

  pickUser(rng) {
    const r = rng.float();
    return Math.floor(r * r * POPULATION);
  }

  // --- forks and hashes --------------------------------------------------

  saltFor(n) {
    for (let i = this.forks.length - 1; i >= 0; i--) {
      if (n >= this.forks[i].from) return this.forks[i].salt;
    }
    return 0;
  }

  blockHash(n) {
    const hi = Math.floor(n / 4294967296);
    const rng = new Rng(this.seedHash ^ 0xb10c4, n >>> 0, hi ^ this.saltFor(n), 0x6a09e667);
    return flat('0x' + rng.hex(24) + hex32(hi) + hex32(n >>> 0));
  }

  baseFee(n) {
    const phase = (this.seedHash % 1000) / 100;
    const noise = fmix32(this.seedHash ^ (n >>> 0)) / 4294967296;
    const gwei = 30 + 12 * Math.sin(n / 250) + 6 * Math.sin(n / 37 + phase) + 2 * noise;
    return BigInt(Math.round(gwei * 1e6)) * 1000n;
  }

  // --- block generation --------------------------------------------------

  peekBlock(n) {
    if (n < 0 || n > this.headNumber) return null;
    return this.cache.get(n) || null;
  }

  getBlock(n) {
    if (n < 0 || n > this.headNumber) return null;
    let b = this.cache.get(n);
    if (b) {
      this.cache.delete(n);
      this.cache.set(n, b);
      return b;
    }
    b = this.generate(n);
    this.cache.set(n, b);
    if (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value);
    return b;
  }

  generate(n) {
    this.generated++;
    const salt = this.saltFor(n);
    const hi = Math.floor(n / 4294967296);
    const rng = new Rng(this.seedHash, n >>> 0, hi ^ salt, 0x3c6ef372);
    const baseFee = this.baseFee(n);
    const block = {
      number: n,
      hash: this.blockHash(n),
      parentHash: n === 0 ? ZERO_HASH : this.blockHash(n - 1),
      nonce: ZERO_NONCE,
      transactionsRoot: flat('0x' + rng.hex(32)),
      stateRoot: flat('0x' + rng.hex(32)),
      receiptsRoot: flat('0x' + rng.hex(32)),
      miner: BUILDERS[rng.int(BUILDERS.length)],
      extraData: EXTRA_DATA,
      gasLimit: GAS_LIMIT,
      gasUsed: 0,
      baseFee,
      timestamp: GENESIS_TIMESTAMP + BLOCK_TIME * n,
      logsBloom: ZERO_BLOOM,
      mixHash: flat('0x' + rng.hex(32)),
      difficulty: 0n,
      withdrawalsRoot: EMPTY_TRIE_ROOT,
      withdrawals: [],
      chainId: this.chainId,
      txs: [],
      logs: [],
    };
    if (n === 0) return block;

    const count = this.minTx + rng.int(this.maxTx - this.minTx + 1);
    const specials = new Map();
    const place = (kind) => {
      if (count === 0) return;
      const i = rng.int(count);
      if (!specials.has(i)) specials.set(i, kind);
    };
    if (rng.float() < 0.25) place('whaleEth');
    if (rng.float() < 0.05) place('whaleEth');
    if (rng.float() < 0.10) place('whaleToken');
    if (rng.float() < 0.10) place('hotToCold');
    if (rng.float() < 0.15) place('vaultBig');
    if (rng.float() < 0.02) place('whaleFail');

    const st = { cum: 0, logIndex: 0, hotNonce: n * 32, whaleNonce: Math.floor(n / 4) * 2 };
    const nHex = hex48(n);
    for (let i = 0; i < count; i++) {
      let kind = specials.get(i);
      if (kind === undefined) {
        const r = rng.float();
        kind = 'plain';
        for (let k = 0; k < KIND_CDF.length; k++) {
          if (r < KIND_CDF[k][0]) { kind = KIND_CDF[k][1]; break; }
        }
      }
      const tx = new GenTx(block, i, flat('0x' + rng.hex(24) + nHex + hex16(i)));
      this.fillTx(tx, kind, rng, st);
      block.txs.push(tx);
    }
    block.gasUsed = st.cum;
    return block;
  }

  addLog(tx, st, address, topics, data) {
    const l = { index: st.logIndex++, address, topics, data, tx, block: tx.block };
    tx.logs.push(l);
    tx.block.logs.push(l);
  }

  fillTx(tx, kind, rng, st) {
    const n = tx.block.number;
    const base = tx.block.baseFee;
    const tip = BigInt(Math.round(rng.range(0.05, 3) * 1e9));
    if (rng.float() < 0.1) {
      tx.type = 0;
      tx.gasPrice = base + tip;
    } else {
      tx.type = 2;
      tx.maxTip = tip;
      tx.maxFee = base * 2n + tip;
      tx.gasPrice = tx.maxFee;
    }
    tx.kind = kind;
    let gasUsed = 21000;
    let status = 1;
    let failable = false;
    let contractAddress = null;
    const userNonce = () => Math.floor(n / 64) + rng.int(64);

    switch (kind) {
      case 'plain': {
        tx.from = this.user(this.pickUser(rng));
        tx.to = this.user(this.pickUser(rng));
        tx.value = ethToWei(rng.logRange(0.001, 40));
        tx.nonce = userNonce();
        break;
      }
      case 'deposit': {
        const u = this.pickUser(rng);
        tx.from = this.user(u);
        tx.to = this.depositAddress(u);
        tx.value = ethToWei(rng.logRange(0.05, 40));
        tx.nonce = userNonce();
        break;
      }
      case 'sweep': {
        tx.from = this.depositAddress(this.pickUser(rng));
        tx.to = EXCHANGE_HOT;
        tx.value = ethToWei(rng.logRange(0.05, 40));
        tx.nonce = rng.int(50);
        break;
      }
      case 'withdrawal': {
        tx.from = EXCHANGE_HOT;
        tx.to = this.user(this.pickUser(rng));
        tx.value = ethToWei(rng.logRange(0.01, 40));
        tx.nonce = st.hotNonce++;
        break;
      }
      case 'hotToCold': {
        tx.from = EXCHANGE_HOT;
        tx.to = EXCHANGE_COLD;
        tx.value = ethToWei(rng.range(5000, 30000));
        tx.nonce = st.hotNonce++;
        break;
      }
      case 'whaleEth': {
        tx.from = WHALES[rng.int(WHALES.length)];
        const r = rng.float();
        if (r < 0.4) tx.to = this.user(this.pickUser(rng));
        else if (r < 0.7) tx.to = this.depositAddress(this.pickUser(rng));
        else tx.to = WHALES[rng.int(WHALES.length)];
        tx.value = ethToWei(rng.range(1000, 25000));
        tx.nonce = st.whaleNonce++;
        break;
      }
      case 'whaleFail': {
        tx.from = WHALES[rng.int(WHALES.length)];
        tx.to = VAULT;
        tx.value = ethToWei(rng.range(1000, 10000));
        tx.input = SEL_DEPOSIT;
        tx.gas = 120000;
        tx.nonce = st.whaleNonce++;
        status = 0;
        gasUsed = 30000 + rng.int(30000);
        break;
      }
      case 'vault':
      case 'vaultBig': {
        const big = kind === 'vaultBig';
        // Big (500-5,000 ETH) deposits come from the planted whales only:
        // users never move more than 40 ETH. (The extra draw keeps the
        // random stream, and so the rest of the chain, as it was.)
        if (big) rng.float();
        tx.from = big ? WHALES[rng.int(WHALES.length)] : this.user(this.pickUser(rng));
        tx.to = VAULT;
        tx.value = big ? ethToWei(rng.range(500, 5000)) : ethToWei(rng.logRange(0.1, 40));
        tx.input = SEL_DEPOSIT;
        tx.gas = 120000;
        const nonce = userNonce();
        tx.nonce = big ? st.whaleNonce++ : nonce;
        gasUsed = 45000 + rng.int(35000);
        failable = !big;
        this.addLog(tx, st, VAULT, [DEPOSIT_TOPIC, this.topic(tx.from)], uint256Hex(tx.value));
        break;
      }
      case 'erc20':
      case 'whaleToken': {
        const whale = kind === 'whaleToken';
        const pr = rng.float();
        let ti = 0;
        while (pr >= TOKEN_PICK[ti]) ti++;
        if (whale && (ti === 3)) ti = 0;
        const tok = TOKENS[ti];
        const from = whale ? WHALES[rng.int(WHALES.length)] : this.user(this.pickUser(rng));
        const to = whale && rng.float() < 0.3 ? EXCHANGE_HOT : this.user(this.pickUser(rng));
        const amount = whale ? units(rng.range(tok.whaleMin, tok.whaleMax), tok.decimals)
          : units(rng.logRange(tok.userMax / 1e5, tok.userMax), tok.decimals);
        tx.from = from;
        tx.to = tok.address;
        tx.input = flat(SEL_TRANSFER + this.topic(to).slice(2) + uint256Hex(amount).slice(2));
        tx.gas = 80000;
        tx.nonce = whale ? st.whaleNonce++ : userNonce();
        gasUsed = 34000 + rng.int(18000);
        failable = !whale;
        this.addLog(tx, st, tok.address, [TRANSFER_TOPIC, this.topic(from), this.topic(to)], uint256Hex(amount));
        break;
      }
      case 'swap': {
        const a = TOKENS[rng.int(3)];
        const b = TOKENS[(TOKENS.indexOf(a) + 1 + rng.int(2)) % 3];
        const user = this.user(this.pickUser(rng));
        const amtA = units(rng.logRange(a.userMax / 1e4, a.userMax), a.decimals);
        const amtB = units(rng.logRange(b.userMax / 1e4, b.userMax), b.decimals);
        tx.from = user;
        tx.to = POOL;
        tx.input = flat(SEL_SWAP + uint256Hex(amtA).slice(2) + uint256Hex(amtB).slice(2));
        tx.gas = 300000;
        tx.nonce = userNonce();
        gasUsed = 120000 + rng.int(60000);
        failable = true;
        this.addLog(tx, st, a.address, [TRANSFER_TOPIC, this.topic(user), this.topic(POOL)], uint256Hex(amtA));
        this.addLog(tx, st, b.address, [TRANSFER_TOPIC, this.topic(POOL), this.topic(user)], uint256Hex(amtB));
        break;
      }
      case 'nft': {
        const from = this.user(this.pickUser(rng));
        const to = this.user(this.pickUser(rng));
        const tokenId = BigInt(rng.int(10000));
        tx.from = from;
        tx.to = NFT;
        tx.input = flat(SEL_TRANSFER_FROM + this.topic(from).slice(2) + this.topic(to).slice(2) + uint256Hex(tokenId).slice(2));
        tx.gas = 120000;
        tx.nonce = userNonce();
        gasUsed = 55000 + rng.int(30000);
        failable = true;
        this.addLog(tx, st, NFT, [TRANSFER_TOPIC, this.topic(from), this.topic(to), uint256Hex(tokenId)], '0x');
        break;
      }
      case 'create': {
        tx.from = this.user(this.pickUser(rng));
        tx.to = null;
        tx.input = flat(CREATE_PREFIX + rng.hex(32));
        tx.gas = 1500000;
        tx.nonce = userNonce();
        gasUsed = 400000 + rng.int(800000);
        contractAddress = flat('0x' + CREATED_TAG + rng.hex(8) + hex16(rng.next() & 0xffff) + hex48(n) + hex16(tx.index));
        if (rng.float() < 0.1) status = 0;
        break;
      }
      default:
        throw new Error('unknown tx kind ' + kind);
    }
    if (failable && rng.float() < 0.04) {
      status = 0;
      gasUsed = 21000 + rng.int(Math.max(1, Math.floor((tx.gas - 21000) / 2)));
    }
    if (status === 0 && tx.logs.length > 0) {
      // a reverted transaction has no logs
      const drop = new Set(tx.logs);
      tx.logs = [];
      tx.block.logs = tx.block.logs.filter((l) => !drop.has(l));
      st.logIndex -= drop.size;
    }
    if (gasUsed > tx.gas) tx.gas = gasUsed;
    st.cum += gasUsed;
    tx.receipt = { status, gasUsed, cumulativeGasUsed: st.cum, contractAddress };
  }

  // Dense chain: every number up to the head exists. Blocks are generated
  // while the answer is written (see LazyList).
  blocksInRange(from, to) {
    const last = Math.min(to, this.headNumber);
    if (last < from) return [];
    return new LazyList(last - from + 1, (i) => this.getBlock(from + i));
  }

  logsInRange(first, last, addresses, topics, ctx) {
    const out = [];
    const end = Math.min(last, this.headNumber);
    for (let n = first; n <= end; n++) {
      checkDeadline(ctx);
      const ls = filterLogs(this.getBlock(n).logs, addresses, topics);
      for (const l of ls) out.push(l);
    }
    return out;
  }

  // --- lookups -----------------------------------------------------------

  blockByHash(hash) {
    if (hash.length !== 66) return null;
    const n = parseInt(hash.slice(50), 16);
    if (!Number.isSafeInteger(n) || n > this.headNumber) return null;
    const b = this.getBlock(n);
    return b && b.hash === hash ? b : null;
  }

  decodeTxHash(hash) {
    if (hash.length !== 66) return null;
    const n = parseInt(hash.slice(50, 62), 16);
    const i = parseInt(hash.slice(62, 66), 16);
    return { n, i };
  }

  txByHash(hash) {
    const d = this.decodeTxHash(hash);
    if (!d || d.n > this.headNumber) return null;
    const b = this.getBlock(d.n);
    if (!b) return null;
    const t = b.txs[d.i];
    return t && t.hash === hash ? t : null;
  }

  blockOfTx(hash) {
    const d = this.decodeTxHash(hash);
    return d ? d.n : null;
  }

  finalized() { return Math.max(0, this.headNumber - 64); }

  safe() { return Math.max(0, this.headNumber - 32); }

  // --- accounts (synthetic; not consistent with the transfers) -----------

  accountState(address, n) {
    const h = strHash32(address);
    const kind = this.planted.get(address);
    const drift = BigInt(((Math.imul(n, 7919) >>> 0) + h) % 1000) * 10n ** 15n;
    switch (kind) {
      case 'whale':
        return { balance: ethToWei(30000 + (h % 70000)) + drift, nonce: Math.floor(n / 4) * 2, code: '0x' };
      case 'exchange-hot':
        return { balance: ethToWei(180000) + drift, nonce: n * 32, code: '0x' };
      case 'exchange-cold':
        return { balance: ethToWei(2400000) + drift, nonce: Math.floor(n / 10), code: '0x' };
      case 'builder':
        return { balance: ethToWei(500) + drift, nonce: n, code: '0x' };
      case 'contract':
        return { balance: address === VAULT ? ethToWei(900000) + drift : 0n, nonce: 1, code: CONTRACT_CODE };
      default:
        break;
    }
    let code = '0x';
    if (address.startsWith('0x' + CREATED_TAG) && address.length === 42) {
      const cn = parseInt(address.slice(26, 38), 16);
      const ci = parseInt(address.slice(38), 16);
      if (cn <= n) {
        const b = this.getBlock(cn);
        const t = b && b.txs[ci];
        if (t && t.receipt && t.receipt.contractAddress === address && t.receipt.status === 1) code = CONTRACT_CODE;
      }
    }
    const eth = 0.001 * Math.pow(60000, h / 4294967296);
    return { balance: ethToWei(eth) + BigInt(n) * 1000n, nonce: (h % 5000) + Math.floor(n / 500), code };
  }

  // --- control -----------------------------------------------------------

  setHead(n) {
    if (!Number.isInteger(n) || n < 0) throw new Error('head must be a non-negative integer');
    if (n < this.headNumber) {
      for (const k of Array.from(this.cache.keys())) if (k > n) this.cache.delete(k);
    }
    this.headNumber = n;
    return n;
  }

  grow(everyMs, blocks) {
    if (this.growTimer) clearInterval(this.growTimer);
    this.growTimer = null;
    if (!everyMs) return null;
    const step = blocks || 1;
    this.growTimer = setInterval(() => { this.headNumber += step; }, everyMs);
    this.growTimer.unref();
    return { everyMs, blocks: step };
  }

  fork(depth, seed) {
    if (!Number.isInteger(depth) || depth < 1) throw new Error('fork depth must be a positive integer');
    const from = Math.max(1, this.headNumber - depth + 1);
    const old = { [from]: this.blockHash(from), [this.headNumber]: this.blockHash(this.headNumber) };
    const salt = (strHash32('fork:' + String(seed === undefined ? this.forks.length + 1 : seed) + ':' + from) | 1) >>> 0;
    this.forks.push({ from, salt, seed: seed === undefined ? null : seed });
    for (const k of Array.from(this.cache.keys())) if (k >= from) this.cache.delete(k);
    return {
      from,
      to: this.headNumber,
      oldHashes: old,
      newHashes: { [from]: this.blockHash(from), [this.headNumber]: this.blockHash(this.headNumber) },
    };
  }

  close() {
    if (this.growTimer) clearInterval(this.growTimer);
    this.growTimer = null;
  }

  facts() {
    return {
      source: 'generate',
      seed: this.seed,
      blocks: this.length,
      head: this.headNumber,
      chainId: Number(this.chainId),
      genesisTimestamp: GENESIS_TIMESTAMP,
      genesisTime: new Date(GENESIS_TIMESTAMP * 1000).toISOString(),
      blockTime: BLOCK_TIME,
      gasLimit: GAS_LIMIT,
      txsPerBlock: [this.minTx, this.maxTx],
      population: POPULATION,
      whales: WHALES.slice(),
      whaleMinEth: 1000,
      exchange: { hot: EXCHANGE_HOT, cold: EXCHANGE_COLD, label: 'Synthex Exchange' },
      contract: { address: VAULT, label: 'Synthex Vault', depositSelector: SEL_DEPOSIT, depositTopic: DEPOSIT_TOPIC },
      dexPool: POOL,
      nft: { address: NFT, standard: 'ERC-721' },
      tokens: TOKENS.map((t) => ({ address: t.address, symbol: t.symbol, decimals: t.decimals, priced: t.priced })),
      builders: BUILDERS.slice(),
      transferTopic: TRANSFER_TOPIC,
      createdContractPrefix: '0x' + CREATED_TAG,
      forks: this.forks.map((f) => ({ from: f.from, seed: f.seed })),
      growing: this.growTimer !== null,
      cache: { size: this.cache.size, max: this.cacheSize, generated: this.generated },
    };
  }
}

module.exports = {
  GenSource,
  Rng,
  strHash32,
  labelAddress,
  GENESIS_TIMESTAMP,
  WHALES,
  EXCHANGE_HOT,
  EXCHANGE_COLD,
  VAULT,
  TOKENS,
  NFT,
};
