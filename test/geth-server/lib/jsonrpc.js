'use strict';
// JSON-RPC 2.0 at "/" (Geth serves eth_* there with --http): envelopes,
// batches and their limits as rpc/handler.go and rpc/json.go of Geth
// v1.17.5 do them, or as the selected node profile does (lib/rpc-limits.js).
// Methods: lib/rpc-methods.js; argument decoding: lib/rpc-args.js; result
// shapes: lib/rpc-shapes.js.
//
// handleJsonRpc(src, settings, bodyText, opts) -> {status, headers, text,
// rpcErrors}; analyze(bodyText) and requestRange() describe a request for
// the log and for fault matching.

const { goJSONString, GoError, TimeoutSignal } = require('./geth-values');
const { InvalidParams } = require('./rpc-args');
const L = require('./rpc-limits');
const { methodFor, resolveTag, METHODS } = require('./rpc-methods');

const hasOwn = (o, k) => Object.prototype.hasOwnProperty.call(o, k);
const isObj = (m) => m !== null && typeof m === 'object' && !Array.isArray(m);

// The request as the log shows it: {parsed, ok, batch, calls: [{method,
// params, id}], messages}. Not JSON: ok false, calls [].
function analyze(bodyText) {
  let msg;
  try {
    msg = JSON.parse(bodyText);
  } catch (e) {
    return { ok: false, batch: false, calls: [], messages: [] };
  }
  const batch = Array.isArray(msg);
  const messages = batch ? msg : [msg];
  const calls = messages.map((m) => (isObj(m)
    ? { method: typeof m.method === 'string' ? m.method : null, params: hasOwn(m, 'params') ? m.params : null, id: hasOwn(m, 'id') ? m.id : null }
    : { method: null, params: null, id: null }));
  return { ok: true, parsed: msg, batch, calls, messages };
}

// Smallest and largest block number the calls name ([lo, hi] or null):
// block numbers and tags (latest/pending = the head), eth_getLogs'
// fromBlock/toBlock (absent = latest) or blockHash, and the blocks of known
// block and transaction hashes.
function requestRange(src, s, messages) {
  const head = src.head();
  let lo = Infinity;
  let hi = -Infinity;
  const note = (n) => {
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) return;
    lo = Math.min(lo, n);
    hi = Math.max(hi, n);
  };
  const ctx = { src, s };
  const num = (v) => {
    if (v === undefined || v === null) return head;
    if (typeof v === 'string') {
      switch (v) {
        case 'latest': case 'pending': return head;
        case 'earliest': return resolveTag(ctx, -5);
        case 'finalized': return src.finalized();
        case 'safe': return src.safe();
        default: break;
      }
      if (/^0x(0|[1-9a-fA-F][0-9a-fA-F]*)$/.test(v)) return parseInt(v, 16);
      if (/^0[xX][0-9a-fA-F]{64}$/.test(v)) return byHash(v);
    }
    if (isObj(v)) {
      if (typeof v.blockHash === 'string') return byHash(v.blockHash);
      if (v.blockNumber !== undefined) return num(v.blockNumber);
    }
    return null;
  };
  const byHash = (h) => {
    try {
      const b = src.blockByHash(String(h).toLowerCase());
      return b ? b.number : null;
    } catch (e) { return null; }
  };
  const byTx = (h) => {
    try { return typeof h === 'string' ? src.blockOfTx(h.toLowerCase()) : null; } catch (e) { return null; }
  };
  for (const m of messages) {
    if (!isObj(m) || typeof m.method !== 'string') continue;
    const p = Array.isArray(m.params) ? m.params : [];
    switch (m.method) {
      case 'eth_getBlockByNumber':
      case 'eth_getBlockReceipts':
      case 'eth_getBlockTransactionCountByNumber':
      case 'eth_getHeaderByNumber':
        if (p.length > 0) note(num(p[0]));
        break;
      case 'eth_getBlockByHash':
      case 'eth_getHeaderByHash':
      case 'eth_getBlockTransactionCountByHash':
        note(byHash(p[0]));
        break;
      case 'eth_getTransactionByHash':
      case 'eth_getTransactionReceipt':
        note(byTx(p[0]));
        break;
      case 'eth_getBalance':
      case 'eth_getTransactionCount':
      case 'eth_getCode':
        note(num(p[1]));
        break;
      case 'eth_getLogs': {
        const f = isObj(p[0]) ? p[0] : null;
        if (!f) break;
        if (typeof f.blockHash === 'string') note(byHash(f.blockHash));
        else {
          note(num(f.fromBlock));
          note(num(f.toBlock));
        }
        break;
      }
      default:
        break;
    }
  }
  return lo <= hi ? [lo, hi] : null;
}

// --- writing answers ---------------------------------------------------------

function errorObject(err) {
  const o = { code: err.code, message: err.message };
  if (err.data !== undefined) o.data = err.data;
  if (!err.keyOrder) return o;
  const r = {};
  for (const k of err.keyOrder) if (hasOwn(o, k)) r[k] = o[k];
  return r;
}

// One response text: key order of the family; Go families escape the
// message like encoding/json ('>' -> \u003e).
function envelope(fam, id, key, valueText) {
  const idText = JSON.stringify(id === undefined ? null : id);
  return L.errorFirst(fam)
    ? `{"jsonrpc":"2.0","${key}":${valueText},"id":${idText}}`
    : `{"jsonrpc":"2.0","id":${idText},"${key}":${valueText}}`;
}

function errorText(fam, err) {
  let t = JSON.stringify(errorObject(err));
  if (L.isGoFamily(fam)) t = t.replace(/"message":("(?:[^"\\]|\\.)*")/, (m, str) => '"message":' + goJSONString(JSON.parse(str)));
  return t;
}

// A thrown value -> RpcError (TimeoutSignal passes through).
function toRpcError(e) {
  if (e instanceof L.RpcError) return e;
  if (e instanceof InvalidParams) return new L.RpcError(-32602, e.message);
  if (e instanceof TimeoutSignal) throw e;
  if (e instanceof GoError) return new L.RpcError(-32000, e.message);
  return new L.RpcError(-32000, e && e.message ? e.message : String(e));
}

const TIMEOUT = () => new L.RpcError(-32002, 'request timed out'); // rpc/errors.go errcodeTimeout

// Run one call. -> {text | null (notification), error: RpcError|null, bytes}
function callOne(ctx, m, override) {
  const fam = ctx.s.family;
  const hasId = isObj(m) && hasOwn(m, 'id');
  const id = hasId ? m.id : null;
  const fail = (err) => {
    const et = errorText(fam, err);
    return { text: envelope(fam, id, 'error', et), error: err, bytes: et.length };
  };
  if (!isObj(m) || m.jsonrpc !== '2.0' || typeof m.method !== 'string') {
    return fail(new L.RpcError(-32600, 'invalid request'));
  }
  if (!hasId) return { text: null, error: null, bytes: 0 }; // a notification: no answer
  const forced = override ? override(m) : null;
  if (forced) return fail(forced);
  const fn = methodFor(ctx.s, m.method);
  if (!fn) return fail(L.methodNotFound(fam, m.method));
  let result;
  try {
    result = fn(ctx, m.params);
  } catch (e) {
    return fail(toRpcError(e));
  }
  let text = JSON.stringify(result);
  if (text === undefined) text = 'null';
  return { text: envelope(fam, id, 'result', text), error: null, bytes: text.length };
}

const wholeBody = (fam, id, err) => envelope(fam, id, 'error', errorText(fam, err));

// opts: {deadline, override(message) -> RpcError|null, analysis (of
// analyze()), responseCap (replaces the family's batch response cap)}
function handleJsonRpc(src, settings, bodyText, opts = {}) {
  const s = settings || L.resolveSettings({});
  const fam = s.family;
  const ctx = { src, s, deadline: opts.deadline || 0 };
  const a = opts.analysis || analyze(bodyText);
  const out = (status, text, rpcErrors, headers) => ({ status, text, rpcErrors, headers: headers || {} });
  if (!a.ok) return out(200, wholeBody(fam, null, new L.RpcError(-32700, 'parse error')), 1);
  const nCalls = a.messages.filter((m) => isObj(m) && hasOwn(m, 'id')).length;

  if (!a.batch) {
    let r;
    try {
      r = callOne(ctx, a.parsed, opts.override);
    } catch (e) {
      if (!(e instanceof TimeoutSignal)) throw e;
      r = { text: wholeBody(fam, a.parsed.id, TIMEOUT()), error: TIMEOUT() };
    }
    if (r.text === null) return out(200, '', 0);
    return out(r.error ? L.singleCallStatus(fam, r.error) : 200, r.text, r.error ? 1 : 0);
  }

  const msgs = a.parsed;
  if (msgs.length === 0) return out(200, wholeBody(fam, null, new L.RpcError(-32600, 'empty batch')), 1);
  if (s.maxBatch !== null && msgs.length > s.maxBatch) {
    const first = msgs.find((m) => isObj(m) && hasOwn(m, 'id') && typeof m.method === 'string');
    const r = L.batchTooLarge(fam, msgs.length, s.maxBatch, first ? first.id : null);
    let text = JSON.stringify(r.body);
    if (L.isGoFamily(fam)) text = text.replace(/"message":("(?:[^"\\]|\\.)*")/, (m, str) => '"message":' + goJSONString(JSON.parse(str)));
    return out(r.status, text, Math.max(1, nCalls));
  }
  const cap = opts.responseCap !== undefined ? opts.responseCap : L.responseCap(fam); // tests shrink it
  const parts = [];
  let errors = 0;
  let bytes = 0;
  for (let i = 0; i < msgs.length; i++) {
    let r;
    try {
      r = callOne(ctx, msgs[i], opts.override);
    } catch (e) {
      if (!(e instanceof TimeoutSignal)) throw e;
      // Geth's batch timer: every call not yet answered gets the time-out
      for (let k = i; k < msgs.length; k++) {
        const m = msgs[k];
        if (!isObj(m) || !hasOwn(m, 'id')) continue;
        parts.push(wholeBody(fam, m.id, TIMEOUT()));
        errors++;
      }
      break;
    }
    if (r.text !== null) {
      parts.push(r.text);
      if (r.error) errors++;
    }
    bytes += r.bytes;
    if (cap && bytes > cap.max) {
      if (cap.whole) return out(200, envelope(fam, null, 'error', JSON.stringify(cap.whole)), Math.max(1, nCalls));
      // the calls not yet answered get the per-entry error under their id
      for (let k = i + 1; k < msgs.length; k++) {
        const m = msgs[k];
        if (!isObj(m) || !hasOwn(m, 'id')) continue;
        parts.push(wholeBody(fam, m.id, cap.perEntry));
        errors++;
      }
      break;
    }
  }
  return out(200, parts.length ? '[' + parts.join(',') + ']' : '', errors);
}

module.exports = {
  handleJsonRpc,
  analyze,
  requestRange,
  wholeBody,
  METHODS,
};
