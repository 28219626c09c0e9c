'use strict';
// Result shapes of Geth v1.17.5's JSON-RPC (internal/ethapi/api.go), read off
// a real v1.17.5 dev node:
//   - a block is a Go map, so its keys come out sorted (RPCMarshalHeader +
//     RPCMarshalBlock): optional keys (baseFeePerGas, withdrawals, ...) are
//     absent when the block has no such field; no totalDifficulty (gone in 1.14.11);
//   - a transaction is the RPCTransaction struct, in struct order; legacy
//     transactions have no maxFeePerGas/maxPriorityFeePerGas/accessList/yParity,
//     and chainId only when EIP-155 protected; gasPrice is the effective price;
//   - a receipt is a map (sorted keys); its logs are structs (struct order).
// `size` is an estimate of the RLP size (the test server has no RLP).
// `opts` ({txTimestamp, logTimestamp}, both default true) drop the fields
// older nodes do not have (see lib/rpc-limits.js).

const { hexNum } = require('./geth-values');
const { OMMER_HASH_EMPTY } = require('./resolvers');

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

// RPCTransaction (struct order). blockTimestamp is there since v1.17.0
// (PR #33709); opts.txTimestamp === false leaves it out (older nodes).
function rpcTransaction(t, opts) {
  const b = t.block;
  const o = {
    blockHash: b.hash,
    blockNumber: hexNum(b.number),
  };
  if (!opts || opts.txTimestamp !== false) o.blockTimestamp = hexNum(b.timestamp);
  o.from = t.from;
  o.gas = hexNum(t.gas);
  o.gasPrice = hexNum(effectiveGasPrice(t));
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
function rpcBlock(b, fullTx, opts) {
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
  o.transactions = fullTx ? txs.map((t) => rpcTransaction(t, opts)) : txs.map((t) => t.hash);
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

// RPCMarshalHeader alone (eth_getHeaderByNumber / ByHash): the block's
// keys without size, transactions, uncles and withdrawals.
function rpcHeader(b) {
  const o = rpcBlock(b, false);
  delete o.size;
  delete o.transactions;
  delete o.uncles;
  delete o.withdrawals;
  return o;
}

// types.Log (struct order) as Geth marshals it in a receipt and in
// eth_getLogs. blockTimestamp is there since v1.16.0 (PR #31887);
// opts.logTimestamp === false leaves it out (older nodes and providers).
function rpcLog(l, opts) {
  const b = l.block;
  const o = {
    address: l.address,
    topics: l.topics,
    data: l.data,
    blockNumber: hexNum(b.number),
    transactionHash: l.tx.hash,
    transactionIndex: hexNum(l.tx.index),
    blockHash: b.hash,
  };
  if (!opts || opts.logTimestamp !== false) o.blockTimestamp = hexNum(b.timestamp);
  o.logIndex = hexNum(l.index);
  o.removed = false;
  return o;
}

// MarshalReceipt (a map: keys sorted).
function rpcReceipt(t, opts) {
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
    logs: t.logs.map((l) => rpcLog(l, opts)),
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

module.exports = { rpcBlock, rpcHeader, rpcTransaction, rpcReceipt, rpcLog, effectiveGasPrice };
