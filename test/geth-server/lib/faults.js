'use strict';
// Fault rules: matching and response transformations, for /graphql and
// for JSON-RPC at "/".
//
// Rule: {match: {query: "<regex>", blocks: [a, b], operationName: "<name>",
//                method: "<regex>", path: "/" | "/graphql"},
//        fault: KIND, times: N, skip: N, ...params}
// Rules are tried in order; the first rule that matches (and still has
// applications left) wins. `query` is the GraphQL query text, or the raw
// body of a JSON-RPC request; `method` matches when any call of a JSON-RPC
// request has a matching method (never a GraphQL request). graphqlError
// applies to /graphql only, rpcError to JSON-RPC only.

const KINDS = new Set([
  'latency', 'status', 'hang', 'timeout200', 'malformed', 'truncated', 'reset',
  'graphqlError', 'oversize', 'deepNest', 'wrongTypes', 'missingFields', 'hugeNumbers', 'drop',
  'gzipBomb', 'badGzip', 'drip', 'rpcError',
]);
const GRAPHQL_ONLY = new Set(['graphqlError']);
const RPC_ONLY = new Set(['rpcError']);
const RPC_SHAPES = ['entry', 'single', 'array'];

function checkRegex(src, what) {
  try { new RegExp(src); } catch (e) { throw new Error(`${what} is not a valid regex: ${e.message}`); }
}

const LONG_FIELDS = new Set([
  'number', 'timestamp', 'gasUsed', 'gasLimit', 'transactionCount', 'nonce', 'index', 'gas',
  'status', 'cumulativeGasUsed', 'type', 'ommerCount', 'blobGasUsed', 'excessBlobGas',
  'startingBlock', 'currentBlock', 'highestBlock', 'validator', 'amount', 'estimateGas',
]);
const BIGINT_FIELDS = new Set([
  'value', 'gasPrice', 'maxFeePerGas', 'maxPriorityFeePerGas', 'maxFeePerBlobGas', 'effectiveTip',
  'effectiveGasPrice', 'blobGasPrice', 'baseFeePerGas', 'nextBaseFeePerGas', 'difficulty',
  'balance', 'r', 's', 'v', 'yParity', 'chainID',
]);
const QUANTITY_RE = /^0x(0|[1-9a-f][0-9a-f]*)$/;

function validateRule(r, i) {
  if (!r || typeof r !== 'object' || Array.isArray(r)) throw new Error(`rule #${i}: not an object`);
  if (!KINDS.has(r.fault)) throw new Error(`rule #${i}: unknown fault kind ${JSON.stringify(r.fault)} (one of ${Array.from(KINDS).join(', ')})`);
  const m = r.match || {};
  if (typeof m !== 'object' || Array.isArray(m)) throw new Error(`rule #${i}: match must be an object`);
  if (m.query !== undefined && typeof m.query !== 'string') throw new Error(`rule #${i}: match.query must be a string (regex)`);
  if (m.method !== undefined) {
    if (typeof m.method !== 'string') throw new Error(`rule #${i}: match.method must be a string (regex)`);
    checkRegex(m.method, `rule #${i}: match.method`);
  }
  if (m.path !== undefined && m.path !== '/' && m.path !== '/graphql') throw new Error(`rule #${i}: match.path must be "/" or "/graphql"`);
  if (m.blocks !== undefined) {
    if (!Array.isArray(m.blocks) || m.blocks.length !== 2 || !m.blocks.every((x) => typeof x === 'number')) {
      throw new Error(`rule #${i}: match.blocks must be [from, to]`);
    }
  }
  if (r.times !== undefined && !(Number.isInteger(r.times) && r.times >= 0)) throw new Error(`rule #${i}: times must be a non-negative integer`);
  if (r.fault === 'wrongTypes' && r.mode === 'set' && !Object.prototype.hasOwnProperty.call(r, 'value')) {
    throw new Error(`rule #${i}: wrongTypes with mode "set" needs a "value"`);
  }
  if (r.fault === 'gzipBomb' && r.mb !== undefined && !(typeof r.mb === 'number' && r.mb > 0 && r.mb <= 4096)) {
    throw new Error(`rule #${i}: gzipBomb mb must be a number in (0, 4096]`);
  }
  if (r.fault === 'status') {
    const st = r.status === undefined ? 503 : r.status;
    if (!Number.isInteger(st) || st < 100 || st > 599) throw new Error(`rule #${i}: bad status`);
  }
  if (r.fault === 'rpcError') {
    if (!Number.isInteger(r.code)) throw new Error(`rule #${i}: rpcError needs an integer "code"`);
    if (typeof r.message !== 'string') throw new Error(`rule #${i}: rpcError needs a string "message"`);
    if (r.shape !== undefined && !RPC_SHAPES.includes(r.shape)) throw new Error(`rule #${i}: rpcError shape must be one of ${RPC_SHAPES.join(', ')}`);
    if (r.http !== undefined && !(Number.isInteger(r.http) && r.http >= 100 && r.http <= 599)) throw new Error(`rule #${i}: rpcError http must be an HTTP status`);
    if (r.methods !== undefined) {
      if (typeof r.methods !== 'string') throw new Error(`rule #${i}: rpcError methods must be a string (regex)`);
      checkRegex(r.methods, `rule #${i}: rpcError methods`);
    }
  }
}

class FaultSet {
  constructor() {
    this.rules = [];
  }

  replace(rules) {
    if (!Array.isArray(rules)) throw new Error('fault rules must be a JSON array');
    rules.forEach(validateRule);
    this.rules = rules.map((r) => ({
      rule: r,
      re: r.match && r.match.query !== undefined ? new RegExp(r.match.query, r.match.queryFlags || '') : null,
      methodRe: r.match && r.match.method !== undefined ? new RegExp(r.match.method) : null,
      callsRe: r.fault === 'rpcError' && r.methods !== undefined ? new RegExp(r.methods) : null,
      matched: 0,
      applied: 0,
    }));
  }

  append(rules) {
    const cur = this.rules.map((x) => x.rule);
    const matched = this.rules.map((x) => [x.matched, x.applied]);
    this.replace(cur.concat(rules));
    matched.forEach((m, i) => { this.rules[i].matched = m[0]; this.rules[i].applied = m[1]; });
  }

  clear() { this.rules = []; }

  list() {
    return this.rules.map((x) => Object.assign({}, x.rule, { _matched: x.matched, _applied: x.applied }));
  }

  // info: {path: "/graphql" | "/", query, operationName, range: [lo, hi] |
  // null, methods: [name] (JSON-RPC only)}
  pick(info) {
    const rpc = info.path === '/';
    const anyMethod = (re) => Array.isArray(info.methods) && info.methods.some((n) => typeof n === 'string' && re.test(n));
    for (const x of this.rules) {
      const r = x.rule;
      const m = r.match || {};
      if (rpc ? GRAPHQL_ONLY.has(r.fault) : RPC_ONLY.has(r.fault)) continue;
      if (m.path !== undefined && m.path !== (rpc ? '/' : '/graphql')) continue;
      if (x.re && !x.re.test(info.query || '')) continue;
      if (m.operationName !== undefined && m.operationName !== (info.operationName || '')) continue;
      if (x.methodRe && !anyMethod(x.methodRe)) continue;
      if (x.callsRe && !anyMethod(x.callsRe)) continue;
      if (m.blocks) {
        if (!info.range) continue;
        const [a, b] = m.blocks;
        if (info.range[0] > b || info.range[1] < a) continue;
      }
      if (r.times !== undefined && x.applied >= r.times) continue;
      x.matched++;
      if (r.skip !== undefined && x.matched <= r.skip) continue;
      x.applied++;
      return r;
    }
    return null;
  }
}

// --- data transformations (on parsed responses) ---------------------------

function walk(value, fn, key, depth) {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = walk(value[i], fn, key, depth + 1);
    return fn(value, key, depth);
  }
  if (value && typeof value === 'object') {
    for (const k of Object.keys(value)) {
      const nv = walk(value[k], fn, k, depth + 1);
      if (nv === undefined) delete value[k]; else value[k] = nv;
    }
    return fn(value, key, depth);
  }
  return fn(value, key, depth);
}

function wrongTypes(resp, params, longKeys = LONG_FIELDS) {
  const only = Array.isArray(params.fields) ? new Set(params.fields) : null;
  const mode = params.mode || 'wrong';
  if (!resp.data) return resp;
  walk(resp.data, (v, key, depth) => {
    if (depth <= 1) return v; // keep data and its root fields
    if (only && !only.has(key)) return v;
    if (mode === 'set') {
      // every selected leaf (or every leaf when no fields are given) becomes
      // params.value, whatever its type: null, object, list, bool, float...
      if (v !== null && typeof v === 'object') return v;
      return JSON.parse(JSON.stringify(params.value));
    }
    if (mode === 'numbers') {
      // Geth < 1.12: Long as JSON numbers (BigInt stays hex)
      if (typeof v === 'string' && longKeys.has(key) && QUANTITY_RE.test(v)) {
        const n = parseInt(v, 16);
        if (Number.isSafeInteger(n)) return n;
      }
      return v;
    }
    if (typeof v === 'string') {
      if (QUANTITY_RE.test(v) && v.length <= 66) return v.length % 2 ? true : 12345;
      return 12345;
    }
    if (Array.isArray(v)) return { unexpected: 'object instead of list' };
    if (v && typeof v === 'object') return v;
    if (typeof v === 'number') return String(v);
    return v;
  }, null, 0);
  return resp;
}

function missingFields(resp, params) {
  if (!resp.data) return resp;
  const only = Array.isArray(params.fields) ? new Set(params.fields) : null;
  const visit = (v, inList) => {
    if (Array.isArray(v)) { v.forEach((e) => visit(e, true)); return; }
    if (!v || typeof v !== 'object') return;
    const keys = Object.keys(v);
    for (const k of keys) visit(v[k], false);
    if (only) {
      for (const k of keys) if (only.has(k)) delete v[k];
    } else if (inList && keys.length > 0) {
      delete v[keys[keys.length - 1]];
    }
  };
  for (const k of Object.keys(resp.data)) visit(resp.data[k], false);
  return resp;
}

function hugeNumbers(resp, params, keys = null) {
  if (!resp.data) return resp;
  const digits = params.digits || 80;
  const only = Array.isArray(params.fields) ? new Set(params.fields) : null;
  const huge = '0x' + 'f'.repeat(digits);
  walk(resp.data, (v, key) => {
    if (typeof v !== 'string' || !QUANTITY_RE.test(v)) return v;
    if (only ? only.has(key) : (keys ? keys.has(key) : (LONG_FIELDS.has(key) || BIGINT_FIELDS.has(key)))) return huge;
    return v;
  }, null, 0);
  return resp;
}

// --- the same on JSON-RPC answers -------------------------------------------
// A response's `result` plays the part of a GraphQL root field: an object
// or list result keeps its own type and its members change; a scalar result
// (eth_blockNumber, eth_getBalance, ...) changes itself, under the key
// "result". The results of a batch are a list (missingFields removes the
// last key of each, as of each block of blocks(from,to)).

// uint64 quantities (hexutil.Uint64 / Uint): JSON numbers in mode "numbers".
const RPC_LONG_KEYS = new Set([
  'number', 'timestamp', 'gasUsed', 'gasLimit', 'nonce', 'size', 'blockNumber', 'transactionIndex', 'logIndex',
  'gas', 'type', 'status', 'cumulativeGasUsed', 'blobGasUsed', 'excessBlobGas', 'blockTimestamp', 'index',
  'validatorIndex', 'amount', 'result',
]);
const RPC_QUANTITY_KEYS = new Set([...RPC_LONG_KEYS, 'value', 'gasPrice', 'maxFeePerGas', 'maxPriorityFeePerGas',
  'maxFeePerBlobGas', 'effectiveGasPrice', 'blobGasPrice', 'baseFeePerGas', 'difficulty', 'chainId', 'v', 'r', 's', 'yParity']);

// answer: the parsed body (one response object or a batch array); changed in place.
function rpcTransform(kind, answer, params) {
  const list = (Array.isArray(answer) ? answer : [answer]).filter((r) => r && typeof r === 'object' && Object.prototype.hasOwnProperty.call(r, 'result'));
  if (kind === 'missingFields') {
    missingFields({ data: { r: Array.isArray(answer) ? list.map((x) => x.result) : (list[0] ? list[0].result : null) } }, params);
    return answer;
  }
  for (const x of list) {
    const scalar = x.result === null || typeof x.result !== 'object';
    const holder = scalar ? { data: { x: { result: x.result } } } : { data: { result: x.result } };
    if (kind === 'wrongTypes') wrongTypes(holder, params, RPC_LONG_KEYS);
    else hugeNumbers(holder, params, RPC_QUANTITY_KEYS);
    x.result = scalar ? holder.data.x.result : holder.data.result;
  }
  return answer;
}

function malformedBody(body, params) {
  if (typeof params.body === 'string') return params.body;
  const half = Math.floor(body.length / 2);
  return body.slice(0, half) + '\u0001<not json>' + body.slice(half);
}

// `wrap` ({head, tail}) replaces the GraphQL envelope {"data":{"<root>": ... }}.
function deepNestBody(rootKey, params, wrap) {
  const depth = params.depth || 100000;
  const open = params.shape === 'object' ? '{"a":' : '[';
  const close = params.shape === 'object' ? '}' : ']';
  const inner = params.shape === 'object' ? '1' : '';
  const head = wrap ? wrap.head : '{"data":{' + JSON.stringify(rootKey || 'blocks') + ':';
  const tail = wrap ? wrap.tail : '}}';
  return head + open.repeat(depth) + inner + close.repeat(depth) + tail;
}

// A gzip member that inflates to about `mb` MiB: a valid JSON answer whose
// "blocks" list is padded with blanks.  The compressed form is about 1/1000
// of that, so a client that inflates without a limit runs out of memory.
// Cached per size: deflating 1 GiB of blanks takes a few seconds.
const bombCache = new Map();
function gzipBombBody(rootKey, params, wrap) {
  const mb = params.mb || 256;
  const key = wrap ? `${wrap.head}:${wrap.tail}:${mb}` : `${rootKey}:${mb}`;
  if (bombCache.has(key)) return bombCache.get(key);
  const zlib = require('zlib');
  const gz = zlib.createGzip({ level: 9 });
  const out = [];
  gz.on('data', (c) => out.push(c));
  const head = wrap ? wrap.head + '[' : '{"data":{' + JSON.stringify(rootKey || 'blocks') + ':[';
  const tail = wrap ? ']' + wrap.tail : ']}}';
  gz.write(head);
  const block = Buffer.alloc(1024 * 1024, 0x20);
  let left = Math.floor(mb * 1024 * 1024) - head.length - tail.length;
  while (left > 0) {
    const n = Math.min(left, block.length);
    gz.write(n === block.length ? block : block.subarray(0, n));
    left -= n;
  }
  gz.write(tail);
  gz.end();
  const done = new Promise((resolve, reject) => {
    gz.on('end', () => resolve(Buffer.concat(out)));
    gz.on('error', reject);
  });
  bombCache.set(key, done);
  return done;
}

module.exports = {
  rpcTransform,
  RPC_QUANTITY_KEYS,
  gzipBombBody,
  FaultSet,
  KINDS,
  wrongTypes,
  missingFields,
  hugeNumbers,
  malformedBody,
  deepNestBody,
  LONG_FIELDS,
  BIGINT_FIELDS,
};
