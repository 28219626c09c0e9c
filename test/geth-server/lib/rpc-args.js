'use strict';
// JSON-RPC argument decoding with the error texts of Geth v1.17.5:
// rpc/json.go parsePositionalArguments, rpc/types.go (BlockNumber,
// BlockNumberOrHash), common/hexutil (fixed-size hex, DecodeUint64),
// eth/filters/api.go FilterCriteria.UnmarshalJSON, and Go's encoding/json
// type errors ("json: cannot unmarshal X into Go value of type T", or
// "... into Go struct field S.f of type T" inside a struct).
//
// Every error here is an argument error: code -32602, and callers prefix
// "invalid argument N: " where Geth does (positional decoding).

const { decodeUint64 } = require('./geth-values');

const MAX_INT64 = (1n << 63n) - 1n;
const MAX_TOPICS = 4; // eth/filters/api.go maxTopics
const MAX_SUB_TOPICS = 1000; // maxSubTopics

// rpc.BlockNumber special values.
const EARLIEST = -5;
const SAFE = -4;
const FINALIZED = -3;
const LATEST = -2;
const PENDING = -1;

// An argument error: -32602 with the message verbatim.
class InvalidParams extends Error {}

function jsonKind(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'boolean') return 'bool';
  return typeof v === 'object' ? 'object' : typeof v; // number, string
}

function typeError(value, goType, field) {
  return field
    ? `json: cannot unmarshal ${value} into Go struct field ${field} of type ${goType}`
    : `json: cannot unmarshal ${value} into Go value of type ${goType}`;
}

function isHex(s) { return /^[0-9a-fA-F]*$/.test(s); }

// rpc/json.go parsePositionalArguments: decode params in order with one
// spec per argument ({parse(value, i), required}); an argument's own error
// comes before "too many arguments" for a later one, and missing required
// arguments are reported after the present ones decoded. "params": null or
// absent is []; an optional argument that is absent gets parse(undefined).
function decodeArgs(params, specs) {
  if (params === undefined || params === null) params = [];
  if (!Array.isArray(params)) throw new InvalidParams('non-array args');
  const out = [];
  for (let i = 0; i < params.length; i++) {
    if (i >= specs.length) throw new InvalidParams(`too many arguments, want at most ${specs.length}`);
    out.push(specs[i].parse(params[i], i));
  }
  for (let i = params.length; i < specs.length; i++) {
    if (specs[i].required) throw new InvalidParams(`missing value for required argument ${i}`);
    out.push(specs[i].parse(undefined, i));
  }
  return out;
}

// hexutil.UnmarshalFixedJSON(common.Hash / common.Address): decErrors are
// wrapped in a json type error, the length error is not. `field` is the Go
// struct field path when the value sits inside a struct ("input.blockHash").
function fixedHex(v, goType, nbytes, field) {
  if (typeof v !== 'string') throw new InvalidParams(typeError('non-string', goType, field));
  let raw = v;
  if (raw.length > 0) {
    if (!/^0[xX]/.test(raw)) throw new InvalidParams(typeError('hex string without 0x prefix', goType, field));
    raw = raw.slice(2);
    if (raw.length % 2 !== 0) throw new InvalidParams(typeError('hex string of odd length', goType, field));
  }
  if (raw.length !== nbytes * 2) throw new InvalidParams(`hex string has length ${raw.length}, want ${nbytes * 2} for ${goType}`);
  if (!isHex(raw)) throw new InvalidParams(typeError('invalid hex string', goType, field));
  return '0x' + raw.toLowerCase();
}

const parseHash = (v, field) => fixedHex(v, 'common.Hash', 32, field);
const parseAddress = (v, field) => fixedHex(v, 'common.Address', 20, field);

// hexutil.Decode + a length check (eth/filters decodeAddress/decodeTopic).
function decodeSized(s, nbytes, what) {
  if (s.length === 0) throw new InvalidParams('empty hex string');
  if (!/^0[xX]/.test(s)) throw new InvalidParams('hex string without 0x prefix');
  const raw = s.slice(2);
  if (!isHex(raw)) throw new InvalidParams('invalid hex string');
  if (raw.length % 2 !== 0) throw new InvalidParams('hex string of odd length');
  if (raw.length !== nbytes * 2) {
    throw new InvalidParams(`hex has invalid length ${raw.length / 2} after decoding; expected ${nbytes} for ${what}`);
  }
  return '0x' + raw.toLowerCase();
}

// rpc.BlockNumber.UnmarshalJSON on a JSON value -> number (negative: tags).
function blockNumberFrom(v) {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  switch (s) {
    case 'earliest': return EARLIEST;
    case 'safe': return SAFE;
    case 'finalized': return FINALIZED;
    case 'latest': return LATEST;
    case 'pending': return PENDING;
    default: break;
  }
  let n;
  try { n = decodeUint64(s); } catch (e) { throw new InvalidParams(e.message); }
  if (n > MAX_INT64) throw new InvalidParams('block number larger than int64');
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
}

// Prefix an argument error with its position, like parseArgumentArray.
function arg(i, fn) {
  try {
    return fn();
  } catch (e) {
    if (e instanceof InvalidParams) throw new InvalidParams(`invalid argument ${i}: ${e.message}`);
    throw e;
  }
}

const parseBlockNumber = (v, i) => arg(i, () => blockNumberFrom(v));
const parseHashArg = (v, i) => arg(i, () => parseHash(v));
const parseAddressArg = (v, i) => arg(i, () => parseAddress(v));

// A Go bool argument (null decodes to false).
function parseBool(v, i) {
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw new InvalidParams(`invalid argument ${i}: ${typeError(jsonKind(v), 'bool')}`);
  return v;
}

// Field of a JSON object as Go's decoder finds it: exact name first, else
// a case-insensitive match.
function goField(obj, name) {
  if (Object.prototype.hasOwnProperty.call(obj, name)) return obj[name];
  const k = Object.keys(obj).find((x) => x.toLowerCase() === name.toLowerCase());
  return k === undefined ? undefined : obj[k];
}

// rpc.BlockNumberOrHash.UnmarshalJSON -> {number} | {hash, requireCanonical}.
// `optional`: the argument is a pointer (*BlockNumberOrHash): absent or
// null means "latest" (blockNrOrHashOrLatest).
function parseBlockNumberOrHash(v, i, optional) {
  if (v === undefined || (v === null && optional)) return { number: LATEST };
  return arg(i, () => {
    if (v === null) throw new InvalidParams('must specify either BlockHash or BlockNumber');
    if (typeof v === 'object' && !Array.isArray(v)) {
      let number;
      let hash;
      let canonical = false;
      try {
        const n = goField(v, 'blockNumber');
        if (n !== undefined && n !== null) number = blockNumberFrom(n);
        const h = goField(v, 'blockHash');
        if (h !== undefined && h !== null) hash = parseHash(h, 'erased.blockHash');
        const c = goField(v, 'requireCanonical');
        if (c !== undefined && c !== null) {
          if (typeof c !== 'boolean') throw new InvalidParams('bool');
          canonical = c;
        }
      } catch (e) {
        // the struct decode failed: Geth then tries a string, which fails too
        throw new InvalidParams(typeError('object', 'string'));
      }
      if (number !== undefined && hash !== undefined) throw new InvalidParams('cannot specify both BlockHash and BlockNumber, choose one or the other');
      if (number === undefined && hash === undefined) throw new InvalidParams('must specify either BlockHash or BlockNumber');
      return hash !== undefined ? { hash, requireCanonical: canonical } : { number };
    }
    if (typeof v !== 'string') throw new InvalidParams(typeError(jsonKind(v), 'string'));
    switch (v) {
      case 'earliest': return { number: EARLIEST };
      case 'latest': return { number: LATEST };
      case 'pending': return { number: PENDING };
      case 'finalized': return { number: FINALIZED };
      case 'safe': return { number: SAFE };
      default: break;
    }
    if (v.length === 66) {
      // common.Hash.UnmarshalText: hexutil.UnmarshalFixedText("Hash", ...)
      if (!/^0[xX]/.test(v)) throw new InvalidParams('hex string without 0x prefix');
      if (!isHex(v.slice(2))) throw new InvalidParams('invalid hex string');
      return { hash: '0x' + v.slice(2).toLowerCase(), requireCanonical: false };
    }
    let n;
    try { n = decodeUint64(v); } catch (e) { throw new InvalidParams(e.message); }
    if (n > MAX_INT64) throw new InvalidParams('blocknumber too high');
    return { number: Number(n) };
  });
}

// filters.FilterCriteria.UnmarshalJSON -> {blockHash, fromBlock, toBlock,
// addresses: [lowercase], topics: [[hash] | null]} (null/absent block
// numbers stay null: the caller applies the "latest" default).
function parseFilterCriteria(v, i) {
  return arg(i, () => {
    const out = { blockHash: null, fromBlock: null, toBlock: null, addresses: [], topics: [] };
    if (v === null) return out;
    if (typeof v !== 'object' || Array.isArray(v)) throw new InvalidParams(typeError(jsonKind(v), 'filters.input'));
    // the input struct, decoded field by field in document order: an
    // Unmarshaler's error ends decoding, a plain type mismatch is kept and
    // reported at the end (encoding/json's savedError)
    let saved = null;
    let rawAddresses = null;
    let rawTopics = null;
    const seen = new Set();
    for (const key of Object.keys(v)) {
      const name = ['blockHash', 'fromBlock', 'toBlock', 'address', 'topics'].find((f) => f === key)
        || ['blockHash', 'fromBlock', 'toBlock', 'address', 'topics'].find((f) => f.toLowerCase() === key.toLowerCase());
      if (!name || seen.has(name)) continue;
      seen.add(name);
      const val = v[key];
      if (val === null) continue;
      switch (name) {
        case 'blockHash': out.blockHash = parseHash(val, 'input.blockHash'); break;
        case 'fromBlock': out.fromBlock = blockNumberFrom(val); break;
        case 'toBlock': out.toBlock = blockNumberFrom(val); break;
        case 'address': rawAddresses = val; break;
        case 'topics':
          if (!Array.isArray(val)) {
            if (!saved) saved = typeError(jsonKind(val), '[]interface {}', 'input.topics');
          } else rawTopics = val;
          break;
        default: break;
      }
    }
    if (saved) throw new InvalidParams(saved);
    if (out.blockHash !== null && (out.fromBlock !== null || out.toBlock !== null)) {
      throw new InvalidParams('cannot specify both BlockHash and FromBlock/ToBlock, choose one or the other');
    }
    if (rawAddresses !== null) {
      if (Array.isArray(rawAddresses)) {
        rawAddresses.forEach((a, k) => {
          if (typeof a !== 'string') throw new InvalidParams(`non-string address at index ${k}`);
          try { out.addresses.push(decodeSized(a, 20, 'address')); } catch (e) {
            throw new InvalidParams(`invalid address at index ${k}: ${e.message}`);
          }
        });
      } else if (typeof rawAddresses === 'string') {
        try { out.addresses = [decodeSized(rawAddresses, 20, 'address')]; } catch (e) {
          throw new InvalidParams(`invalid address: ${e.message}`);
        }
      } else {
        throw new InvalidParams('invalid addresses in query');
      }
    }
    if (rawTopics !== null) {
      if (rawTopics.length > MAX_TOPICS) throw new InvalidParams('exceed max topics');
      out.topics = rawTopics.map((t) => {
        if (t === null) return null; // wildcard
        if (typeof t === 'string') return [decodeSized(t, 32, 'topic')];
        if (!Array.isArray(t)) throw new InvalidParams('invalid topic(s)');
        if (t.length > MAX_SUB_TOPICS) throw new InvalidParams('exceed max topics');
        const alt = [];
        for (const x of t) {
          if (x === null) return null; // a null alternative matches all
          if (typeof x !== 'string') throw new InvalidParams('invalid topic(s)');
          alt.push(decodeSized(x, 32, 'topic'));
        }
        return alt.length ? alt : null;
      });
    }
    return out;
  });
}

module.exports = {
  InvalidParams,
  decodeArgs,
  jsonKind,
  parseBlockNumber,
  parseBool,
  parseHashArg,
  parseAddressArg,
  parseBlockNumberOrHash,
  parseFilterCriteria,
  EARLIEST,
  SAFE,
  FINALIZED,
  LATEST,
  PENDING,
};
