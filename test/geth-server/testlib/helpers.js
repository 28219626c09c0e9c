'use strict';
// Test helpers: start the server on port 0 and talk to it with raw
// node:http (so gzip, status codes and broken bodies stay visible).

const { spawn } = require('node:child_process');
const http = require('node:http');
const path = require('node:path');
const zlib = require('node:zlib');
const fs = require('node:fs');

const SERVER = path.join(__dirname, '..', 'server.js');
const DATA_DIR = process.env.ETHWHALE_DATA || path.resolve(__dirname, '..', '..', '..', '..', 'shared', 'data');

function startServer(args, { timeoutMs = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const proc = spawn(process.execPath, [SERVER, '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`server did not start: ${err}`));
    }, timeoutMs);
    proc.stderr.on('data', (d) => { err += d; });
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /^listening on http:\/\/127\.0\.0\.1:(\d+)\/graphql\n/.exec(out);
      if (m) {
        clearTimeout(timer);
        const port = Number(m[1]);
        resolve(makeClient(proc, port, Date.now() - t0, () => out, () => err));
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${err}`));
    });
  });
}

function request(port, { method = 'POST', path: p = '/graphql', body, headers = {}, timeoutMs = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? null : (Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)));
    const h = Object.assign({}, headers);
    if (data && h['Content-Type'] === undefined) h['Content-Type'] = 'application/json';
    if (data) h['Content-Length'] = data.length;
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers: h, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        let text = raw;
        if (res.headers['content-encoding'] === 'gzip') text = zlib.gunzipSync(raw);
        text = text.toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch (e) { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, raw, text, json, complete: res.complete });
      });
      res.on('error', (e) => {
        const raw = Buffer.concat(chunks);
        resolve({ status: res.statusCode, headers: res.headers, raw, text: raw.toString('utf8'), error: e, complete: false });
      });
      res.on('aborted', () => { /* reported via error/end */ });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

function makeClient(proc, port, startMs, getOut, getErr) {
  const c = {
    proc,
    port,
    startMs,
    url: `http://127.0.0.1:${port}/graphql`,
    request: (opts) => request(port, opts),
    gql: (query, variables, opts = {}) => request(port, Object.assign({ body: { query, variables } }, opts)),
    control: async (method, p, body) => {
      const r = await request(port, { method, path: '/control/' + p, body });
      return r.json;
    },
    stop: () => new Promise((resolve) => {
      if (proc.exitCode !== null) { resolve(proc.exitCode); return; }
      proc.once('exit', (code, sig) => resolve(code === null ? sig : code));
      proc.kill('SIGTERM');
    }),
    stdout: getOut,
    stderr: getErr,
  };
  return c;
}

function readCSV(name) {
  const text = fs.readFileSync(path.join(DATA_DIR, name), 'utf8');
  const lines = text.split(/\r?\n/).filter((l) => l !== '');
  const header = lines[0].split(',');
  return lines.slice(1).map((l) => {
    const cells = l.split(',');
    const o = {};
    header.forEach((h, i) => { o[h] = cells[i] === undefined ? '' : cells[i]; });
    return o;
  });
}

const hex = (n) => '0x' + BigInt(n).toString(16);

module.exports = { startServer, request, readCSV, hex, DATA_DIR };
