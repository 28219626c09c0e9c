'use strict';
// Input decoding and output encoding with the exact semantics (and error
// messages) of Geth v1.17.5 + graph-gophers/graphql-go v1.3.0.
//
// GraphQL input values reach Geth's UnmarshalGraphQL methods as Go values:
//   integer literal  -> int32 (literal text parsed with strconv.ParseInt(s, 10, 32);
//                       out of range panics: "panic occurred: strconv.ParseInt: ...")
//   float literal    -> float64, string -> string, true/false -> bool,
//   enum-like ident  -> string, null -> nil,
//   JSON variables   -> float64 / string / bool / nil / []interface {} / map[string]interface {}
// We model int32 with the Int32 wrapper and float64 with plain JS numbers.

class Int32 {
  constructor(v) { this.v = v; }
}

// A Go panic inside graph-gophers' executor: the whole response becomes
// {"errors":[{"message":"panic occurred: ..."}]} without data.
class GoPanic extends Error {}
// An error returned by an UnmarshalGraphQL / resolver (message verbatim).
class GoError extends Error {}
// Raised when a request runs past the emulated HTTP write timeout.
class TimeoutSignal extends Error {}

function goQuote(s) {
  return JSON.stringify(String(s));
}

function goTypeName(v) {
  if (v === null || v === undefined) return '<nil>';
  if (v instanceof Int32) return 'int32';
  switch (typeof v) {
    case 'number': return 'float64';
    case 'string': return 'string';
    case 'boolean': return 'bool';
    default: break;
  }
  if (Array.isArray(v)) return '[]interface {}';
  return 'map[string]interface {}';
}

// Go's fmt %v of a JSON-decoded value (used in a few validation messages).
function goFormatValue(v) {
  if (v === null || v === undefined) return '<nil>';
  if (v instanceof Int32) return String(v.v);
  if (Array.isArray(v)) return '[' + v.map(goFormatValue).join(' ') + ']';
  if (typeof v === 'object') {
    const keys = Object.keys(v).sort();
    return 'map[' + keys.map((k) => k + ':' + goFormatValue(v[k])).join(' ') + ']';
  }
  return String(v);
}

// Parse an integer literal from query text like graph-gophers does (32 bit).
const INT32_MIN = -2147483648n;
const INT32_MAX = 2147483647n;
function deserializeIntLiteral(text) {
  let b;
  try { b = BigInt(text); } catch (e) {
    throw new GoPanic(`strconv.ParseInt: parsing ${goQuote(text)}: invalid syntax`);
  }
  if (b < INT32_MIN || b > INT32_MAX) {
    throw new GoPanic(`strconv.ParseInt: parsing ${goQuote(text)}: value out of range`);
  }
  return new Int32(Number(b));
}

function nibble(c) {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

function has0xPrefix(s) {
  return s.length >= 2 && s[0] === '0' && (s[1] === 'x' || s[1] === 'X');
}

const MAX_U64 = (1n << 64n) - 1n;

// hexutil.DecodeUint64
function decodeUint64(input) {
  if (input.length === 0) throw new GoError('empty hex string');
  if (!has0xPrefix(input)) throw new GoError('hex string without 0x prefix');
  const raw = input.slice(2);
  if (raw.length === 0) throw new GoError('hex string "0x"');
  if (raw.length > 1 && raw[0] === '0') throw new GoError('hex number with leading zero digits');
  let n = 0n;
  for (let i = 0; i < raw.length; i++) {
    const d = nibble(raw.charCodeAt(i));
    if (d < 0) throw new GoError('invalid hex string');
    n = n * 16n + BigInt(d);
    if (n > MAX_U64) throw new GoError('hex number > 64 bits');
  }
  return n;
}

// strconv.ParseInt(s, 10, 64)
function parseInt64Decimal(s) {
  const err = (what) => new GoError(`strconv.ParseInt: parsing ${goQuote(s)}: ${what}`);
  if (!/^[+-]?[0-9]+$/.test(s)) throw err('invalid syntax');
  const b = BigInt(s);
  if (b > 9223372036854775807n || b < -9223372036854775808n) throw err('value out of range');
  return b;
}

// graphql.Long.UnmarshalGraphQL -> JS number (int64 semantics; values beyond
// 2^53 lose precision, which only matters far beyond any head).
function parseLong(v) {
  if (typeof v === 'string') {
    if (v.startsWith('0x')) {
      return Number(BigInt.asIntN(64, decodeUint64(v)));
    }
    return Number(parseInt64Decimal(v));
  }
  if (v instanceof Int32) return v.v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return Number.MIN_SAFE_INTEGER;
    return Math.trunc(v);
  }
  throw new GoError(`unexpected type ${goTypeName(v)} for Long`);
}

// hexutil.Big.UnmarshalGraphQL -> BigInt
function parseBigInt(v) {
  if (typeof v === 'string') {
    if (v.length === 0) return 0n;
    if (!has0xPrefix(v)) throw new GoError('hex string without 0x prefix');
    const raw = v.slice(2);
    if (raw.length === 0) throw new GoError('hex string "0x"');
    if (raw.length > 1 && raw[0] === '0') throw new GoError('hex number with leading zero digits');
    if (raw.length > 64) throw new GoError('hex number > 256 bits');
    for (let i = 0; i < raw.length; i++) {
      if (nibble(raw.charCodeAt(i)) < 0) throw new GoError('invalid hex string');
    }
    return BigInt('0x' + raw);
  }
  if (v instanceof Int32) return BigInt(v.v);
  throw new GoError(`unexpected type ${goTypeName(v)} for BigInt`);
}

// hexutil.UnmarshalFixedText(typname, input, out[nbytes])
function parseFixed(v, typname, nbytes) {
  if (typeof v !== 'string') throw new GoError(`unexpected type ${goTypeName(v)} for ${typname}`);
  let raw = v;
  if (raw.length > 0) {
    if (has0xPrefix(raw)) raw = raw.slice(2);
    else throw new GoError('hex string without 0x prefix');
    if (raw.length % 2 !== 0) throw new GoError('hex string of odd length');
  }
  if (raw.length / 2 !== nbytes) {
    throw new GoError(`hex string has length ${raw.length}, want ${nbytes * 2} for ${typname}`);
  }
  for (let i = 0; i < raw.length; i++) {
    if (nibble(raw.charCodeAt(i)) < 0) throw new GoError('invalid hex string');
  }
  return '0x' + raw.toLowerCase();
}

const parseHash = (v) => parseFixed(v, 'Hash', 32);
const parseAddress = (v) => parseFixed(v, 'Address', 20);

// hexutil.Bytes.UnmarshalGraphQL -> lowercase 0x string
function parseBytes(v) {
  if (typeof v !== 'string') throw new GoError(`unexpected type ${goTypeName(v)} for Bytes`);
  if (v.length === 0) throw new GoError('empty hex string');
  if (!has0xPrefix(v)) throw new GoError('hex string without 0x prefix');
  const raw = v.slice(2);
  const even = raw.length - (raw.length % 2);
  for (let i = 0; i < even; i++) {
    if (nibble(raw.charCodeAt(i)) < 0) throw new GoError('invalid hex string');
  }
  if (raw.length % 2 === 1) {
    if (nibble(raw.charCodeAt(raw.length - 1)) < 0) throw new GoError('invalid hex string');
    throw new GoError('hex string of odd length');
  }
  return '0x' + raw.toLowerCase();
}

const SCALAR_PARSERS = {
  Long: parseLong,
  BigInt: parseBigInt,
  Bytes32: parseHash,
  Address: parseAddress,
  Bytes: parseBytes,
};

// Output helpers (hexutil.Uint64 / hexutil.Big encodings).
function hexNum(n) {
  return '0x' + n.toString(16);
}

// Go's encoding/json string escaping (HTML-safe: <, >, & and U+2028/9).
function goJSONString(s) {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => {
    return '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0');
  });
}

module.exports = {
  Int32,
  GoPanic,
  GoError,
  TimeoutSignal,
  goQuote,
  goTypeName,
  goFormatValue,
  deserializeIntLiteral,
  decodeUint64,
  parseLong,
  parseBigInt,
  parseHash,
  parseAddress,
  parseBytes,
  SCALAR_PARSERS,
  hexNum,
  goJSONString,
};
