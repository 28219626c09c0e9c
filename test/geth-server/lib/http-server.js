'use strict';
// HTTP front end: Geth's /graphql handler (graphql/service.go + the node's
// vhost and gzip handlers), the test control API under /control/, and
// JSON-RPC at "/" (lib/rpc-http.js).

const http = require('http');
const zlib = require('zlib');
const fs = require('fs');
const net = require('net');
const { Kind, getNamedType, isNonNullType, isObjectType } = require('graphql');

const { loadSchema, DocumentCache, executeRequest, serializeResponse, deserialize } = require('./gql');
const { TimeoutSignal, parseLong, parseHash } = require('./geth-values');
const { makeResolvers } = require('./resolvers');
const faults = require('./faults');
const { handleRpc, controlRpc } = require('./rpc-http');
const { resolveSettings } = require('./rpc-limits');

const MAX_REQUEST_BODY = 5 * 1024 * 1024; // graphql/service.go maxRequestBodySize
const MAX_DRAIN = 64 * 1024 * 1024;
const CHUNKING_THRESHOLD = 2048; // Go's net/http bufferBeforeChunkingSize
const STREAM_THRESHOLD = 8 * 1024 * 1024; // answers above this are streamed piecewise
const STREAM_BATCH = 1024 * 1024;
const TIMEOUT_BODY = '{"errors":[{"message":"request timed out"}]}';
const GO_PARAMS_TYPE = 'struct { Query string "json:\\"query\\""; OperationName string "json:\\"operationName\\""; Variables map[string]interface {} "json:\\"variables\\"" }';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function gzipAsync(buf) {
  return new Promise((resolve, reject) => zlib.gzip(buf, (err, out) => (err ? reject(err) : resolve(out))));
}

function jsonKind(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'object') return 'object';
  if (typeof v === 'boolean') return 'bool';
  return typeof v; // number, string
}

function goQuoteChar(c) {
  if (c === "'") return "'\\''";
  if (c === '"') return "'\"'";
  const q = JSON.stringify(c);
  return "'" + q.slice(1, -1) + "'";
}

// Syntax check with the error messages of Go's encoding/json scanner.
// Returns the index after the first value; throws Error(goMessage).
function goScanValue(s, i) {
  const isWS = (c) => c === ' ' || c === '\t' || c === '\n' || c === '\r';
  const eof = () => { throw new Error('unexpected EOF'); };
  const bad = (c, ctx) => { throw new Error(`invalid character ${goQuoteChar(c)} ${ctx}`); };
  const ws = () => { while (i < s.length && isWS(s[i])) i++; };
  const str = () => {
    i++;
    for (;;) {
      if (i >= s.length) eof();
      const c = s[i];
      if (c === '"') { i++; return; }
      if (c < ' ') bad(c, 'in string literal');
      if (c === '\\') {
        i++;
        if (i >= s.length) eof();
        const e = s[i];
        if (e === 'u') {
          for (let k = 1; k <= 4; k++) {
            if (i + k >= s.length) eof();
            if (!/[0-9a-fA-F]/.test(s[i + k])) bad(s[i + k], 'in \\u hexadecimal character escape');
          }
          i += 5;
          continue;
        }
        if ('"\\/bfnrt'.indexOf(e) < 0) bad(e, 'in string escape code');
      }
      i++;
    }
  };
  const digits = () => { while (i < s.length && s[i] >= '0' && s[i] <= '9') i++; };
  const num = () => {
    if (s[i] === '-') {
      i++;
      if (i >= s.length) eof();
      if (!(s[i] >= '0' && s[i] <= '9')) bad(s[i], 'in numeric literal');
    }
    if (s[i] === '0') i++; else digits();
    if (s[i] === '.') {
      i++;
      if (i >= s.length) eof();
      if (!(s[i] >= '0' && s[i] <= '9')) bad(s[i], 'after decimal point in numeric literal');
      digits();
    }
    if (s[i] === 'e' || s[i] === 'E') {
      i++;
      if (s[i] === '+' || s[i] === '-') i++;
      if (i >= s.length) eof();
      if (!(s[i] >= '0' && s[i] <= '9')) bad(s[i], 'in exponent of numeric literal');
      digits();
    }
  };
  const lit = (word) => {
    for (let k = 0; k < word.length; k++) {
      if (i + k >= s.length) eof();
      if (s[i + k] !== word[k]) bad(s[i + k], `in literal ${word} (expecting ${goQuoteChar(word[k])})`);
    }
    i += word.length;
  };
  const value = () => {
    ws();
    if (i >= s.length) eof();
    const c = s[i];
    if (c === '{') {
      i++;
      ws();
      if (i >= s.length) eof();
      if (s[i] === '}') { i++; return; }
      for (;;) {
        ws();
        if (i >= s.length) eof();
        if (s[i] !== '"') bad(s[i], 'looking for beginning of object key string');
        str();
        ws();
        if (i >= s.length) eof();
        if (s[i] !== ':') bad(s[i], 'after object key');
        i++;
        value();
        ws();
        if (i >= s.length) eof();
        if (s[i] === ',') { i++; continue; }
        if (s[i] === '}') { i++; return; }
        bad(s[i], 'after object key:value pair');
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (i >= s.length) eof();
      if (s[i] === ']') { i++; return; }
      for (;;) {
        value();
        ws();
        if (i >= s.length) eof();
        if (s[i] === ',') { i++; continue; }
        if (s[i] === ']') { i++; return; }
        bad(s[i], 'after array element');
      }
    }
    if (c === '"') { str(); return; }
    if (c === '-' || (c >= '0' && c <= '9')) { num(); return; }
    if (c === 't') { lit('true'); return; }
    if (c === 'f') { lit('false'); return; }
    if (c === 'n') { lit('null'); return; }
    bad(c, 'looking for beginning of value');
  };
  value();
  return i;
}

// json.Decoder semantics of Geth's handler (decode one value, then require
// EOF), with Go's error messages.
function decodeParams(text) {
  if (text.trim() === '') throw new Error('EOF');
  const end = goScanValue(text, 0);
  let rest = end;
  while (rest < text.length && ' \t\n\r'.includes(text[rest])) rest++;
  if (rest < text.length) {
    goScanValue(text, rest); // a syntax error in the trailing value wins
    throw new Error('unexpected content after JSON value');
  }
  const v = JSON.parse(text);
  const params = { query: '', operationName: '', variables: null };
  if (v === null) return params;
  if (typeof v !== 'object' || Array.isArray(v)) {
    throw new Error(`json: cannot unmarshal ${jsonKind(v)} into Go value of type ${GO_PARAMS_TYPE}`);
  }
  const pick = (name) => {
    if (Object.prototype.hasOwnProperty.call(v, name)) return { found: true, val: v[name] };
    const k = Object.keys(v).find((x) => x.toLowerCase() === name.toLowerCase());
    return k === undefined ? { found: false } : { found: true, val: v[k] };
  };
  for (const [name, key] of [['query', 'query'], ['operationName', 'operationName']]) {
    const p = pick(name);
    if (!p.found || p.val === null) continue;
    if (typeof p.val !== 'string') throw new Error(`json: cannot unmarshal ${jsonKind(p.val)} into Go struct field .${name} of type string`);
    params[key] = p.val;
  }
  const vp = pick('variables');
  if (vp.found && vp.val !== null) {
    if (typeof vp.val !== 'object' || Array.isArray(vp.val)) {
      throw new Error(`json: cannot unmarshal ${jsonKind(vp.val)} into Go struct field .variables of type map[string]interface {}`);
    }
    params.variables = vp.val;
  }
  return params;
}

function findOperation(doc, operationName) {
  const ops = doc.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
  if (!operationName) return ops.length === 1 ? ops[0] : null;
  return ops.find((o) => o.name && o.name.value === operationName) || null;
}

function rootFields(doc, selections, out, seen = new Set()) {
  for (const s of selections) {
    if (s.kind === Kind.FIELD) out.push(s);
    else if (s.kind === Kind.INLINE_FRAGMENT) rootFields(doc, s.selectionSet.selections, out, seen);
    else if (s.kind === Kind.FRAGMENT_SPREAD && !seen.has(s.name.value)) {
      seen.add(s.name.value);
      const f = doc.definitions.find((d) => d.kind === Kind.FRAGMENT_DEFINITION && d.name.value === s.name.value);
      if (f) rootFields(doc, f.selectionSet.selections, out, seen);
    }
  }
  return out;
}

// The block range a request touches, for fault matching: blocks(from,to),
// block(number|hash), logs(filter), transaction(hash). null when none.
function requestedRange(doc, operationName, variables, source) {
  const op = doc && findOperation(doc, operationName);
  if (!op || op.operation !== 'query') return null;
  const vars = variables || {};
  const head = source.head();
  let lo = Infinity;
  let hi = -Infinity;
  const note = (a, b) => {
    if (!Number.isFinite(a) || !Number.isFinite(b)) return;
    lo = Math.min(lo, a, b);
    hi = Math.max(hi, a, b);
  };
  const argVal = (field, name) => {
    const a = (field.arguments || []).find((x) => x.name.value === name);
    if (!a) return undefined;
    try { return deserialize(a.value, vars); } catch (e) { return undefined; }
  };
  const asLong = (v) => {
    if (v === undefined || v === null) return null;
    try { return parseLong(v); } catch (e) { return undefined; }
  };
  for (const f of rootFields(doc, op.selectionSet.selections, [])) {
    switch (f.name.value) {
      case 'blocks': {
        const from = asLong(argVal(f, 'from'));
        const to = asLong(argVal(f, 'to'));
        if (typeof from === 'number' && to !== undefined) note(from, to === null ? head : Math.min(to, Math.max(head, from)));
        break;
      }
      case 'block': {
        const n = asLong(argVal(f, 'number'));
        const h = argVal(f, 'hash');
        if (typeof n === 'number') note(n, n);
        else if (h !== undefined && h !== null) {
          try {
            const b = source.blockByHash(parseHash(h));
            if (b) note(b.number, b.number);
          } catch (e) { /* ignore */ }
        } else if (n === null) note(head, head);
        break;
      }
      case 'logs': {
        const fv = argVal(f, 'filter');
        if (fv && typeof fv === 'object' && !Array.isArray(fv)) {
          const from = asLong(fv.fromBlock);
          const to = asLong(fv.toBlock);
          if (from !== undefined && to !== undefined) note(from === null ? head : from, to === null ? head : to);
        }
        break;
      }
      case 'transaction': {
        const h = argVal(f, 'hash');
        try {
          const n = source.blockOfTx(parseHash(h));
          if (typeof n === 'number') note(n, n);
        } catch (e) { /* ignore */ }
        break;
      }
      default:
        break;
    }
  }
  return lo <= hi ? [lo, hi] : null;
}

// First nullable nested field of the operation (the natural place for a
// resolver error that leaves partial data), else the first root field.
function pickFailField(schema, doc, operationName) {
  const op = doc && findOperation(doc, operationName);
  if (!op) return null;
  const rootType = op.operation === 'mutation' ? schema.getMutationType() : schema.getQueryType();
  const roots = rootFields(doc, op.selectionSet.selections, []);
  const dfs = (sels, type, depth) => {
    for (const f of rootFields(doc, sels, [])) {
      const def = type.getFields()[f.name.value];
      if (!def) continue;
      if (depth >= 2 && !isNonNullType(def.type)) return f.name.value;
      const named = getNamedType(def.type);
      if (f.selectionSet && isObjectType(named)) {
        const r = dfs(f.selectionSet.selections, named, depth + 1);
        if (r) return r;
      }
    }
    return null;
  };
  return dfs(op.selectionSet.selections, rootType, 1) || (roots[0] ? roots[0].name.value : null);
}

// The response key of the operation's first root field ("blocks" when
// there is none), for answers made up without running the query.
function rootKeyOf(compiled, params) {
  const op = compiled.doc && findOperation(compiled.doc, params.operationName);
  if (op) {
    const rf = rootFields(compiled.doc, op.selectionSet.selections, []);
    if (rf[0]) return rf[0].alias ? rf[0].alias.value : rf[0].name.value;
  }
  return 'blocks';
}

class GethServer {
  constructor(opts) {
    this.source = opts.source;
    this.vhosts = opts.vhosts ? new Set(opts.vhosts.map((h) => h.trim().toLowerCase()).filter(Boolean)) : null;
    this.writeTimeoutMs = opts.writeTimeoutMs === undefined ? 30000 : opts.writeTimeoutMs;
    this.maxLog = opts.maxLog || 100000;
    this.schema = loadSchema();
    this.docs = new DocumentCache(this.schema);
    this.resolvers = makeResolvers();
    this.faults = new faults.FaultSet();
    if (opts.faults) this.faults.replace(opts.faults);
    this.setRpcSettings(opts.rpc || {}); // node profile of JSON-RPC (lib/rpc-limits.js)
    this.log = [];
    this.seq = 0;
    this.logStream = opts.logFile ? fs.createWriteStream(opts.logFile, { flags: 'a' }) : null;
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = 120000; // Geth's IdleTimeout
    this.server.headersTimeout = 125000;
    this.server.requestTimeout = 0;
  }

  // Replace the JSON-RPC settings (profile first, then keys); the rate-limit
  // count starts again.
  setRpcSettings(o) {
    this.rpcSettings = resolveSettings(o);
    this.rpcRequests = 0;
  }

  listen(port, host) {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.removeListener('error', reject);
        resolve(this.server.address().port);
      });
    });
  }

  close() {
    return new Promise((resolve) => {
      this.source.close();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
      if (this.logStream) this.logStream.end();
    });
  }

  // --- helpers -------------------------------------------------------------

  hostAllowed(hostHeader) {
    if (!this.vhosts || !hostHeader) return true;
    let host = hostHeader;
    const m = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
    if (m) host = m[1];
    else if (/^[^:]+:\d*$/.test(host)) host = host.slice(0, host.lastIndexOf(':'));
    host = host.toLowerCase();
    if (net.isIP(host)) return true;
    return this.vhosts.has('*') || this.vhosts.has(host);
  }

  newEntry(req, path) {
    const e = {
      seq: ++this.seq,
      time: new Date().toISOString(),
      method: req.method,
      path,
      headers: Object.assign({}, req.headers), // names lowercased by Node
      query: null,
      variables: null,
      operationName: null,
      status: null,
      bytes: 0,
      fault: null,
      ms: null,
      range: null,
    };
    e._start = Date.now();
    this.log.push(e);
    if (this.log.length > this.maxLog) this.log.splice(0, this.log.length - this.maxLog);
    return e;
  }

  finish(e, status, bytes, extra) {
    if (e._done) return;
    e._done = true;
    e.status = status;
    e.bytes = bytes;
    e.ms = Date.now() - e._start;
    if (extra) Object.assign(e, extra);
    if (this.logStream) this.logStream.write(JSON.stringify(publicEntry(e)) + '\n');
  }

  readBody(req) {
    return new Promise((resolve, reject) => {
      const chunks = [];
      let size = 0;
      let tooLarge = false;
      req.on('data', (c) => {
        size += c.length;
        if (tooLarge) {
          if (size > MAX_DRAIN) req.destroy();
          return;
        }
        if (size > MAX_REQUEST_BODY) {
          tooLarge = true;
          chunks.length = 0;
          const err = new Error('http: request body too large');
          err.tooLarge = true;
          reject(err);
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => { if (!tooLarge) resolve(Buffer.concat(chunks).toString('utf8')); });
      req.on('error', (err) => { if (!tooLarge) reject(err); });
    });
  }

  sendPlain(res, status, msg, extraHeaders) {
    const body = Buffer.from(msg + '\n');
    const headers = Object.assign({
      'Content-Type': 'text/plain; charset=utf-8',
      'X-Content-Type-Options': 'nosniff',
      'Content-Length': body.length,
    }, extraHeaders || {});
    res.writeHead(status, headers);
    res.end(body);
    return body.length;
  }

  sendJSON(res, status, obj) {
    const body = Buffer.from(JSON.stringify(obj, null, 1));
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length });
    res.end(body);
    return body.length;
  }

  acceptsGzip(req) {
    return String(req.headers['accept-encoding'] || '').includes('gzip');
  }

  // Writes a JSON answer the way Geth's stack does: gzip when accepted,
  // Content-Length for small bodies, chunked otherwise. `text` is a string,
  // a Buffer or an array of string pieces (large GraphQL answers).
  async sendBody(req, res, status, text, opts = {}) {
    if (Array.isArray(text)) {
      let total = 0;
      for (const p of text) total += p.length;
      if (total > STREAM_THRESHOLD) return this.sendPieces(req, res, status, text);
      text = piecesToBuffer(text);
    }
    let buf = Buffer.isBuffer(text) ? text : Buffer.from(text);
    const headers = Object.assign({ 'Content-Type': opts.contentType || 'application/json' }, opts.headers || {});
    if (!opts.identity && this.acceptsGzip(req)) {
      buf = await gzipAsync(buf);
      headers['Content-Encoding'] = 'gzip';
    }
    if (opts.identity || buf.length <= CHUNKING_THRESHOLD) headers['Content-Length'] = buf.length;
    if (res.destroyed || res.socket === null) return 0;
    res.writeHead(status, headers);
    res.end(buf);
    return buf.length;
  }

  // Chunked answer from many pieces (optionally through gzip).
  async sendPieces(req, res, status, pieces) {
    const headers = { 'Content-Type': 'application/json' };
    let bytes = 0;
    let sink = res;
    if (this.acceptsGzip(req)) {
      headers['Content-Encoding'] = 'gzip';
      sink = zlib.createGzip();
      sink.on('data', (c) => { bytes += c.length; });
      sink.pipe(res);
    }
    res.writeHead(status, headers);
    const write = (chunk) => new Promise((resolve) => {
      if (res.destroyed) { resolve(); return; }
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      if (sink === res) bytes += b.length;
      if (sink.write(b)) resolve();
      else sink.once('drain', resolve);
    });
    let batch = [];
    let size = 0;
    for (const p of pieces) {
      batch.push(p);
      size += p.length;
      if (size >= STREAM_BATCH) {
        await write(piecesToBuffer(batch));
        batch = [];
        size = 0;
        if (res.destroyed) return bytes;
      }
    }
    if (batch.length) await write(piecesToBuffer(batch));
    await new Promise((resolve) => { sink.end(); res.once('finish', resolve); res.once('close', resolve); });
    return bytes;
  }

  // --- routing -------------------------------------------------------------

  async handle(req, res) {
    const url = new URL(req.url, 'http://x');
    const path = url.pathname;
    try {
      if (path === '/graphql' || path === '/graphql/') return await this.handleGraphql(req, res, path);
      if (path.startsWith('/control/')) return await this.handleControl(req, res, path, url);
      if (path === '/') return await handleRpc(this, req, res, path);
      this.sendPlain(res, 404, '404 page not found');
    } catch (e) {
      if (!res.headersSent && !res.destroyed) {
        try { this.sendPlain(res, 500, 'internal error: ' + (e && e.message)); } catch (e2) { /* ignore */ }
      }
      if (!process.env.ETHWHALE_QUIET) process.stderr.write(`geth-server: ${e && e.stack}\n`);
    }
  }

  async handleGraphql(req, res, path) {
    const e = this.newEntry(req, path);
    if (!this.hostAllowed(req.headers.host)) {
      return this.finish(e, 403, this.sendPlain(res, 403, 'invalid host specified'));
    }
    let body;
    try {
      body = await this.readBody(req);
    } catch (err) {
      if (err.tooLarge) return this.finish(e, 413, this.sendPlain(res, 413, err.message, { Connection: 'close' }));
      return this.finish(e, 400, res.destroyed ? 0 : this.sendPlain(res, 400, err.message));
    }
    let params;
    try {
      params = decodeParams(body);
    } catch (err) {
      return this.finish(e, 400, this.sendPlain(res, 400, err.message));
    }
    e.query = params.query;
    e.variables = params.variables;
    e.operationName = params.operationName || null;

    const compiled = this.docs.get(params.query);
    e.range = compiled.doc ? requestedRange(compiled.doc, params.operationName, params.variables, this.source) : null;
    const rule = this.faults.pick({ path: '/graphql', query: params.query, operationName: params.operationName, range: e.range });
    if (rule) e.fault = rule.fault;

    let aborted = false;
    res.on('close', () => {
      if (!res.writableFinished) aborted = true;
      if (!e._done && aborted) this.finish(e, null, 0, { aborted: true });
    });

    const kind = rule ? rule.fault : null;
    switch (kind) {
      case 'drop':
        this.finish(e, 0, 0);
        req.socket.destroy();
        return undefined;
      case 'hang':
        return undefined; // never answer; logged when the client gives up
      case 'status': {
        const st = rule.status || 503;
        const hdr = {};
        if (rule.retryAfter !== undefined) hdr['Retry-After'] = String(rule.retryAfter);
        const msg = typeof rule.body === 'string' ? rule.body : `${st} ${http.STATUS_CODES[st] || 'Error'}`;
        return this.finish(e, st, this.sendPlain(res, st, msg, hdr));
      }
      case 'timeout200':
        if (rule.ms) await sleep(rule.ms);
        if (aborted) return undefined;
        return this.finish(e, 200, await this.sendBody(req, res, 200, TIMEOUT_BODY, { identity: true }));
      case 'latency':
        await sleep(rule.ms || 0);
        if (aborted) return undefined;
        break;
      case 'gzipBomb': {
        // sent gzip'd whether or not the client asked for it: a hostile node
        const body = await faults.gzipBombBody(rootKeyOf(compiled, params), rule);
        if (aborted || res.destroyed) return this.finish(e, null, 0, { aborted: true });
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip', 'Content-Length': body.length });
        res.end(body);
        return this.finish(e, 200, body.length);
      }
      case 'badGzip': {
        // "Content-Encoding: gzip" on bytes that are not a gzip stream
        const body = Buffer.from(typeof rule.body === 'string' ? rule.body : '\x1f\x8b\x08\x00garbage that does not inflate');
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip', 'Content-Length': body.length });
        res.end(body);
        return this.finish(e, 200, body.length);
      }
      case 'deepNest': {
        let rootKey = 'blocks';
        const op = compiled.doc && findOperation(compiled.doc, params.operationName);
        if (op) {
          const rf = rootFields(compiled.doc, op.selectionSet.selections, []);
          if (rf[0]) rootKey = rf[0].alias ? rf[0].alias.value : rf[0].name.value;
        }
        return this.finish(e, 200, await this.sendBody(req, res, 200, faults.deepNestBody(rootKey, rule)));
      }
      default:
        break;
    }

    let failField = null;
    if (kind === 'graphqlError' && compiled.doc) {
      const name = rule.field || pickFailField(this.schema, compiled.doc, params.operationName);
      if (name) failField = { name, occurrence: rule.occurrence || 1, message: rule.message };
    }
    const out = this.run(compiled, params, failField);
    if (out.timedOut) {
      return this.finish(e, 200, await this.sendBody(req, res, 200, TIMEOUT_BODY, { identity: true }), { timedOut: true });
    }
    let status = out.status;
    let text = out.pieces;
    const joined = () => (typeof text === 'string' ? text : piecesToBuffer(text).toString('utf8'));

    switch (kind) {
      case 'wrongTypes':
      case 'missingFields':
      case 'hugeNumbers': {
        const obj = JSON.parse(joined());
        faults[kind](obj, rule);
        text = JSON.stringify(obj);
        break;
      }
      case 'malformed':
        text = faults.malformedBody(joined(), rule);
        status = rule.status || 200;
        break;
      case 'oversize':
        return this.finish(e, status, await this.sendOversize(req, res, status, joined(), rule));
      case 'drip':
        return this.finish(e, status, await this.sendDrip(req, res, status, joined(), rule));
      case 'truncated':
      case 'reset':
        return this.finish(e, status, await this.sendBroken(req, res, status, joined(), rule, kind));
      default:
        break;
    }
    if (aborted) return this.finish(e, null, 0, { aborted: true });
    // jsonBytes: the answer before gzip (bytes is what went on the wire)
    let jsonBytes = 0;
    if (typeof text === 'string') jsonBytes = Buffer.byteLength(text);
    else for (const p of text) jsonBytes += typeof p === 'string' ? Buffer.byteLength(p) : p.length;
    return this.finish(e, status, await this.sendBody(req, res, status, text), { jsonBytes });
  }

  run(compiled, params, failField) {
    const ctx = {
      source: this.source,
      deadline: this.writeTimeoutMs > 0 ? Date.now() + this.writeTimeoutMs - 100 : 0,
      failField,
      root: {},
    };
    try {
      const result = executeRequest(this.schema, compiled, params.operationName, params.variables, this.resolvers, ctx);
      const pieces = serializeResponse(result);
      return { status: result.errors && result.errors.length > 0 ? 400 : 200, pieces };
    } catch (err) {
      if (err instanceof TimeoutSignal) return { timedOut: true };
      throw err;
    }
  }

  async sendBroken(req, res, status, text, rule, kind) {
    let buf = Buffer.from(text);
    const headers = { 'Content-Type': 'application/json' };
    if (this.acceptsGzip(req)) {
      buf = await gzipAsync(buf);
      headers['Content-Encoding'] = 'gzip';
    }
    let cut = rule.bytes !== undefined ? rule.bytes : Math.floor(buf.length * (rule.fraction !== undefined ? rule.fraction : 0.5));
    cut = Math.max(0, Math.min(cut, Math.max(0, buf.length - 1)));
    const part = buf.subarray(0, cut);
    const mode = kind === 'reset' ? 'reset' : (rule.mode || 'close');
    if (mode === 'length') {
      headers['Content-Length'] = part.length;
      res.writeHead(status, headers);
      res.end(part);
      return part.length;
    }
    if (mode !== 'chunked') headers['Content-Length'] = buf.length;
    res.writeHead(status, headers);
    await new Promise((resolve) => {
      res.write(part, () => {
        const sock = res.socket || req.socket;
        setTimeout(() => {
          if (sock) {
            if (mode === 'reset' && typeof sock.resetAndDestroy === 'function') sock.resetAndDestroy();
            else sock.destroy();
          }
          resolve();
        }, 20);
      });
    });
    return part.length;
  }

  // The correct answer, uncompressed and chunked, `bytes` bytes (default
  // 64) every `ms` ms (default 100): a node that never goes quiet long
  // enough for an idle time-out yet takes ages for the whole body.
  async sendDrip(req, res, status, text, rule) {
    const buf = Buffer.from(text);
    const step = Math.max(1, rule.bytes || 64);
    const ms = rule.ms === undefined ? 100 : rule.ms;
    res.writeHead(status, { 'Content-Type': 'application/json' });
    let sent = 0;
    while (sent < buf.length && !res.destroyed) {
      const part = buf.subarray(sent, sent + step);
      await new Promise((resolve) => res.write(part, resolve));
      sent += part.length;
      if (sent < buf.length) await sleep(ms);
    }
    if (!res.destroyed) await new Promise((resolve) => res.end(resolve));
    return sent;
  }

  async sendOversize(req, res, status, text, rule) {
    const target = Math.floor((rule.mb !== undefined ? rule.mb : 16) * 1024 * 1024);
    // blanks before the closing bracket, or an "extensions" member in the
    // object (the last object of a JSON-RPC batch)
    const useExt = rule.padding === 'extensions';
    const last = text[text.length - 1];
    let head = text.slice(0, -1);
    let tail = last;
    if (useExt) {
      head = (last === ']' ? text.slice(0, -2) : head) + ',"extensions":{"padding":"';
      tail = last === ']' ? '"}}]' : '"}}';
    }
    let padLen = Math.max(0, target - head.length - tail.length);
    const headers = { 'Content-Type': 'application/json' };
    let sink = res;
    let bytes = 0;
    let gz = null;
    if (this.acceptsGzip(req)) {
      headers['Content-Encoding'] = 'gzip';
      gz = zlib.createGzip();
      gz.on('data', (c) => { bytes += c.length; });
      gz.pipe(res);
      sink = gz;
    } else {
      headers['Content-Length'] = head.length + padLen + tail.length;
    }
    res.writeHead(status, headers);
    const write = (chunk) => new Promise((resolve) => {
      if (res.destroyed) { resolve(false); return; }
      if (!gz) bytes += Buffer.byteLength(chunk);
      if (sink.write(chunk)) resolve(true);
      else sink.once('drain', () => resolve(true));
    });
    await write(head);
    const block = (useExt ? 'x' : ' ').repeat(1024 * 1024);
    while (padLen > 0 && !res.destroyed) {
      const n = Math.min(padLen, block.length);
      await write(n === block.length ? block : block.slice(0, n));
      padLen -= n;
    }
    if (!res.destroyed) {
      await write(tail);
      await new Promise((resolve) => { sink.end(); res.once('finish', resolve); res.once('close', resolve); });
    }
    return bytes;
  }

  // --- control API -------------------------------------------------------

  async readJSON(req) {
    const text = await this.readBody(req);
    if (text.trim() === '') return {};
    return JSON.parse(text);
  }

  async handleControl(req, res, path, url) {
    const m = req.method;
    try {
      switch (path) {
        case '/control/health':
          return this.sendJSON(res, 200, { ok: true, head: this.source.head() });
        case '/control/chain': {
          const mu = process.memoryUsage();
          const mb = (x) => Math.round(x / 1048576);
          return this.sendJSON(res, 200, Object.assign(this.source.facts(), {
            memory: { rssMB: mb(mu.rss), heapUsedMB: mb(mu.heapUsed), heapTotalMB: mb(mu.heapTotal) },
          }));
        }
        case '/control/log':
          if (m === 'GET') return this.sendJSON(res, 200, this.log.map(publicEntry));
          if (m === 'DELETE') {
            const n = this.log.length;
            this.log = [];
            return this.sendJSON(res, 200, { cleared: n });
          }
          break;
        case '/control/faults':
          if (m === 'GET') return this.sendJSON(res, 200, this.faults.list());
          if (m === 'DELETE') { this.faults.clear(); return this.sendJSON(res, 200, { rules: 0 }); }
          if (m === 'POST' || m === 'PUT') {
            const body = await this.readJSON(req);
            const rules = Array.isArray(body) ? body : body.rules;
            if (url.searchParams.get('append')) this.faults.append(rules || []);
            else this.faults.replace(rules || []);
            return this.sendJSON(res, 200, { rules: this.faults.rules.length });
          }
          break;
        case '/control/rpc':
          if (m === 'GET' || m === 'DELETE') return this.sendJSON(res, 200, controlRpc(this, m));
          if (m === 'POST' || m === 'PUT') return this.sendJSON(res, 200, controlRpc(this, m, await this.readJSON(req)));
          break;
        case '/control/fork':
          if (m === 'POST') {
            const body = await this.readJSON(req);
            const r = this.source.fork(Number(body.depth), body.seed);
            return this.sendJSON(res, 200, r);
          }
          break;
        case '/control/head':
          if (m === 'GET') return this.sendJSON(res, 200, { head: this.source.head() });
          if (m === 'POST') {
            const body = await this.readJSON(req);
            const out = {};
            if (body.number !== undefined) out.head = this.source.setHead(Number(body.number));
            if (body.advance !== undefined) out.head = this.source.setHead(this.source.head() + Number(body.advance));
            if (body.grow !== undefined) {
              if (typeof this.source.grow !== 'function') throw new Error('this chain source cannot grow');
              out.grow = body.grow ? this.source.grow(Number(body.grow.everyMs), Number(body.grow.blocks || 1)) : this.source.grow(0);
            }
            out.head = this.source.head();
            return this.sendJSON(res, 200, out);
          }
          break;
        default:
          return this.sendJSON(res, 404, { error: `unknown control endpoint ${path}` });
      }
      return this.sendJSON(res, 405, { error: `method ${m} not allowed on ${path}` });
    } catch (err) {
      return this.sendJSON(res, 400, { error: err.message });
    }
  }
}

function piecesToBuffer(pieces) {
  return Buffer.concat(pieces.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p))));
}

function publicEntry(e) {
  const o = {};
  for (const k of Object.keys(e)) if (k[0] !== '_') o[k] = e[k];
  return o;
}

module.exports = { GethServer, decodeParams, requestedRange, pickFailField, MAX_REQUEST_BODY };
