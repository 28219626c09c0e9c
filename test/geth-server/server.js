#!/usr/bin/env node
'use strict';
// ethwhale_fdw test server: a strict look-alike of Geth v1.17.5's /graphql
// endpoint. See README.md for options, the control API and fault rules.

const fs = require('fs');
const path = require('path');
const { GethServer } = require('./lib/http-server');
const { CsvSource } = require('./lib/source-csv');
const { GenSource } = require('./lib/source-gen');
const { resolveSettings } = require('./lib/rpc-limits');

const USAGE = `usage: node server.js (--data DIR | --generate N [--seed S] [--txs-per-block MIN-MAX])
                      [--port 8545] [--host 127.0.0.1] [--chain-id ID] [--faults FILE] [--log FILE]
                      [--vhosts localhost,...] [--write-timeout MS] [--cache-blocks N] [--head N]
                      [--max-log N] [--rpc-profile NAME] [--rpc-options JSON]`;

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
      case '--rpc-profile': o.rpcProfile = val(); break;
      case '--rpc-options': {
        const v = val();
        try { o.rpcOptions = JSON.parse(v); } catch (e) { throw new Error(`--rpc-options is not JSON: ${e.message}`); }
        if (!o.rpcOptions || typeof o.rpcOptions !== 'object' || Array.isArray(o.rpcOptions)) throw new Error('--rpc-options wants a JSON object');
        break;
      }
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
  // JSON-RPC node profile: --rpc-profile, then the keys of --rpc-options
  const opt = Object.assign({}, o.rpcOptions || {});
  if (o.rpcProfile !== undefined) {
    if (opt.profile !== undefined && opt.profile !== o.rpcProfile) throw new Error('--rpc-profile and the profile of --rpc-options differ');
    opt.profile = o.rpcProfile;
  }
  resolveSettings(opt); // validate now: a bad value exits 2
  o.rpc = opt;
  return o;
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
      source, vhosts: o.vhosts, writeTimeoutMs: o.writeTimeoutMs, logFile: o.log, maxLog: o.maxLog, faults: rules, rpc: o.rpc,
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
  const hostShown = o.host.includes(':') ? `[${o.host}]` : o.host;
  process.stdout.write(`listening on http://${hostShown}:${port}/graphql\n`);
}

if (require.main === module) main();

module.exports = { parseArgs };
