#!/usr/bin/env node
'use strict';
// ethwhale_fdw test server: a strict look-alike of Geth v1.17.5's /graphql
// endpoint. See README.md for options, the control API and fault rules.

const cluster = require('cluster');
const fs = require('fs');
const path = require('path');
const { GethServer } = require('./lib/http-server');
const { CsvSource } = require('./lib/source-csv');
const { GenSource } = require('./lib/source-gen');

const USAGE = `usage: node server.js (--data DIR | --generate N [--seed S] [--txs-per-block MIN-MAX])
                      [--port 8545] [--host 127.0.0.1] [--chain-id ID] [--faults FILE] [--log FILE]
                      [--vhosts localhost,...] [--write-timeout MS] [--cache-blocks N] [--head N]
                      [--max-log N] [--workers N]`;

function parseArgs(argv) {
  const o = {
    port: 8545,
    host: '127.0.0.1',
    writeTimeoutMs: 30000,
  };
  const need = (i) => {
    if (i + 1 >= argv.length) throw new Error(`option ${argv[i]} needs a value`);
    return argv[i + 1];
  };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let inline = null;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) { inline = a.slice(eq + 1); a = a.slice(0, eq); }
    const val = () => {
      if (inline !== null) return inline;
      const v = need(i);
      i++;
      return v;
    };
    switch (a) {
      case '--port': o.port = Number(val()); break;
      case '--host': o.host = val(); break;
      case '--data': o.data = val(); break;
      case '--generate': o.generate = Number(val()); break;
      case '--seed': o.seed = val(); break;
      case '--txs-per-block': {
        const v = val();
        const m = /^(\d+)(?:-(\d+))?$/.exec(v);
        if (!m) throw new Error('--txs-per-block wants MIN-MAX');
        o.minTx = Number(m[1]);
        o.maxTx = m[2] !== undefined ? Number(m[2]) : o.minTx;
        break;
      }
      case '--chain-id': o.chainId = Number(val()); break;
      case '--faults': o.faults = val(); break;
      case '--log': o.log = val(); break;
      case '--vhosts': o.vhosts = val().split(','); break;
      case '--write-timeout': o.writeTimeoutMs = Number(val()); break;
      case '--cache-blocks': o.cacheBlocks = Number(val()); break;
      case '--head': o.head = Number(val()); break;
      case '--max-log': o.maxLog = Number(val()); break;
      case '--workers': o.workers = Number(val()); break;
      case '-h':
      case '--help':
        process.stdout.write(USAGE + '\n');
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${a}`);
    }
  }
  if ((o.data === undefined) === (o.generate === undefined)) throw new Error('give exactly one of --data DIR or --generate N');
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new Error('bad --port');
  if (o.workers !== undefined && !(Number.isInteger(o.workers) && o.workers >= 1 && o.workers <= 64)) {
    throw new Error('--workers wants 1..64');
  }
  return o;
}

// --workers N: N processes answer on one port (node's cluster module), as
// Geth answers requests on several cores.  The chain is generated lazily from
// the seed, so every worker serves the same one; this process only forks
// them, announces the port and merges their request logs.
function runPrimary(o) {
  const workers = [];
  const ops = new Map();
  let announced = false;
  let stopping = false;
  const hostShown = o.host.includes(':') ? `[${o.host}]` : o.host;
  const stopAll = (rc) => {
    if (stopping) return;
    stopping = true;
    const t = setTimeout(() => process.exit(rc), 4000);
    t.unref();
    let left = workers.filter((w) => !w.isDead()).length;
    if (left === 0) process.exit(rc);
    cluster.on('exit', () => { if (--left <= 0) process.exit(rc); });
    for (const w of workers) if (!w.isDead()) w.process.kill('SIGTERM');
  };
  process.on('SIGTERM', () => stopAll(0));
  process.on('SIGINT', () => stopAll(0));
  cluster.on('exit', (w, code, signal) => {
    if (stopping) return;
    process.stderr.write(`geth-server: worker ${w.process.pid} exited (${signal || code})\n`);
    stopAll(1);
  });
  const onMessage = (from, msg) => {
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'listening') {
      if (!announced) process.stdout.write(`listening on http://${hostShown}:${msg.port}/graphql\n`);
      announced = true;
    } else if (msg.type === 'log-op') {
      ops.set(msg.id, { from, op: msg.op, parts: [] });
      for (const w of workers) w.send({ type: msg.op === 'get' ? 'log-dump' : 'log-clear', id: msg.id });
    } else if (msg.type === 'log-part') {
      const op = ops.get(msg.id);
      if (!op) return;
      op.parts.push(msg);
      if (op.parts.length < workers.length) return;
      ops.delete(msg.id);
      if (op.op === 'get') {
        const entries = [].concat(...op.parts.map((p) => p.entries));
        entries.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
        op.from.send({ type: 'log-result', id: msg.id, entries });
      } else {
        op.from.send({ type: 'log-result', id: msg.id, cleared: op.parts.reduce((n, p) => n + p.cleared, 0) });
      }
    }
  };
  for (let i = 0; i < o.workers; i++) {
    const w = cluster.fork();
    w.on('message', (msg) => onMessage(w, msg));
    workers.push(w);
  }
}

async function main() {
  let srv = null;
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    const t = setTimeout(() => process.exit(0), 3000);
    t.unref();
    if (!srv) process.exit(0);
    srv.close().then(() => process.exit(0));
  };
  // Installed first so that a signal right after the "listening" line is
  // always a clean stop.
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  let o;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`geth-server: ${e.message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (o.workers > 1 && cluster.isPrimary) {
    process.removeListener('SIGTERM', stop);
    process.removeListener('SIGINT', stop);
    runPrimary(o);
    return;
  }
  // a worker whose primary is gone stops too
  if (cluster.isWorker) process.on('disconnect', () => process.exit(0));
  let source;
  try {
    source = o.data !== undefined
      ? new CsvSource(path.resolve(o.data), { chainId: o.chainId })
      : new GenSource({
        blocks: o.generate, seed: o.seed, minTx: o.minTx, maxTx: o.maxTx, chainId: o.chainId, cacheBlocks: o.cacheBlocks,
      });
    if (o.head !== undefined) source.setHead(o.head);
  } catch (e) {
    process.stderr.write(`geth-server: ${e.message}\n`);
    process.exit(2);
  }
  let rules = null;
  if (o.faults) {
    try {
      rules = JSON.parse(fs.readFileSync(o.faults, 'utf8'));
      if (rules && !Array.isArray(rules) && Array.isArray(rules.rules)) rules = rules.rules;
    } catch (e) {
      process.stderr.write(`geth-server: cannot read fault rules ${o.faults}: ${e.message}\n`);
      process.exit(2);
    }
  }
  try {
    srv = new GethServer({
      source, vhosts: o.vhosts, writeTimeoutMs: o.writeTimeoutMs, logFile: o.log, maxLog: o.maxLog, faults: rules,
    });
  } catch (e) {
    process.stderr.write(`geth-server: ${e.message}\n`);
    process.exit(2);
  }
  let port;
  try {
    port = await srv.listen(o.port, o.host);
  } catch (e) {
    process.stderr.write(`geth-server: cannot listen on ${o.host}:${o.port}: ${e.message}\n`);
    process.exit(1);
  }
  if (cluster.isWorker) {
    srv.attachCluster(process);
    process.send({ type: 'listening', port });
    return;
  }
  const hostShown = o.host.includes(':') ? `[${o.host}]` : o.host;
  process.stdout.write(`listening on http://${hostShown}:${port}/graphql\n`);
}

if (require.main === module) main();

module.exports = { parseArgs };
