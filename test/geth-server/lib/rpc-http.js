'use strict';
// HTTP handling of JSON-RPC at "/" (Geth's rpc/http.go ServeHTTP +
// validateRequest), with the profile's rate limit, the fault rules and the
// request log (fields rpc, batch, range, rpcErrors). Part of GethServer
// (lib/http-server.js), which provides sending, body reading and the log.

const http = require('http');
const faults = require('./faults');
const L = require('./rpc-limits');
const { handleJsonRpc, analyze, requestRange, wholeBody } = require('./jsonrpc');

const HTTP_BODY_LIMIT = 5 * 1024 * 1024; // node/defaults.go HTTPBodyLimit
const CONTENT_TYPES = ['application/json', 'application/json-rpc', 'application/jsonrequest'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const isObj = (m) => m !== null && typeof m === 'object' && !Array.isArray(m);

// Read and drop a request body; give up (close) past `max` bytes.
function drain(req, max) {
  return new Promise((resolve) => {
    let n = 0;
    req.on('data', (c) => {
      n += c.length;
      if (n > max) { req.destroy(); resolve(); }
    });
    req.on('end', resolve);
    req.on('error', resolve);
    req.on('close', resolve);
  });
}

function mediaType(h) {
  if (!h) return '';
  return String(h).split(';')[0].trim().toLowerCase();
}

// The JSON-RPC envelope around a made-up result (gzipBomb, deepNest): the
// first call's id; a batch gets a one-element array.
function resultWrap(a) {
  const first = a.messages.find((m) => isObj(m) && Object.prototype.hasOwnProperty.call(m, 'id'));
  const id = JSON.stringify(first ? first.id : null);
  const head = `{"jsonrpc":"2.0","id":${id},"result":`;
  return a.batch ? { head: '[' + head, tail: '}]' } : { head, tail: '}' };
}

// rpcError rule -> what the request answers (before anything runs).
function rpcErrorAnswer(server, a, rule) {
  const err = new L.RpcError(rule.code, rule.message, rule.data === undefined ? {} : { data: rule.data });
  const fam = server.rpcSettings.family;
  const status = rule.http || 200;
  const shape = rule.shape || 'entry';
  const calls = a.messages.filter((m) => isObj(m) && Object.prototype.hasOwnProperty.call(m, 'id')).length;
  if (shape === 'single') return { status, text: wholeBody(fam, null, err), rpcErrors: Math.max(1, calls) };
  if (shape === 'array') {
    const first = a.messages.find((m) => isObj(m) && Object.prototype.hasOwnProperty.call(m, 'id'));
    return { status, text: '[' + wholeBody(fam, first ? first.id : null, err) + ']', rpcErrors: Math.max(1, calls) };
  }
  return null; // entry: per call, while the request runs
}

async function handleRpc(server, req, res, path) {
  const e = server.newEntry(req, path);
  e.rpc = [];
  e.batch = false;
  e.rpcErrors = 0;
  const m = req.method;
  if (!server.hostAllowed(req.headers.host)) return server.finish(e, 403, server.sendPlain(res, 403, 'invalid host specified'));
  // "Permit dumb empty requests for remote health-checks (AWS)"
  const len = req.headers['content-length'] === undefined ? null : Number(req.headers['content-length']);
  if (m === 'GET' && !len && !req.headers['transfer-encoding'] && !req.url.includes('?')) {
    res.writeHead(200, { 'Content-Length': 0 });
    res.end();
    return server.finish(e, 200, 0);
  }
  if (m === 'PUT' || m === 'DELETE') return server.finish(e, 405, server.sendPlain(res, 405, 'method not allowed'));
  if (len !== null && len > HTTP_BODY_LIMIT) {
    // Geth answers at once; the body is read first here (up to 64 MiB) so
    // that a client still sending it reads the answer instead of EPIPE
    await drain(req, 64 * 1024 * 1024);
    if (res.destroyed) return server.finish(e, null, 0, { aborted: true });
    return server.finish(e, 413, server.sendPlain(res, 413, `content length too large (${len}>${HTTP_BODY_LIMIT})`, { Connection: 'close' }));
  }
  if (m !== 'OPTIONS' && !CONTENT_TYPES.includes(mediaType(req.headers['content-type']))) {
    return server.finish(e, 415, server.sendPlain(res, 415, 'invalid content type, only application/json is supported'));
  }
  let body;
  try {
    body = await server.readBody(req);
  } catch (err) {
    if (err.tooLarge) return server.finish(e, 413, server.sendPlain(res, 413, err.message, { Connection: 'close' }));
    return server.finish(e, null, 0, { aborted: true });
  }
  if (m === 'OPTIONS') {
    res.writeHead(200, { 'Content-Length': 0 });
    res.end();
    return server.finish(e, 200, 0);
  }
  e.query = body.length > 10000 ? body.slice(0, 10000) : body;
  const s = server.rpcSettings;
  const a = analyze(body);
  e.rpc = a.calls;
  e.batch = a.batch;
  e.range = a.ok ? requestRange(server.source, s, a.messages) : null;

  let aborted = false;
  res.on('close', () => {
    if (!res.writableFinished) aborted = true;
    if (!e._done && aborted) server.finish(e, null, 0, { aborted: true });
  });
  const send = async (status, text, rpcErrors, extra = {}) => {
    e.rpcErrors = rpcErrors;
    if (aborted) return server.finish(e, null, 0, { aborted: true });
    const headers = extra.headers || {};
    const bytes = await server.sendBody(req, res, status, text, { headers, identity: extra.identity });
    return server.finish(e, status, bytes, { jsonBytes: Buffer.byteLength(text) });
  };

  // a provider's rate limit: every Nth request to "/" is turned away
  if (s.rateLimit) {
    server.rpcRequests++;
    if (server.rpcRequests % s.rateLimit.every === 0) {
      e.fault = 'rateLimit';
      const first = a.ok && !a.batch && isObj(a.parsed) ? a.parsed.id : null;
      const r = L.rateLimited(s.rateLimit, a.batch, first === undefined ? null : first);
      const calls = a.messages.filter((x) => isObj(x) && Object.prototype.hasOwnProperty.call(x, 'id')).length;
      return send(r.status, r.text, Math.max(1, calls), { headers: r.headers });
    }
  }

  const rule = server.faults.pick({ path: '/', query: body, methods: a.calls.map((c) => c.method), range: e.range });
  if (rule) e.fault = rule.fault;
  const kind = rule ? rule.fault : null;
  const opts = { analysis: a, deadline: server.writeTimeoutMs > 0 ? Date.now() + server.writeTimeoutMs - 100 : 0 };
  switch (kind) {
    case 'drop':
      server.finish(e, 0, 0);
      req.socket.destroy();
      return undefined;
    case 'hang':
      return undefined;
    case 'status': {
      const st = rule.status || 503;
      const hdr = {};
      if (rule.retryAfter !== undefined) hdr['Retry-After'] = String(rule.retryAfter);
      const msg = typeof rule.body === 'string' ? rule.body : `${st} ${http.STATUS_CODES[st] || 'Error'}`;
      return server.finish(e, st, server.sendPlain(res, st, msg, hdr));
    }
    case 'latency':
      await sleep(rule.ms || 0);
      if (aborted) return undefined;
      break;
    case 'timeout200': {
      // Geth's request timer: every call of the request answers -32002
      if (rule.ms) await sleep(rule.ms);
      if (aborted) return undefined;
      opts.override = () => new L.RpcError(-32002, 'request timed out');
      const r = handleJsonRpc(server.source, s, body, opts);
      return send(r.status, r.text, r.rpcErrors);
    }
    case 'rpcError': {
      const whole = rpcErrorAnswer(server, a, rule);
      if (whole) return send(whole.status, whole.text, whole.rpcErrors);
      const re = rule.methods !== undefined ? new RegExp(rule.methods) : null;
      opts.override = (msg) => (!re || re.test(msg.method)
        ? new L.RpcError(rule.code, rule.message, rule.data === undefined ? {} : { data: rule.data })
        : null);
      const r = handleJsonRpc(server.source, s, body, opts);
      return send(rule.http || 200, r.text, r.rpcErrors);
    }
    case 'gzipBomb': {
      const gz = await faults.gzipBombBody(null, rule, resultWrap(a));
      if (aborted || res.destroyed) return server.finish(e, null, 0, { aborted: true });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip', 'Content-Length': gz.length });
      res.end(gz);
      return server.finish(e, 200, gz.length);
    }
    case 'badGzip': {
      const bad = Buffer.from(typeof rule.body === 'string' ? rule.body : '\x1f\x8b\x08\x00garbage that does not inflate');
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip', 'Content-Length': bad.length });
      res.end(bad);
      return server.finish(e, 200, bad.length);
    }
    case 'deepNest':
      return send(200, faults.deepNestBody(null, rule, resultWrap(a)), 0);
    default:
      break;
  }

  const r = handleJsonRpc(server.source, s, body, opts);
  let { status, text } = r;
  e.rpcErrors = r.rpcErrors;
  switch (text === '' ? null : kind) { // nothing to break when nothing is answered (notifications)
    case 'wrongTypes':
    case 'missingFields':
    case 'hugeNumbers':
      if (text) text = JSON.stringify(faults.rpcTransform(kind, JSON.parse(text), rule));
      break;
    case 'malformed':
      text = faults.malformedBody(text, rule);
      status = rule.status || 200;
      break;
    case 'oversize':
      return server.finish(e, status, await server.sendOversize(req, res, status, text, rule));
    case 'drip':
      return server.finish(e, status, await server.sendDrip(req, res, status, text, rule));
    case 'truncated':
    case 'reset':
      return server.finish(e, status, await server.sendBroken(req, res, status, text, rule, kind));
    default:
      break;
  }
  return send(status, text, r.rpcErrors);
}

// GET / POST / DELETE /control/rpc
function controlRpc(server, method, body) {
  if (method === 'GET') return L.publicSettings(server.rpcSettings);
  if (method === 'DELETE') server.setRpcSettings({});
  else server.setRpcSettings(body);
  return L.publicSettings(server.rpcSettings);
}

module.exports = { handleRpc, controlRpc, HTTP_BODY_LIMIT };
