'use strict';
// Chain source backed by the CSV layout of shared/data (see its README):
//   blocks.csv          number,hash,parent_hash,timestamp,miner,gas_used,tx_count
//   txs.csv             block,idx,hash,from,to,value_wei,gas,gas_price,input_prefix
//   receipts.csv        block,tx_hash,status,gas_used,cumulative_gas_used,contract_address,log_count
//   token_transfers.csv block,tx_hash,log_index,token,from,to,value_raw
//   accounts.csv        block,address,balance_wei,nonce,is_contract (optional:
//                       the state of the accounts block+1 touches, as of the
//                       end of `block`; see shared/data/accounts/README.md)
// Optional columns used when present: txs.csv `nonce`, blocks.csv `gas_limit`
// and `base_fee_per_gas`.
// Columns are looked up by header name. Fields the CSV lacks get the defaults
// documented in README.md ("CSV defaults").

const fs = require('fs');
const path = require('path');
const { GoError } = require('./geth-values');
const {
  ChainSource, checkDeadline, addressTopic, uint256Hex, TRANSFER_TOPIC,
  ZERO_HASH, ZERO_BLOOM, ZERO_NONCE, CONTRACT_CODE,
} = require('./source-base');

function parseCSVLine(line) {
  if (line.indexOf('"') < 0) return line.split(',');
  const out = [];
  let cur = '';
  let q = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q) {
      if (c === '"') {
        if (line[i + 1] === '"') { cur += '"'; i++; } else q = false;
      } else cur += c;
    } else if (c === '"') q = true;
    else if (c === ',') { out.push(cur); cur = ''; } else cur += c;
  }
  out.push(cur);
  return out;
}

function readCSV(file, required) {
  if (!fs.existsSync(file)) {
    if (required) throw new Error(`missing ${file}`);
    return [];
  }
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split(/\r?\n/);
  const header = parseCSVLine(lines[0]).map((h) => h.trim());
  const rows = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line === '') continue;
    const cells = parseCSVLine(line);
    const row = {};
    for (let j = 0; j < header.length; j++) row[header[j]] = cells[j] === undefined ? '' : cells[j];
    rows.push(row);
  }
  return rows;
}

function lower(s) { return (s || '').toLowerCase(); }

class CsvSource extends ChainSource {
  constructor(dir, opts = {}) {
    super();
    this.kind = 'data';
    this.dir = path.resolve(dir);
    this.chainId = BigInt(opts.chainId !== undefined ? opts.chainId : 1);
    this.blocks = new Map();
    this.byHash = new Map();
    this.txs = new Map();
    this.contracts = new Set();
    // block -> Map(address -> {balance, nonce, code}) from accounts.csv; null
    // without that file (then accounts are the old placeholders, see README).
    this.state = null;
    this.stats = {};
    this.load();
  }

  load() {
    const dir = this.dir;
    const blockRows = readCSV(path.join(dir, 'blocks.csv'), true);
    const txRows = readCSV(path.join(dir, 'txs.csv'), true);
    const receiptRows = readCSV(path.join(dir, 'receipts.csv'), false);
    const transferRows = readCSV(path.join(dir, 'token_transfers.csv'), false);

    for (const r of blockRows) {
      const number = Number(r.number);
      const b = {
        number,
        hash: lower(r.hash),
        parentHash: lower(r.parent_hash) || ZERO_HASH,
        nonce: ZERO_NONCE,
        transactionsRoot: ZERO_HASH,
        stateRoot: ZERO_HASH,
        receiptsRoot: ZERO_HASH,
        miner: lower(r.miner),
        extraData: '0x',
        gasLimit: Number(r.gas_limit || 0),
        gasUsed: Number(r.gas_used || 0),
        baseFee: r.base_fee_per_gas ? BigInt(r.base_fee_per_gas) : null,
        timestamp: Number(r.timestamp || 0),
        logsBloom: ZERO_BLOOM,
        mixHash: ZERO_HASH,
        difficulty: 0n,
        withdrawalsRoot: null,
        withdrawals: null,
        txCount: r.tx_count === undefined || r.tx_count === '' ? undefined : Number(r.tx_count),
        txs: [],
        logs: [],
      };
      this.blocks.set(number, b);
      this.byHash.set(b.hash, b);
    }

    for (const r of txRows) {
      const b = this.blocks.get(Number(r.block));
      if (!b) continue;
      const t = {
        hash: lower(r.hash),
        nonce: r.nonce ? Number(r.nonce) : 0,
        index: Number(r.idx),
        from: lower(r.from),
        to: r.to ? lower(r.to) : null,
        value: BigInt(r.value_wei || 0),
        type: 0,
        gasPrice: BigInt(r.gas_price || 0),
        maxFee: null,
        maxTip: null,
        gas: Number(r.gas || 0),
        input: r.input_prefix ? lower(r.input_prefix) : '0x',
        receipt: null,
        logs: [],
        block: b,
      };
      b.txs.push(t);
      this.txs.set(t.hash, t);
    }
    for (const b of this.blocks.values()) {
      b.txs.sort((x, y) => x.index - y.index);
      if (b.txCount === undefined) b.txCount = b.txs.length;
    }

    const blocksWithReceipts = new Set();
    for (const r of receiptRows) {
      const t = this.txs.get(lower(r.tx_hash));
      if (!t) continue;
      t.receipt = {
        status: r.status === '' || r.status === undefined ? null : Number(r.status),
        gasUsed: r.gas_used === '' ? null : Number(r.gas_used),
        cumulativeGasUsed: r.cumulative_gas_used === '' ? null : Number(r.cumulative_gas_used),
        contractAddress: r.contract_address ? lower(r.contract_address) : null,
      };
      if (t.receipt.contractAddress) this.contracts.add(t.receipt.contractAddress);
      blocksWithReceipts.add(t.block.number);
    }
    // Derive receipts where the CSV determines them: a block whose only
    // transaction used all of its gas, or whose gas_used is exactly 21000 per
    // transaction (every transaction costs at least 21000).
    let derived = 0;
    for (const b of this.blocks.values()) {
      const n = b.txs.length;
      if (n === 0 || blocksWithReceipts.has(b.number) || n !== b.txCount) continue;
      if (n === 1 || b.gasUsed === 21000 * n) {
        let cum = 0;
        for (const t of b.txs) {
          const used = n === 1 ? b.gasUsed : 21000;
          cum += used;
          t.receipt = { status: null, gasUsed: used, cumulativeGasUsed: cum, contractAddress: null };
          derived++;
        }
      }
    }

    let logCount = 0;
    let skipped = 0;
    for (const r of transferRows) {
      const t = this.txs.get(lower(r.tx_hash));
      if (!t) { skipped++; continue; }
      const token = lower(r.token);
      const l = {
        index: Number(r.log_index),
        address: token,
        topics: [TRANSFER_TOPIC, addressTopic(lower(r.from)), addressTopic(lower(r.to))],
        data: uint256Hex(r.value_raw || 0),
        tx: t,
        block: t.block,
      };
      t.logs.push(l);
      t.block.logs.push(l);
      this.contracts.add(token);
      logCount++;
    }
    for (const b of this.blocks.values()) {
      b.logs.sort((x, y) => x.index - y.index);
      for (const t of b.txs) t.logs.sort((x, y) => x.index - y.index);
    }

    const stateRows = readCSV(path.join(dir, 'accounts.csv'), false);
    if (stateRows.length > 0) {
      this.state = new Map();
      for (const r of stateRows) {
        const n = Number(r.block);
        let m = this.state.get(n);
        if (!m) { m = new Map(); this.state.set(n, m); }
        const flag = lower(r.is_contract);
        m.set(lower(r.address), {
          balance: BigInt(r.balance_wei),
          nonce: Number(r.nonce),
          code: flag === 't' || flag === 'true' || flag === '1' ? CONTRACT_CODE : '0x',
        });
      }
    }

    this.numbers = Array.from(this.blocks.keys()).sort((a, b) => a - b);
    this.maxNumber = this.numbers.length ? this.numbers[this.numbers.length - 1] : 0;
    this.headNumber = this.maxNumber;
    this.stats = {
      blocks: this.blocks.size,
      transactions: this.txs.size,
      receipts: receiptRows.length,
      derivedReceipts: derived,
      logs: logCount,
      transfersWithoutTx: skipped,
      stateBlocks: this.state ? this.state.size : 0,
      stateRows: stateRows.length,
    };
  }

  getBlock(n) {
    if (n > this.headNumber) return null;
    return this.blocks.get(n) || null;
  }

  // getBlock, or the state-only block of accounts.csv (Query.block, the
  // JSON-RPC account methods).
  blockOrState(n) {
    return this.getBlock(n) || this.stateBlock(n);
  }

  blockByHash(hash) {
    const b = this.byHash.get(hash);
    return b && b.number <= this.headNumber ? b : null;
  }

  txByHash(hash) {
    const t = this.txs.get(hash);
    return t && t.block.number <= this.headNumber ? t : null;
  }

  // Sparse data: only the blocks present, in order.
  blocksInRange(from, to, ctx) {
    const last = Math.min(to, this.headNumber);
    const nums = this.numbers;
    let lo = 0;
    let hi = nums.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (nums[mid] < from) lo = mid + 1; else hi = mid;
    }
    const out = [];
    for (let i = lo; i < nums.length && nums[i] <= last; i++) {
      if ((i & 63) === 0) checkDeadline(ctx);
      out.push(this.blocks.get(nums[i]));
    }
    return out;
  }

  accountState(address, n) {
    if (this.state === null) {
      return { balance: 0n, nonce: 0, code: this.contracts.has(address) ? CONTRACT_CODE : '0x' };
    }
    // A pruned node: only the states of accounts.csv exist; anything else is
    // Geth's missing-state error (path scheme / hash scheme wording).
    const m = this.state.get(n);
    const b = this.blocks.get(n);
    const root = (b ? b.hash : ZERO_HASH).slice(2);
    if (!m) throw new GoError(`historical state ${root} is not available`);
    const a = m.get(address);
    if (!a) throw new GoError(`missing trie node ${root} (path ) state of ${address} at block ${n} is not in accounts.csv`);
    return a;
  }

  // A block of accounts.csv that blocks.csv lacks (the block before each one
  // of blocks.csv): block(number:) answers it for its number and accounts,
  // every other field is an error (its header is not in the data).
  stateBlock(n) {
    if (this.state === null || !this.state.has(n) || n > this.headNumber) return null;
    const stub = { number: n };
    return new Proxy(stub, {
      get(t, k) {
        if (k === 'number') return t.number;
        if (typeof k === 'symbol' || k === 'then' || k === 'toJSON') return undefined;
        throw new GoError(`block ${n}: only its account state is in the test data (accounts.csv), not its header`);
      },
    });
  }

  setHead(n) {
    if (!Number.isInteger(n) || n < 0) throw new Error('head must be a non-negative integer');
    this.headNumber = Math.min(n, this.maxNumber);
    return this.headNumber;
  }

  facts() {
    return {
      source: 'data',
      dir: this.dir,
      chainId: Number(this.chainId),
      head: this.headNumber,
      maxBlock: this.maxNumber,
      minBlock: this.numbers.length ? this.numbers[0] : null,
      stats: this.stats,
      contracts: Array.from(this.contracts).sort(),
      stateBlocks: this.state ? Array.from(this.state.keys()).sort((x, y) => x - y) : [],
    };
  }
}

module.exports = { CsvSource, readCSV, parseCSVLine };
