'use strict';
// Node profiles for the JSON-RPC endpoint: how a client or provider limits
// and rejects requests, with the exact texts collected in
// shared/node-limits.md (client sources: go-ethereum 02b73d4ea7, reth
// 7b3432d950 + jsonrpsee, Besu 3fd224e2e4, indexed Erigon and Nethermind;
// providers: their docs and replies quoted in issues). A text or shape that
// node-limits.md marks UNCONFIRMED is marked UNCONFIRMED here too.
//
// A profile is a family (error texts and shapes) plus values for the
// settings below; every value can be overridden by an explicit key
// (POST /control/rpc, --rpc-options). Only JSON-RPC ("/") is affected:
// /graphql stays Geth v1.17.5 whatever the profile.

// Settings a caller may set, in the order GET /control/rpc shows them.
const KEYS = ['maxBatch', 'logsMaxRange', 'logsMaxResults', 'blockReceipts', 'logTimestamp', 'txTimestamp',
  'historyCutoff', 'stateWindow', 'stateError', 'rateLimit'];

// Geth v1.17.5 defaults (node/defaults.go, cmd/utils/flags.go).
const GETH = {
  maxBatch: 1000, // --rpc.batch-request-limit
  logsMaxRange: null, // --rpc.rangelimit 0 = unlimited
  logsMaxResults: null, // Geth has no result cap
  blockReceipts: true, // eth_getBlockReceipts since v1.13.0
  logTimestamp: true, // logs' blockTimestamp since v1.16.0
  txTimestamp: true, // transactions' blockTimestamp since v1.17.0
  historyCutoff: null, // --history.chain all
  stateWindow: null, // archive: every state
  stateError: 'hash',
  rateLimit: null,
};

// Geth --history.chain postmerge on mainnet (core/history/historymode.go).
const MAINNET_MERGE_CUTOFF = 15537393;

const PROFILES = {
  geth: { family: 'geth', values: {} },
  'geth-ranged': { family: 'geth', values: { logsMaxRange: 1000 } },
  // Geth 1.12.x: no eth_getBlockReceipts (v1.13.0), no blockTimestamp in
  // logs (v1.16.0) or transactions (v1.17.0); eth_getLogs of v1.12 (no
  // range errors: the search stops at the head); batch limits since v1.12.1.
  'geth-1.12': { family: 'geth-1.12', values: { blockReceipts: false, logTimestamp: false, txTimestamp: false } },
  // Erigon <= 3.3: --rpc.batch.limit 100, a rejected batch is one bare
  // object; no eth_getLogs caps by default (3.3.10 adds the flag, default 0).
  // txTimestamp: UNCONFIRMED (no source seen for Erigon transactions).
  'erigon-3.3': { family: 'erigon-3.3', values: { maxBatch: 100, txTimestamp: false } },
  // Erigon 3.4: --rpc.blockrange.limit 1000, --rpc.logs.maxresults 20000.
  erigon: { family: 'erigon', values: { maxBatch: 100, logsMaxRange: 1000, logsMaxResults: 20000, txTimestamp: false } },
  // Reth (jsonrpsee): no batch limit, --rpc.max-blocks-per-filter 100000,
  // --rpc.max-logs-per-response 20000. txTimestamp: UNCONFIRMED.
  reth: { family: 'reth', values: { maxBatch: null, logsMaxRange: 100000, logsMaxResults: 20000, txTimestamp: false } },
  // Nethermind: MaxBatchSize 1024, Receipt.MaxBlockDepth 1000,
  // JsonRpc.MaxLogsPerResponse 20000; TransactionForRpc has blockTimestamp.
  nethermind: { family: 'nethermind', values: { maxBatch: 1024, logsMaxRange: 1000, logsMaxResults: 20000 } },
  // Besu: --rpc-http-max-batch-size 1024, --rpc-max-logs-range 5000, no
  // result cap; LogResult has blockTimestamp since 25.10.0. txTimestamp: UNCONFIRMED.
  besu: { family: 'besu', values: { maxBatch: 1024, logsMaxRange: 5000, txTimestamp: false } },
  // Alchemy free tier: 10-block eth_getLogs range (docs), 10K logs; 1000
  // calls per HTTP batch (docs; the reply to a larger batch is UNCONFIRMED).
  alchemy: { family: 'alchemy', values: { logsMaxRange: 10, logsMaxResults: 10000 } },
  // Infura: 10,000 results (docs); a 10,000-block range cap reported once
  // (INFURA/infura #237, UNCONFIRMED). Batch limit undocumented (UNCONFIRMED).
  infura: { family: 'infura', values: { logsMaxRange: 10000, logsMaxResults: 10000 } },
  // QuickNode paid plans: 10,000-block eth_getLogs range. Batch limit UNCONFIRMED.
  quicknode: { family: 'quicknode', values: { logsMaxRange: 10000 } },
  // Ankr Public plan: batch 10, range 1000 (service-plans.mdx); 200,000 logs
  // per response on every plan (changelog; its error text is UNCONFIRMED).
  ankr: { family: 'ankr', values: { maxBatch: 10, logsMaxRange: 1000, logsMaxResults: 200000 } },
  // Cloudflare gateway: 800 blocks; eth_getBlockReceipts is not supported (403).
  cloudflare: { family: 'cloudflare', values: { logsMaxRange: 800, blockReceipts: false } },
  // Geth --history.chain postmerge: bodies and receipts below the cutoff are
  // gone (mainnet default: the merge block; set historyCutoff for a test).
  pruned: { family: 'geth', values: { historyCutoff: MAINNET_MERGE_CUTOFF } },
};

const RATE_STYLES = ['alchemy', 'infura', 'quicknode'];
const STATE_ERRORS = ['hash', 'path', 'historical'];

// A JSON-RPC error with a code (and optionally data, and the HTTP status a
// provider sends with it when the request is not a batch).
class RpcError extends Error {
  constructor(code, message, opts = {}) {
    super(message);
    this.code = code;
    if (opts.data !== undefined) this.data = opts.data;
    if (opts.http !== undefined) this.http = opts.http;
    if (opts.keyOrder) this.keyOrder = opts.keyOrder; // error object key order
  }
}

function isLimit(v) { return v === null || (Number.isInteger(v) && v >= 0); }
function isBlock(v) { return v === null || (Number.isInteger(v) && v >= 0); }

// Validate and resolve a settings object (profile first, then keys).
function resolveSettings(input) {
  const o = input === undefined || input === null ? {} : input;
  if (typeof o !== 'object' || Array.isArray(o)) throw new Error('rpc settings must be a JSON object');
  const name = o.profile === undefined || o.profile === null ? 'geth' : o.profile;
  if (!Object.prototype.hasOwnProperty.call(PROFILES, name)) {
    throw new Error(`unknown rpc profile ${JSON.stringify(name)} (one of ${Object.keys(PROFILES).join(', ')})`);
  }
  for (const k of Object.keys(o)) {
    if (k !== 'profile' && !KEYS.includes(k)) throw new Error(`unknown rpc setting ${JSON.stringify(k)} (one of profile, ${KEYS.join(', ')})`);
  }
  const s = Object.assign({ profile: name }, GETH, PROFILES[name].values);
  for (const k of KEYS) if (Object.prototype.hasOwnProperty.call(o, k)) s[k] = o[k];
  for (const k of ['maxBatch', 'logsMaxRange', 'logsMaxResults']) {
    if (!isLimit(s[k])) throw new Error(`${k} must be a non-negative integer or null`);
    if (s[k] === 0) s[k] = null; // 0 = unlimited, as the clients' flags
  }
  for (const k of ['blockReceipts', 'logTimestamp', 'txTimestamp']) {
    if (typeof s[k] !== 'boolean') throw new Error(`${k} must be true or false`);
  }
  for (const k of ['historyCutoff', 'stateWindow']) {
    if (!isBlock(s[k])) throw new Error(`${k} must be a non-negative integer or null`);
  }
  if (!STATE_ERRORS.includes(s.stateError)) throw new Error(`stateError must be one of ${STATE_ERRORS.join(', ')}`);
  if (s.rateLimit !== null) {
    const r = s.rateLimit;
    if (typeof r !== 'object' || Array.isArray(r)) throw new Error('rateLimit must be an object or null');
    for (const k of Object.keys(r)) {
      if (!['every', 'style', 'retryAfter', 'rps'].includes(k)) throw new Error(`unknown rateLimit key ${JSON.stringify(k)}`);
    }
    if (!Number.isInteger(r.every) || r.every < 1) throw new Error('rateLimit.every must be a positive integer');
    const style = r.style === undefined ? (RATE_STYLES.includes(PROFILES[name].family) ? PROFILES[name].family : 'alchemy') : r.style;
    if (!RATE_STYLES.includes(style)) throw new Error(`rateLimit.style must be one of ${RATE_STYLES.join(', ')}`);
    const out = { every: r.every, style };
    if (r.retryAfter !== undefined) {
      if (!(typeof r.retryAfter === 'number' && r.retryAfter >= 0)) throw new Error('rateLimit.retryAfter must be a number of seconds');
      out.retryAfter = r.retryAfter;
    }
    if (r.rps !== undefined) {
      if (!Number.isInteger(r.rps) || r.rps < 1) throw new Error('rateLimit.rps must be a positive integer');
      out.rps = r.rps;
    }
    s.rateLimit = out;
  }
  s.family = PROFILES[name].family;
  return s;
}

// The settings as GET /control/rpc shows them (no internal fields).
function publicSettings(s) {
  const o = { profile: s.profile };
  for (const k of KEYS) o[k] = s[k];
  return o;
}

// --- families ---------------------------------------------------------------
// Per family: how envelopes are written, the batch-too-large reply, the
// method-not-found text, pruned history and missing state, and the
// eth_getLogs caps. Param-error flows of eth_getLogs are in rpc-methods.js.

const GETH_LIKE = new Set(['geth', 'geth-1.12', 'erigon-3.3', 'erigon', 'alchemy', 'infura', 'quicknode', 'ankr', 'cloudflare']);

function isGoFamily(fam) { return GETH_LIKE.has(fam); }

// Nethermind writes jsonrpc, result|error, id (JsonRpcResponse property
// order); everyone else jsonrpc, id, result|error.
function errorFirst(fam) { return fam === 'nethermind'; }

// Reply to a batch of n messages above maxBatch: {status, body (object)}.
function batchTooLarge(fam, n, limit, firstId) {
  const env = (id, error) => (errorFirst(fam) ? { jsonrpc: '2.0', error, id } : { jsonrpc: '2.0', id, error });
  switch (fam) {
    case 'erigon-3.3':
      // rpc/server.go (erigon #17245): one bare object, id null
      return { status: 200, body: env(null, { code: -32000, message: `batch limit ${limit} exceeded (can increase by --rpc.batch.limit). Requested batch of size: ${n}` }) };
    case 'erigon':
      // 3.4 (#18260): respondWithBatchTooLarge, invalidRequestError, same text
      // (the release is inferred from the changelog and code, not a tag: UNCONFIRMED)
      return { status: 200, body: [env(firstId, { code: -32600, message: `batch limit ${limit} exceeded (can increase by --rpc.batch.limit). Requested batch of size: ${n}` })] };
    case 'reth':
      // jsonrpsee reject_too_big_batch_request (HTTP status UNCONFIRMED: 200)
      return { status: 200, body: env(null, { code: -32010, message: 'The batch request was too large', data: `Exceeded max limit of ${limit}` }) };
    case 'nethermind':
      // a non-collection reply with -32005 is HTTP 503
      return { status: 503, body: env(null, { code: -32005, message: 'Batch size limit exceeded' }) };
    case 'besu':
      return { status: 200, body: env(null, { code: -32005, message: 'Number of requests exceeds max batch size' }) };
    default:
      // geth (rpc/handler.go respondWithBatchTooLarge); the providers'
      // replies are UNCONFIRMED and use Geth's
      return { status: 200, body: [env(firstId, { code: -32600, message: 'batch too large' })] };
  }
}

function methodNotFound(fam, method) {
  switch (fam) {
    case 'reth': // jsonrpsee: the name is not included
    case 'besu':
    case 'infura': // docs table
    case 'alchemy': // UNCONFIRMED
      return new RpcError(-32601, 'Method not found');
    case 'ankr': // error reference: -32601 -> HTTP 404
      return new RpcError(-32601, 'Method not found', { http: 404 });
    case 'cloudflare': // "returns a 403 if a method is ... not supported"; body UNCONFIRMED
      return new RpcError(-32601, 'Method not found', { http: 403 });
    default: // geth, erigon, nethermind (current), quicknode (UNCONFIRMED)
      return new RpcError(-32601, `the method ${method} does not exist/is not available`);
  }
}

// History below the cutoff (block bodies, receipts, logs).
function prunedHistory(fam, requested, cutoff) {
  switch (fam) {
    case 'reth': return new RpcError(4444, `pruned history unavailable: requested ${requested}, earliest available ${cutoff}`);
    case 'nethermind':
    case 'besu': return new RpcError(4444, 'Pruned history unavailable'); // Besu: used only by eth_getBlockAccessList there (UNCONFIRMED elsewhere)
    case 'erigon-3.3':
    case 'erigon': return new RpcError(-32000, 'old data not available due to pruning');
    default: return new RpcError(4444, 'pruned history unavailable'); // core/history PrunedHistoryError
  }
}

// Does a transaction lookup by hash below the cutoff fail (true) or answer
// null (false)? Geth: the transaction's body is gone, so
// GetCanonicalTransaction finds nothing and the answer is null. Nethermind
// answers a missing receipt with 4444; Reth maps BlockExpired to 4444
// (both UNCONFIRMED for these two methods).
function prunedTxLookupFails(fam) {
  return fam === 'nethermind' || fam === 'reth' || fam === 'besu';
}

// State older than the window: an RpcError, or {result: null} (Besu).
function missingState(s, block) {
  const root = (block.stateRoot || '0x' + '0'.repeat(64)).slice(2);
  switch (s.family) {
    case 'erigon-3.3':
    case 'erigon': return new RpcError(-32000, 'old data not available due to pruning');
    case 'reth': return new RpcError(-32603, `state at block #${block.number} is pruned`); // code UNCONFIRMED
    case 'nethermind': return new RpcError(-32002, `No state available for block ${block.number} (${block.hash})`); // FullHashAndNumber format UNCONFIRMED
    case 'besu': return { result: null }; // world state missing -> .orElse(null) (inferred)
    default: break;
  }
  switch (s.stateError) {
    // hash scheme full node (128 states): geth #20874's text
    case 'hash': return new RpcError(-32000, `missing trie node ${root} (path )`);
    // path scheme (pathdb reader.go), e.g. 1.16.1 in geth #32148
    case 'path': return new RpcError(-32000, `state 0x${root} is not available`);
    // v1.17.5 itself: StateAt fails, then HistoricDB.Reader
    default: return new RpcError(-32000, `historical state ${root} is not available`);
  }
}

// --- eth_getLogs caps --------------------------------------------------------

const hexLower = (n) => '0x' + n.toString(16);
const hexUpper = (n) => '0x' + n.toString(16).toUpperCase();
function kilo(n) { return n % 1000 === 0 ? `${n / 1000}K` : String(n); }

// Is [from, to] (resolved numbers) over the profile's range cap? Returns
// the error or null. Each family measures the range its own way.
function rangeError(s, from, to) {
  const N = s.logsMaxRange;
  if (N === null || to < from) return null;
  const span = to - from; // end - begin
  switch (s.family) {
    case 'geth': // checked in rpc-methods.js on uint64 numbers (the "latest" quirk)
      return null;
    case 'geth-1.12': // no range limit in 1.12; the 1.17.0-1.17.2 text (UNCONFIRMED for this profile)
      return span > N ? new RpcError(-32000, `exceed maximum block range: ${N}`) : null;
    case 'erigon-3.3':
    case 'erigon':
      // PR #19721; -32602 since PR #20424 (whether 3.4.0 has it is UNCONFIRMED; 3.3.x: -32000)
      return span > N ? new RpcError(s.family === 'erigon' ? -32602 : -32000, `query block range exceeds server limit, narrow your filter: ${N}`) : null;
    case 'reth':
      return span > N ? new RpcError(-32602, `query exceeds max block range ${N}`) : null;
    case 'nethermind':
      return span + 1 > N
        ? new RpcError(-32602, `Block range ${span + 1} exceeds the maximum of ${N} blocks per logs request. Use a narrower fromBlock/toBlock range or increase Receipt.MaxBlockDepth.`)
        : null;
    case 'besu':
      return span > N ? new RpcError(-32005, 'Requested range exceeds maximum RPC range limit') : null;
    case 'alchemy':
      // strict: at most N blocks inclusive; the suggestion holds N blocks; HTTP 400 (boundless #838).
      // Verbatim for the former 500-block limit; the 10-block wording is UNCONFIRMED (same pattern)
      return span + 1 > N
        ? new RpcError(-32600, `You can make eth_getLogs requests with up to a ${N} block range. Based on your parameters, this block range should work: [${hexLower(from)}, ${hexLower(from + N - 1)}]`, { http: 400 })
        : null;
    case 'infura': // INFURA/infura #237 (UNCONFIRMED; "range" read as to - from)
      return span > N ? new RpcError(-32602, `range ${span} exceeds limit of ${N}`) : null;
    case 'quicknode': // HTTP 413 (arbitrum-sdk #609)
      return span + 1 > N ? new RpcError(-32614, `eth_getLogs is limited to a ${N.toLocaleString('en-US')} range`, { http: 413 }) : null;
    case 'ankr': // -32600 -> HTTP 400 by Ankr's table (inclusive count UNCONFIRMED)
      return span + 1 > N ? new RpcError(-32600, 'block range is too wide') : null;
    case 'cloudflare': // only "Max range: 800" is known; code and the rest UNCONFIRMED
      return span + 1 > N ? new RpcError(-32000, `Max range: ${N}`) : null;
    default:
      return null;
  }
}

// Does the result cap apply to a one-block query? (Reth: never; the rest: yes, UNCONFIRMED.)
function resultsCapSingleBlock(fam) { return fam !== 'reth'; }

// The error for more than logsMaxResults logs in [from, to]; `lastGood` is
// the last block whose logs still fitted (Reth's retry_to_block).
function resultsError(s, from, lastGood) {
  const N = s.logsMaxResults;
  switch (s.family) {
    case 'erigon-3.3':
    case 'erigon': // PR #19721 (code UNCONFIRMED)
      return new RpcError(-32000, `query returns too many logs, narrow your filter: ${N}`);
    case 'reth':
      return new RpcError(-32602, `query exceeds max results ${N}, retry with the range ${from}-${lastGood}`);
    case 'nethermind':
      return new RpcError(-32005, `Too many logs requested. Max logs per response is ${N}.`);
    case 'alchemy': // ethers #4703 (HTTP status UNCONFIRMED: 200)
      return new RpcError(-32602, `Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on the response size, or you can request any block range with a cap of ${kilo(N)} logs in the response. Based on your parameters and the response size limit, this block range should work: [${hexLower(from)}, ${hexLower(lastGood)}]`);
    case 'infura': // ethers #4703: data keys sorted, hex digits upper case
      return new RpcError(-32005, `query returned more than ${N} results. Try with this block range [${hexUpper(from)}, ${hexUpper(lastGood)}].`, {
        data: { from: hexUpper(from), limit: N, to: hexUpper(lastGood) },
        keyOrder: ['code', 'data', 'message'],
      });
    default:
      // no native result cap (geth, besu, quicknode, cloudflare) or an
      // unknown text (ankr): Infura's plain text (UNCONFIRMED for these)
      return new RpcError(-32005, `query returned more than ${N} results`);
  }
}

// HTTP status of a reply to a single (non-batch) call that failed with `err`.
function singleCallStatus(fam, err) {
  if (err.http) return err.http;
  if (fam === 'nethermind' && (err.code === -32005 || err.code === -32017)) return 503;
  if (fam === 'ankr') {
    const m = { '-32700': 400, '-32600': 400, '-32601': 404, '-32602': 400, '-32603': 500 };
    if (m[err.code]) return m[err.code];
  }
  return 200;
}

// Batch response size cap: {max, perEntry: RpcError} or {max, whole: object} or null.
function responseCap(fam) {
  switch (fam) {
    case 'geth':
    case 'alchemy':
    case 'infura':
    case 'quicknode':
    case 'ankr':
    case 'cloudflare':
      return { max: 25000000, perEntry: new RpcError(-32003, 'response too large') }; // --rpc.batch-response-max-size
    case 'nethermind':
      return { max: 33554432, perEntry: new RpcError(-32005, 'MaxBatchResponseBodySize of 32768KB exceeded') };
    case 'reth':
      return { max: 167772160, whole: { code: -32011, message: 'The batch response was too large', data: 'Exceeded max limit of 167772160' } };
    default:
      return null; // geth-1.12 (v1.12.1 had it: kept simple), erigon, besu: none known
  }
}

// --- rate limits (every Nth HTTP request) ----------------------------------

// {status, headers, text} for a rate-limited request.
function rateLimited(rl, isBatch, id) {
  const rid = isBatch ? null : id; // a batch gets one object (QuickNode: erpc fixture; others UNCONFIRMED)
  const retry = rl.retryAfter !== undefined ? rl.retryAfter : 1;
  switch (rl.style) {
    case 'infura': {
      // legacy form (metamask-docs avoid-rate-limiting.md); backoff_seconds
      // is retryAfter (the docs' sample says 30.0); Go-style floats
      const f = (x) => (Number.isInteger(x) ? x.toFixed(1) : String(x));
      const text = `{"jsonrpc":"2.0","id":${JSON.stringify(rid)},"error":{"code":-32005,"message":"project ID request rate exceeded","data":{"see":"https://infura.io/docs/ethereum/jsonrpc/ratelimits","current_rps":13.333,"allowed_rps":10.0,"backoff_seconds":${f(retry)}}}}`;
      return { status: 429, headers: {}, text };
    }
    case 'quicknode': {
      const rps = rl.rps || 300;
      return {
        status: 429,
        headers: {},
        text: JSON.stringify({ jsonrpc: '2.0', id: rid, error: { code: -32007, message: `${rps}/second request limit reached - reduce calls per second or upgrade your account at quicknode.com` } }),
      };
    }
    default:
      return {
        status: 429,
        headers: { 'Retry-After': String(retry) },
        text: JSON.stringify({ jsonrpc: '2.0', id: rid, error: { code: 429, message: 'Your app has exceeded its compute units per second capacity. If you have retries enabled, you can safely ignore this message. If not, check out https://docs.alchemy.com/reference/throughput' } }),
      };
  }
}

module.exports = {
  KEYS,
  PROFILES,
  GETH,
  MAINNET_MERGE_CUTOFF,
  RpcError,
  resolveSettings,
  publicSettings,
  isGoFamily,
  errorFirst,
  batchTooLarge,
  methodNotFound,
  prunedHistory,
  prunedTxLookupFails,
  missingState,
  rangeError,
  resultsError,
  resultsCapSingleBlock,
  singleCallStatus,
  responseCap,
  rateLimited,
};
