"""The JSON-RPC node API (issue 13): what only JSON-RPC has.

The rest of the suite runs every scan, pushdown, fault and sync test over
both APIs; here are the server option `api`, EXPLAIN's account of the calls,
and how the wrapper meets what real nodes and providers do to JSON-RPC
clients (test/geth-server's profiles, POST /control/rpc, with the texts and
shapes of shared/node-limits.md):

- api: its values, and the default from the endpoint's path;
- EXPLAIN VERBOSE names the calls each request carries, and EXPLAIN ANALYZE
  counts the calls sent, both equal to the test server's log;
- a node without eth_getBlockReceipts (-32601: Geth 1.12, Cloudflare): the
  receipts come by eth_getTransactionReceipt, the method is tried in the
  first request of the scan only, and EXPLAIN ANALYZE says so;
- eth_getLogs under each profile's caps on blocks or results: split, go on,
  grow again, and never a partial result (a block over the cap is an error);
- batches over each profile's call limit (Geth, Erigon, Nethermind, Besu,
  Reth, Ankr shapes): fewer calls, remembered for the rest of the scan;
- rate limits (HTTP 429 with Retry-After, -32005, -32007): the same calls
  again; errors inside a batch name the call;
- pruned history (4444) and missing state: an error naming the block and
  the kind of node that can answer;
- nodes that send no blockTimestamp (Geth 1.12): block times from the headers;
- a batch answered in another order is the same answer; a reply missing or
  twice is an error;
- the keys the fast parser leaves out of results (jsonrpc.c's answer_skip)
  are read by nothing: the same rows when every answer goes to jansson whole.

Every result is compared with independent truth: the CSV files, or the same
query through the same test server's GraphQL (which no profile changes).
The tests start test servers of their own: a profile is server-wide.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
import urllib.request
from datetime import datetime, timezone
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql

from conftest import OwnServer, api_endpoint, read_csv, remote_text

pytestmark = pytest.mark.jsonrpc_only("the JSON-RPC API's own behaviour")

TRANSFER = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
TT_COLS = "block, tx_hash, log_index, token, from_address, to_address, amount, block_time"
TX_COLS = ("block, tx_index, hash, from_address, to_address, value, gas, gas_price, nonce, "
           "input_selector, status, gas_used, created_contract, block_time")


# --------------------------------------------------------------------------
# servers of our own, and reading their logs


@pytest.fixture(scope="module")
def chain_server():
    """A generated chain of light blocks (10-30 transactions), so that scans
    of a few hundred blocks stay quick."""
    s = OwnServer("--generate", "3000", "--seed", "13", "--txs-per-block", "10-30")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def csv_server(data_dir):
    """A server over the mainnet CSV files (the CSV tests' truth)."""
    s = OwnServer("--data", str(data_dir))
    yield s
    s.stop()


def _fresh(server):
    server.control.reset_rpc()
    server.control.clear_faults()
    server.control.clear_log()
    return server


@pytest.fixture
def node(chain_server):
    """The generated-chain server at Geth's profile, no faults, an empty log;
    put back after the test."""
    yield _fresh(chain_server)
    _fresh(chain_server)


@pytest.fixture
def csv_node(csv_server):
    yield _fresh(csv_server)
    _fresh(csv_server)


@pytest.fixture(autouse=True)
def bounded(pg):
    """A scan that loops on a node's refusals fails its test instead of
    hanging the suite."""
    pg.execute("SET statement_timeout = '90s'")
    yield
    pg.execute("RESET statement_timeout")


def rpc_entries(ctl) -> list[dict]:
    return [e for e in ctl.log() if e.get("path") == "/"]


def refused(e: dict) -> bool:
    """A request the node did not answer in full: an HTTP error, or error
    objects in the answer."""
    return e.get("status") != 200 or (e.get("rpcErrors") or 0) > 0


def calls_of(e: dict, method: str) -> list[dict]:
    return [c for c in e.get("rpc") or [] if c.get("method") == method]


def block_of(c: dict) -> int:
    return int(c["params"][0], 16)


def log_range(c: dict) -> tuple[int, int]:
    f = c["params"][0]
    return int(f["fromBlock"], 16), int(f["toBlock"], 16)


def error_text(e: psycopg.Error) -> str:
    d = e.diag
    return "\n".join(x for x in (d.message_primary, d.message_detail, d.message_hint, d.context) if x)


def plan_of(pg, q: str, args=None, analyze: bool = True) -> str:
    opts = "ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF" if analyze else "VERBOSE, COSTS OFF"
    return "\n".join(r[0] for r in pg.execute(f"EXPLAIN ({opts}) {q}", args).fetchall())


def node_notes(plan: str) -> str:
    m = re.search(r"Node Notes: (.*)", plan)
    assert m, f"no Node Notes line in EXPLAIN ANALYZE:\n{plan}"
    return m.group(1)


def make_server(pg, endpoint: str, **options) -> str:
    """A bare server (no tables) with the given options; its name."""
    import uuid
    name = "ew_rpc_" + uuid.uuid4().hex[:8]
    opts = {"endpoint": endpoint, **{k: str(v) for k, v in options.items()}}
    pg.execute(sql.SQL("CREATE SERVER {} FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS ({})").format(
        sql.Identifier(name), sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(k), sql.Literal(v))
                                                 for k, v in opts.items())))
    return name


# --------------------------------------------------------------------------
# the server option api


def test_api_option_values(pg, extension_ready, gen_endpoint):
    for bad in ("soap", "", "graphql,jsonrpc", "json-rpc"):
        with pytest.raises(psycopg.errors.InvalidParameterValue) as ei:
            make_server(pg, api_endpoint(gen_endpoint, "jsonrpc"), api=bad)
        assert 'invalid value for option "api"' in str(ei.value), str(ei.value)
        hint = ei.value.diag.message_hint or ""
        assert "graphql" in hint and "jsonrpc" in hint, hint
    name = make_server(pg, api_endpoint(gen_endpoint, "jsonrpc"), api="jsonrpc")
    try:
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            pg.execute(sql.SQL("ALTER SERVER {} OPTIONS (SET api 'rest')").format(sql.Identifier(name)))
        # a server option only: not a table's, not a user mapping's
        with pytest.raises(psycopg.errors.FdwInvalidOptionName):
            pg.execute(sql.SQL("CREATE FOREIGN TABLE pg_temp.t (number bigint) SERVER {} "
                               "OPTIONS (\"table\" 'block', api 'jsonrpc')").format(sql.Identifier(name)))
        with pytest.raises(psycopg.errors.FdwInvalidOptionName):
            pg.execute(sql.SQL("CREATE USER MAPPING FOR CURRENT_USER SERVER {} OPTIONS (api 'jsonrpc')")
                       .format(sql.Identifier(name)))
    finally:
        pg.execute(sql.SQL("DROP SERVER {} CASCADE").format(sql.Identifier(name)))


@pytest.mark.parametrize("path,options,want", [
    ("/graphql", {}, "graphql"),
    ("/graphql/", {}, "graphql"),
    ("/some/proxy/graphql?key=1", {}, "graphql"),
    ("/", {}, "jsonrpc"),
    ("", {}, "jsonrpc"),
    ("/v2/0123456789abcdef", {}, "jsonrpc"),        # a provider's URL with its key
    ("/graphql-proxy", {}, "jsonrpc"),              # the path does not end in /graphql
    ("/graphql", {"api": "jsonrpc"}, "jsonrpc"),    # the option wins over the path
    ("/", {"api": "graphql"}, "graphql"),
])
def test_api_default_follows_the_endpoint_path(pg, make_fdw, gen_endpoint, control, path, options, want):
    """Without the option, an endpoint whose path ends in /graphql is
    GraphQL and anything else JSON-RPC; EXPLAIN VERBOSE names the API, and
    EXPLAIN without ANALYZE sends nothing."""
    base = control(gen_endpoint).base
    f = make_fdw(base + path, node_api="graphql", **options)
    ctl = control(gen_endpoint)
    ctl.clear_log()
    plan = plan_of(pg, f"SELECT number, hash FROM {f.t('eth_block')} WHERE number BETWEEN 1 AND 5",
                   analyze=False)
    other = {"graphql": "jsonrpc", "jsonrpc": "graphql"}[want]
    assert remote_text(plan, want) and "Remote " + {"graphql": "GraphQL", "jsonrpc": "JSON-RPC"}[other] \
        not in plan, plan
    assert ctl.log() == [], "EXPLAIN without ANALYZE sent requests"


def test_api_switch_by_alter_server(pg, make_fdw, gen_endpoint, control):
    """ALTER SERVER ... api: the next query speaks the other API on the same
    URL's host (and a backend's cached connection follows)."""
    ctl = control(gen_endpoint)
    f = make_fdw(gen_endpoint, node_api="graphql")
    q = f"SELECT number, hash, miner FROM {f.t('eth_block')} WHERE number BETWEEN 10 AND 14 ORDER BY number"
    want = pg.execute(q).fetchall()
    assert len(want) == 5
    ctl.clear_log()
    pg.execute(sql.SQL("ALTER SERVER {} OPTIONS (ADD api 'jsonrpc', SET endpoint {})").format(
        sql.Identifier(f.server), sql.Literal(api_endpoint(gen_endpoint, "jsonrpc"))))
    assert pg.execute(q).fetchall() == want
    assert {e["path"] for e in ctl.log()} == {"/"}, [e["path"] for e in ctl.log()]
    ctl.clear_log()
    pg.execute(sql.SQL("ALTER SERVER {} OPTIONS (SET api 'graphql', SET endpoint {})").format(
        sql.Identifier(f.server), sql.Literal(gen_endpoint)))
    assert pg.execute(q).fetchall() == want
    assert {e["path"] for e in ctl.log()} == {"/graphql"}, [e["path"] for e in ctl.log()]


@pytest.mark.parametrize("sent,endpoint_api,hint", [
    ("jsonrpc", "graphql", "api 'graphql'"),
    ("graphql", "jsonrpc", "api 'jsonrpc'"),
])
def test_wrong_api_for_the_endpoint_is_a_clear_error(pg, make_fdw, gen_endpoint, sent, endpoint_api, hint):
    """A new user's likely mistake: JSON-RPC sent to a /graphql URL, or
    GraphQL to a JSON-RPC one.  An error that names the server and says
    which option to set, not rows."""
    f = make_fdw(api_endpoint(gen_endpoint, endpoint_api), node_api=endpoint_api, api=sent,
                 max_retries=0)
    with pytest.raises(psycopg.Error) as ei:
        pg.execute(f"SELECT number FROM {f.t('eth_block')} WHERE number BETWEEN 1 AND 3").fetchall()
    text = error_text(ei.value)
    assert f'"{f.server}"' in text and hint in text, text


# --------------------------------------------------------------------------
# EXPLAIN: what is sent


EXPLAIN_CASES = {
    # name: (table, columns, where, batch_blocks)
    "header columns": ("eth_block", "number, hash, miner, gas_used, tx_count", "number BETWEEN 100 AND 159", 20),
    "transaction columns": ("eth_tx", "block, hash, value", "block BETWEEN 100 AND 139", 20),
    "receipt columns": ("eth_tx", "hash, status, gas_used, created_contract", "block BETWEEN 100 AND 139", 20),
    "count": ("eth_tx", "count(*)", "block BETWEEN 100 AND 159", 25),
    "token transfers": ("eth_token_transfer", "block, log_index, amount", "block BETWEEN 100 AND 159", 30),
    "hash lookup": ("eth_tx", "block, value, status", "hash = %(hash)s", 20),
    "accounts at a block": ("eth_account", "address, balance, nonce, code_size",
                            "address = ANY(%(addrs)s) AND block = 150", 20),
}


@pytest.mark.parametrize("case", sorted(EXPLAIN_CASES))
def test_explain_names_the_calls_sent(pg, make_fdw, node, case):
    """EXPLAIN VERBOSE's Remote JSON-RPC line names exactly the methods the
    scan's requests carry ((full) or (hashes) as sent, xN the calls per
    batch), and EXPLAIN ANALYZE's count of calls is the log's."""
    table, cols, where, batch = EXPLAIN_CASES[case]
    f = make_fdw(node.endpoint, batch_blocks=batch)
    args = {}
    if "%(hash)s" in where:
        args["hash"] = pg.execute(f"SELECT hash FROM {f.t('eth_tx')} WHERE block = 120 LIMIT 1").fetchone()[0]
    if "%(addrs)s" in where:
        args["addrs"] = [r[0] for r in pg.execute(
            f"SELECT DISTINCT from_address FROM {f.t('eth_tx')} WHERE block BETWEEN 140 AND 145 LIMIT 30")]
    node.control.clear_log()
    plan = plan_of(pg, f"SELECT {cols} FROM {f.t(table)} WHERE {where}", args or None)
    line = remote_text(plan, "jsonrpc")
    entries = rpc_entries(node.control)
    assert entries and not any(refused(e) for e in entries), entries
    calls = [c for e in entries for c in e["rpc"]]
    sent = {c["method"] for c in calls} - {"eth_blockNumber"}    # a head look-up is not the scan's
    named = set(re.findall(r"eth_[A-Za-z]+", line)) - {"eth_blockNumber"}
    assert named == sent, f"{case}: EXPLAIN says {line!r}, the log has {sorted(sent)}"
    fulls = {c["params"][1] for c in calls if c["method"] == "eth_getBlockByNumber"}
    if fulls:
        assert len(fulls) == 1, fulls
        assert ("eth_getBlockByNumber(full)" in line) == (fulls == {True}), (line, fulls)
        assert ("eth_getBlockByNumber(hashes)" in line) == (fulls == {False}), (line, fulls)
    for method, n in re.findall(r"(eth_[A-Za-z]+)(?:\([a-z]+\))? x(\d+)", line):
        if method.startswith("eth_get") and method not in ("eth_getBalance", "eth_getTransactionCount", "eth_getCode"):
            most = max(len(calls_of(e, method)) for e in entries)
            assert most == int(n), f"{case}: EXPLAIN says {method} x{n}, the largest batch has {most}"
    m = re.search(r"Node Notes: (\d+) calls", plan)
    assert m and int(m.group(1)) == len(calls), (plan, len(calls))


# --------------------------------------------------------------------------
# a node without eth_getBlockReceipts


def receipt_truth(data_dir):
    receipts = read_csv(data_dir, "receipts.csv")
    blocks = sorted({int(r["block"]) for r in receipts})
    want = {r["tx_hash"]: (int(r["block"]), None if r["status"] == "" else int(r["status"]),
                           int(r["gas_used"]), r["contract_address"] or None) for r in receipts}
    return blocks, want


@pytest.mark.parametrize("profile", ["geth-1.12", "cloudflare"])
def test_receipts_fall_back_to_eth_getTransactionReceipt(pg, make_fdw, csv_node, data_dir, profile):
    """Geth before 1.13 answers -32601 for eth_getBlockReceipts, Cloudflare's
    gateway does not serve it: the receipt columns still equal receipts.csv.
    Only the scan's first request asks for eth_getBlockReceipts; the
    receipts then come by batched eth_getTransactionReceipt, one per
    transaction, and EXPLAIN ANALYZE says so."""
    blocks, want = receipt_truth(data_dir)
    assert len(blocks) >= 3 and any(w[1] == 0 for w in want.values()) and any(w[3] for w in want.values())
    ctl = csv_node.control
    ctl.set_rpc(profile=profile)
    f = make_fdw(csv_node.endpoint, batch_blocks=1)
    q = f"SELECT hash, block, status, gas_used, created_contract FROM {f.t('eth_tx')} WHERE block = ANY(%s)"
    ctl.clear_log()
    plan = plan_of(pg, q, [blocks])
    entries = [e for e in rpc_entries(ctl) if e.get("rpc")]
    with_block_receipts = [i for i, e in enumerate(entries) if calls_of(e, "eth_getBlockReceipts")]
    assert with_block_receipts == [0], \
        f"eth_getBlockReceipts asked in requests {with_block_receipts} of {len(entries)} (only the first should)"
    assert entries[0]["rpcErrors"] >= len(calls_of(entries[0], "eth_getBlockReceipts")), entries[0]
    by_hash = [c["params"][0] for e in entries for c in calls_of(e, "eth_getTransactionReceipt")]
    ntx = sum(int(b["tx_count"]) for b in read_csv(data_dir, "blocks.csv") if int(b["number"]) in blocks)
    assert len(by_hash) == len(set(by_hash)) == ntx, (len(by_hash), len(set(by_hash)), ntx)
    assert any(len(calls_of(e, "eth_getTransactionReceipt")) > 1 for e in entries), "receipts are batched"
    notes = node_notes(plan)
    m = re.search(r"(\d+) receipts by eth_getTransactionReceipt", notes)
    assert "eth_getBlockReceipts" in notes and m and int(m.group(1)) == ntx, notes

    got = {r[0]: r[1:] for r in pg.execute(q, [blocks]).fetchall()}
    assert want.keys() <= got.keys()
    assert {h: got[h] for h in want} == want


# --------------------------------------------------------------------------
# eth_getLogs under the providers' caps


def node_log_counts(ctl, lo, hi) -> dict[int, int]:
    """Transfer-topic logs per block, from the node's GraphQL (what a cap on
    results counts: ERC-721 Transfers too)."""
    status, body = ctl.graphql(
        "query($f: Long!, $t: Long!) { blocks(from: $f, to: $t) { number "
        "logs(filter: {topics: [[\"" + TRANSFER + "\"]]}) { index } } }", {"f": str(lo), "t": str(hi)})
    assert status == 200, body
    return {int(b["number"], 16): len(b["logs"]) for b in body["data"]["blocks"]}


def transfers(pg, f, lo, hi, extra=""):
    return pg.execute(f"SELECT {TT_COLS} FROM {f.t('eth_token_transfer')} WHERE block BETWEEN %s AND %s{extra} "
                      "ORDER BY block, log_index", (lo, hi)).fetchall()


def log_calls(ctl):
    """(from, to, refused) of each eth_getLogs request, in order."""
    out = []
    for e in rpc_entries(ctl):
        for c in calls_of(e, "eth_getLogs"):
            out.append((*log_range(c), refused(e)))
    return out


def assert_covered_once(calls, lo, hi):
    ok = sorted((a, b) for a, b, r in calls if not r)
    blocks = [n for a, b in ok for n in range(a, b + 1)]
    assert blocks == list(range(lo, hi + 1)), f"the answered eth_getLogs ranges do not cover {lo}..{hi} once: {ok}"


# profile -> the settings that make its block-range cap bite on a short scan
RANGE_CAPS = {
    "geth-ranged": {"logsMaxRange": 24},
    "erigon": {"logsMaxRange": 24, "logsMaxResults": 0},
    "reth": {"logsMaxRange": 24, "logsMaxResults": 0},
    "nethermind": {"logsMaxRange": 25, "logsMaxResults": 0},
    "besu": {"logsMaxRange": 24},
    "alchemy": {"logsMaxRange": 25, "logsMaxResults": 0},
    "infura": {"logsMaxRange": 24, "logsMaxResults": 0},
    "quicknode": {"logsMaxRange": 25},
    "ankr": {"logsMaxRange": 25, "logsMaxResults": 0},
    "cloudflare": {"logsMaxRange": 25},
}


@pytest.mark.parametrize("profile", sorted(RANGE_CAPS))
def test_getlogs_block_range_caps(pg, make_fdw, node, profile):
    """A node or provider refusing more than 25 blocks per eth_getLogs (each
    with its own code, text, HTTP status and suggested range): the scan asks
    for fewer blocks and goes on; every block's transfers come once, equal
    to the same scan over GraphQL, and the cap, once met, is kept (fewer
    refusals than answers)."""
    lo, hi = 1, 400
    truth = transfers(pg, make_fdw(node.endpoint, node_api="graphql"), lo, hi)
    assert len(truth) > 1000
    node.control.set_rpc(profile=profile, **RANGE_CAPS[profile])
    f = make_fdw(node.endpoint, batch_blocks=100, max_retries=1)
    node.control.clear_log()
    assert transfers(pg, f, lo, hi) == truth
    calls = log_calls(node.control)
    bad = [c for c in calls if c[2]]
    assert bad, f"{profile}: no eth_getLogs was refused: the cap never bit ({calls[:5]})"
    assert_covered_once(calls, lo, hi)
    assert all(b - a + 1 <= 25 for a, b, r in calls if not r), calls
    assert len(bad) < len(calls) - len(bad), f"{profile}: the cap was met again and again: {calls}"


# profile -> settings with a small cap on results (and none on blocks)
RESULT_CAPS = {
    "erigon": {"logsMaxRange": 0, "logsMaxResults": 120},
    "reth": {"logsMaxRange": 0, "logsMaxResults": 120},
    "nethermind": {"logsMaxRange": 0, "logsMaxResults": 120},
    "alchemy": {"logsMaxRange": 0, "logsMaxResults": 120},
    "infura": {"logsMaxRange": 0, "logsMaxResults": 120},
}


@pytest.mark.parametrize("profile", sorted(RESULT_CAPS))
def test_getlogs_result_caps(pg, make_fdw, node, profile):
    """A node or provider refusing more than 120 logs per eth_getLogs ("query
    returned more than 120 results. Try with this block range [...]",
    "retry with the range A-B", "Too many logs requested", ...): every
    answered range holds at most 120 of the node's logs, together they are
    the whole range once, the rows equal the GraphQL scan's, and after a
    refusal the scan tries larger ranges again (a cap on results is not a
    cap on blocks)."""
    lo, hi = 1, 300
    cap = RESULT_CAPS[profile]["logsMaxResults"]
    counts = node_log_counts(node.control, lo, hi)
    assert max(counts.values()) < cap < sum(counts.values()) / 10, (max(counts.values()), sum(counts.values()))
    truth = transfers(pg, make_fdw(node.endpoint, node_api="graphql"), lo, hi)
    node.control.set_rpc(profile=profile, **RESULT_CAPS[profile])
    f = make_fdw(node.endpoint, batch_blocks=100, max_retries=1)
    node.control.clear_log()
    assert transfers(pg, f, lo, hi) == truth
    calls = log_calls(node.control)
    assert any(r for *_, r in calls), f"{profile}: no eth_getLogs was refused ({calls[:5]})"
    assert_covered_once(calls, lo, hi)
    for a, b, r in calls:
        if not r:
            assert sum(counts.get(n, 0) for n in range(a, b + 1)) <= cap, (a, b)
    # grows again: after the first refusal, a later request asks for more
    # blocks than the answered one right after it
    first = next(i for i, c in enumerate(calls) if c[2])
    after = next(c for c in calls[first + 1:] if not c[2])
    later = calls[calls.index(after) + 1:]
    assert any(b - a > after[1] - after[0] for a, b, _ in later), f"{profile}: never grew again: {calls}"


@pytest.mark.parametrize("profile,fails", [("infura", True), ("alchemy", True), ("reth", False)])
def test_getlogs_one_block_over_the_result_cap(pg, make_fdw, node, profile, fails):
    """One block holds more logs than the cap: a provider that refuses even
    a one-block query leaves nothing to split, and the scan must fail
    naming that block rather than return the other blocks' rows; Reth
    answers a one-block query in full whatever its cap, and the scan
    succeeds."""
    lo, hi = 200, 230
    counts = node_log_counts(node.control, lo, hi)
    cap = max(counts.values()) - 1
    big = min(n for n, c in counts.items() if c > cap)
    truth = transfers(pg, make_fdw(node.endpoint, node_api="graphql"), lo, hi)
    node.control.set_rpc(profile=profile, logsMaxRange=0, logsMaxResults=cap)
    f = make_fdw(node.endpoint, batch_blocks=10, max_retries=0)
    if not fails:
        assert transfers(pg, f, lo, hi) == truth
        return
    with pytest.raises(psycopg.Error) as ei:
        transfers(pg, f, lo, hi)
    text = error_text(ei.value)
    assert ei.value.sqlstate == "HV000", (ei.value.sqlstate, text)
    assert f'"{f.server}"' in text and re.search(rf"\bblock {big}\b", text), text
    assert "eth_getLogs" in text, text


# --------------------------------------------------------------------------
# batches over the node's call limit


# profile -> settings: its limit (and reply shape) on calls per batch
BATCH_LIMITS = {
    "geth": {"maxBatch": 60},            # [{"id": first, "error": -32600 "batch too large"}]
    "erigon-3.3": {},                    # 100, one bare object, -32000 "batch limit 100 exceeded ..."
    "erigon": {},                        # 100, a list of one, -32600
    "nethermind": {"maxBatch": 60},      # HTTP 503, one object, -32005 "Batch size limit exceeded"
    "besu": {"maxBatch": 60},            # HTTP 200, one object, -32005 "Number of requests exceeds max batch size"
    "reth": {"maxBatch": 60},            # one object, -32010 "The batch request was too large"
    "ankr": {},                          # 10 (Public plan)
}


@pytest.mark.parametrize("profile", sorted(BATCH_LIMITS))
def test_batch_call_limits(pg, make_fdw, node, profile):
    """batch_blocks 250 with the receipt columns is 500 calls a batch: each
    profile refuses it its own way.  The scan sends fewer calls, the rows
    equal the GraphQL scan's, every block comes once, no answered batch is
    over the limit, and once a batch is answered no larger one is sent
    again (the limit is kept for the scan)."""
    lo, hi = 1, 600
    limit = BATCH_LIMITS[profile].get("maxBatch") or {"erigon-3.3": 100, "erigon": 100, "ankr": 10}[profile]
    q = (f"SELECT block, tx_index, hash, status, gas_used FROM {{t}} WHERE block BETWEEN {lo} AND {hi} "
         "ORDER BY block, tx_index")
    truth = pg.execute(q.format(t=make_fdw(node.endpoint, node_api="graphql").t("eth_tx"))).fetchall()
    node.control.set_rpc(profile=profile, **BATCH_LIMITS[profile])
    f = make_fdw(node.endpoint, batch_blocks=250, max_retries=1)
    node.control.clear_log()
    plan = plan_of(pg, q.format(t=f.t("eth_tx")))
    entries = [e for e in rpc_entries(node.control) if e.get("rpc")]
    assert any(refused(e) and len(e["rpc"]) > limit for e in entries), \
        f"{profile}: no batch was refused ({[len(e['rpc']) for e in entries]})"
    answered = [e for e in entries if not refused(e)]
    assert all(len(e["rpc"]) <= limit for e in answered), [len(e["rpc"]) for e in answered]
    blocks = sorted(block_of(c) for e in answered for c in calls_of(e, "eth_getBlockByNumber"))
    assert blocks == list(range(lo, hi + 1)), "each block once, in an answered batch"
    first_ok = entries.index(answered[0])
    assert not any(refused(e) for e in entries[first_ok:]), \
        f"{profile}: refused again after an answered batch: {[(len(e['rpc']), refused(e)) for e in entries]}"
    m = re.search(r"batches of at most (\d+) calls", node_notes(plan))
    assert m and int(m.group(1)) <= limit, node_notes(plan)
    assert pg.execute(q.format(t=f.t("eth_tx"))).fetchall() == truth


# --------------------------------------------------------------------------
# rate limits, and errors inside a batch


@pytest.mark.parametrize("style", ["alchemy", "infura", "quicknode"])
def test_rate_limits_are_retried(pg, make_fdw, node, style):
    """Every third request is turned away (Alchemy: HTTP 429 with
    Retry-After and code 429; Infura: 429 with -32005 "project ID request
    rate exceeded" and backoff_seconds; QuickNode: 429 with -32007): the
    same calls are sent again, EXPLAIN ANALYZE counts the retries, and the
    rows equal the GraphQL scan's."""
    q = "SELECT number, hash, miner, tx_count FROM {t} WHERE number BETWEEN 1 AND 300 ORDER BY number"
    truth = pg.execute(q.format(t=make_fdw(node.endpoint, node_api="graphql").t("eth_block"))).fetchall()
    node.control.set_rpc(rateLimit={"every": 3, "style": style, "retryAfter": 0})
    f = make_fdw(node.endpoint, batch_blocks=20, max_retries=2)
    node.control.clear_log()
    plan = plan_of(pg, q.format(t=f.t("eth_block")))
    entries = rpc_entries(node.control)
    limited = [i for i, e in enumerate(entries) if e.get("fault") == "rateLimit"]
    assert limited and all(entries[i]["status"] == 429 for i in limited), entries[:4]
    # each refused request was sent again, the same calls
    for i in limited:
        again = entries[i + 1] if i + 1 < len(entries) else None
        assert again and [(c["method"], c["params"]) for c in again["rpc"]] == \
            [(c["method"], c["params"]) for c in entries[i]["rpc"]], (entries[i]["rpc"][:2], again)
    m = re.search(r"Retries: (\d+)", plan)
    assert m and int(m.group(1)) == len(limited), plan
    node.control.clear_log()
    assert pg.execute(q.format(t=f.t("eth_block"))).fetchall() == truth


@pytest.mark.parametrize("shape", ["entry", "single"])
def test_rate_limit_inside_a_batch_is_retried(pg, make_fdw, node, shape):
    """-32005 "project ID request rate exceeded" at HTTP 200, for each call
    of the batch or for the whole batch, twice: retried, the right rows."""
    q = "SELECT number, hash FROM {t} WHERE number BETWEEN 300 AND 339 ORDER BY number"
    truth = pg.execute(q.format(t=make_fdw(node.endpoint, node_api="graphql").t("eth_block"))).fetchall()
    f = make_fdw(node.endpoint, batch_blocks=20, max_retries=2)
    node.control.set_faults([{"match": {"blocks": [300, 339]}, "fault": "rpcError", "times": 2, "shape": shape,
                              "code": -32005, "message": "project ID request rate exceeded"}])
    node.control.clear_log()
    assert pg.execute(q.format(t=f.t("eth_block"))).fetchall() == truth
    assert len([e for e in rpc_entries(node.control) if e.get("fault") == "rpcError"]) == 2


def test_persistent_rate_limit_fails_after_max_retries(pg, make_fdw, node):
    f = make_fdw(node.endpoint, batch_blocks=20, max_retries=2)
    node.control.set_faults([{"match": {"blocks": [300, 319]}, "fault": "rpcError", "shape": "single",
                              "http": 429, "code": -32005, "message": "project ID request rate exceeded"}])
    with pytest.raises(psycopg.Error) as ei:
        pg.execute(f"SELECT count(*) FROM {f.t('eth_block')} WHERE number BETWEEN 300 AND 319").fetchall()
    text = error_text(ei.value)
    assert "rate exceeded" in text and f'"{f.server}"' in text, text
    assert len([e for e in rpc_entries(node.control) if e.get("fault") == "rpcError"]) == 3


@pytest.mark.parametrize("table,method,named", [
    ("eth_block", "eth_getBlockByNumber", "eth_getBlockByNumber of block 300"),
    ("eth_tx", "eth_getBlockReceipts", "eth_getBlockReceipts of block 300"),
    ("eth_token_transfer", "eth_getLogs", "eth_getLogs from block 300"),
    ("eth_account", "eth_getCode", "eth_getCode of 0x"),
])
def test_an_error_inside_a_batch_names_the_call(pg, make_fdw, node, table, method, named):
    """One method's calls answer an error object (the other calls of the
    batch are fine): the ERROR quotes the node's message and code and names
    the call (method and block, or address)."""
    f = make_fdw(node.endpoint, batch_blocks=20, max_retries=1)
    q = {"eth_block": f"SELECT number, hash FROM {f.t('eth_block')} WHERE number BETWEEN 300 AND 319",
         "eth_tx": f"SELECT hash, status FROM {f.t('eth_tx')} WHERE block BETWEEN 300 AND 319",
         "eth_token_transfer": f"SELECT tx_hash FROM {f.t('eth_token_transfer')} WHERE block BETWEEN 300 AND 319",
         "eth_account": f"SELECT address, code_size FROM {f.t('eth_account')} "
                        "WHERE address = ANY(%(a)s) AND block = 300"}[table]
    addrs = [r[0] for r in pg.execute(f"SELECT DISTINCT from_address FROM {f.t('eth_tx')} "
                                      "WHERE block = 299 LIMIT 5")]
    node.control.set_faults([{"fault": "rpcError", "methods": f"^{method}$", "code": -32000,
                              "message": "ethwhale: this call failed"}])
    with pytest.raises(psycopg.Error) as ei:
        pg.execute(q, {"a": addrs}).fetchall()
    text = error_text(ei.value)
    assert ei.value.sqlstate == "HV000", (ei.value.sqlstate, text)
    assert named in text and "ethwhale: this call failed" in text and "-32000" in text, text
    faulted = [e for e in rpc_entries(node.control) if e.get("fault") == "rpcError"]
    assert len(faulted) == 1, "a node's error answer is not sent again"


# --------------------------------------------------------------------------
# pruned history and missing state


@pytest.mark.parametrize("profile", ["geth", "reth", "nethermind", "erigon"])
def test_pruned_history_names_the_block_and_the_node_needed(pg, make_fdw, node, profile):
    """Below the history cutoff (geth --history.chain postmerge: 4444
    "pruned history unavailable"; Erigon: "old data not available due to
    pruning"): blocks, transactions and logs there are an error naming the
    first block and the kind of node that has them; above it the same
    queries equal the GraphQL scan's."""
    node.control.set_rpc(profile=profile, historyCutoff=1000, logsMaxRange=0, logsMaxResults=0)
    g = make_fdw(node.endpoint, node_api="graphql")
    f = make_fdw(node.endpoint, batch_blocks=50, max_retries=1)
    for table, cols, col in (("eth_block", "number, hash", "number"), ("eth_tx", "hash, value, status", "block"),
                             ("eth_token_transfer", "tx_hash, log_index, amount", "block")):
        with pytest.raises(psycopg.Error) as ei:
            pg.execute(f"SELECT {cols} FROM {f.t(table)} WHERE {col} BETWEEN 950 AND 1049").fetchall()
        text = error_text(ei.value)
        assert ei.value.sqlstate == "HV000", (table, ei.value.sqlstate, text)
        assert re.search(r"\bblock 95\d\b", text) and "archive" in text.lower(), (table, text)
        q = f"SELECT {cols} FROM {{t}} WHERE {col} BETWEEN 1000 AND 1039 ORDER BY 1, 2"
        assert pg.execute(q.format(t=f.t(table))).fetchall() == pg.execute(q.format(t=g.t(table))).fetchall()


def test_pruned_mainnet_history_on_the_csv_data(pg, make_fdw, csv_node, data_dir):
    """The "pruned" profile: Geth --history.chain postmerge on mainnet (cut
    at the merge, block 15537393).  November 2015 is gone, with an error
    naming block 500000; May 2023 is there, equal to txs.csv."""
    csv_node.control.set_rpc(profile="pruned")
    f = make_fdw(csv_node.endpoint, max_retries=0)
    with pytest.raises(psycopg.Error) as ei:
        pg.execute(f"SELECT hash FROM {f.t('eth_tx')} WHERE block BETWEEN 500000 AND 500010").fetchall()
    text = error_text(ei.value)
    assert "block 500000" in text and "pruned history" in text and "archive" in text.lower(), text
    want = sorted((int(t["block"]), t["hash"], Decimal(t["value_wei"])) for t in read_csv(data_dir, "txs.csv")
                  if 17173049 <= int(t["block"]) <= 17173050)
    got = pg.execute(f"SELECT block, hash, value FROM {f.t('eth_tx')} WHERE block BETWEEN 17173049 AND 17173050 "
                     "ORDER BY 1, 2").fetchall()
    assert got == want and len(got) > 100


@pytest.mark.parametrize("profile,state_error", [("geth", "hash"), ("geth", "path"), ("geth", "historical"),
                                                 ("erigon", None), ("reth", None), ("nethermind", None),
                                                 ("besu", None)])
def test_missing_state_names_the_block_and_says_archive(pg, make_fdw, node, profile, state_error):
    """A full node keeps the state of its last blocks only (Geth's hash
    scheme 128: "missing trie node ..."; path scheme: "state 0x... is not
    available"; Reth "state at block #N is pruned"; Nethermind "No state
    available for block N"; Besu answers null): an account at an older
    block is an error naming that block and saying an archive node is
    needed, never a NULL or zero balance; at the head it equals the
    node's GraphQL answer."""
    settings = {"profile": profile, "stateWindow": 128}
    if state_error:
        settings["stateError"] = state_error
    head = node.control.head()
    g = make_fdw(node.endpoint, node_api="graphql")
    addrs = [r[0] for r in pg.execute(f"SELECT DISTINCT from_address FROM {g.t('eth_tx')} "
                                      "WHERE block = 500 ORDER BY 1 LIMIT 10")]
    q = "SELECT address, balance, nonce, code_size FROM {t} WHERE address = ANY(%s) AND block = %s ORDER BY 1"
    at_head = pg.execute(q.format(t=g.t("eth_account")), (addrs, head)).fetchall()
    node.control.set_rpc(**settings)
    f = make_fdw(node.endpoint, max_retries=1)
    assert pg.execute(q.format(t=f.t("eth_account")), (addrs, head)).fetchall() == at_head
    old = head - 1000
    with pytest.raises(psycopg.Error) as ei:
        rows = pg.execute(q.format(t=f.t("eth_account")), (addrs, old)).fetchall()
        pytest.fail(f"state the node does not have was returned as rows: {rows[:3]}")
    text = error_text(ei.value)
    assert f'"{f.server}"' in text and re.search(rf"\b{old}\b", text) and "archive" in text.lower(), text


# --------------------------------------------------------------------------
# nodes without blockTimestamp


def utc(ts) -> datetime:
    return datetime.fromtimestamp(int(ts), tz=timezone.utc)


def test_block_time_without_block_timestamp(pg, make_fdw, csv_node, data_dir):
    """Geth 1.12 sends no blockTimestamp in logs or transactions: block_time
    of token transfers, of a scan's transactions and of a hash lookup still
    equal blocks.csv (from the block headers), and EXPLAIN ANALYZE says the
    times came from the headers."""
    csv_node.control.set_rpc(profile="geth-1.12")
    ts = {int(b["number"]): utc(b["timestamp"]) for b in read_csv(data_dir, "blocks.csv")}
    tts = [r for r in read_csv(data_dir, "token_transfers.csv") if 17173049 <= int(r["block"]) <= 17173050]
    f = make_fdw(csv_node.endpoint)
    q = (f"SELECT tx_hash, log_index, block_time FROM {f.t('eth_token_transfer')} "
         "WHERE block BETWEEN 17173049 AND 17173050")
    got = {(r[0], r[1]): r[2] for r in pg.execute(q).fetchall()}
    assert got == {(r["tx_hash"], int(r["log_index"])): ts[int(r["block"])] for r in tts} and len(got) > 100
    assert "without blockTimestamp" in node_notes(plan_of(pg, q)), "EXPLAIN ANALYZE does not say so"
    # a log answer carries no time: headers were asked for
    assert any(calls_of(e, "eth_getBlockByNumber") for e in rpc_entries(csv_node.control))

    txs = [t for t in read_csv(data_dir, "txs.csv") if 500000 <= int(t["block"]) <= 500020]
    got = dict(pg.execute(f"SELECT hash, block_time FROM {f.t('eth_tx')} WHERE block BETWEEN 500000 AND 500020"
                          ).fetchall())
    assert got == {t["hash"]: ts[int(t["block"])] for t in txs} and got
    t = txs[3]
    assert pg.execute(f"SELECT block_time, value_eth FROM {f.t('eth_tx')} WHERE hash = %s", [t["hash"]]
                      ).fetchall() == [(ts[int(t["block"])], Decimal(t["value_wei"]).scaleb(-18))]


# --------------------------------------------------------------------------
# every column the same over both APIs


def assert_same_range_rows(pg, a, b, lo, hi):
    """Every column of eth_block, eth_tx and eth_token_transfer over blocks
    lo..hi: the same rows through the servers of a and b, at least 100."""
    for table, where, order in (("eth_block", "number BETWEEN %s AND %s", "number"),
                                ("eth_tx", "block BETWEEN %s AND %s", "block, tx_index"),
                                ("eth_token_transfer", "block BETWEEN %s AND %s", "block, log_index")):
        got = [pg.execute(f"SELECT * FROM {f.t(table)} WHERE {where} ORDER BY {order}", (lo, hi)).fetchall()
               for f in (a, b)]
        assert got[0] == got[1] and len(got[0]) >= 100, table


def test_both_apis_give_the_same_rows(pg, make_fdw, node):
    """Every column of eth_block, eth_tx (receipts included), eth_token_transfer
    and eth_account over the same blocks through GraphQL and JSON-RPC."""
    g = make_fdw(node.endpoint, node_api="graphql", batch_blocks=40)
    r = make_fdw(node.endpoint, batch_blocks=40)
    lo, hi = 1000, 1099
    assert_same_range_rows(pg, g, r, lo, hi)
    txs = pg.execute(f"SELECT * FROM {g.t('eth_tx')} WHERE block BETWEEN %s AND %s", (lo, hi)).fetchall()
    assert any(t[-4] == 0 for t in txs) and any(t[-2] is not None for t in txs), \
        "the blocks hold failed transactions and contract creations"
    addrs = sorted({t[3] for t in txs[:40]} | {t[-2] for t in txs if t[-2]})
    for cond, args in (("", ()), (" AND block = %s", (lo,)), (" AND block BETWEEN %s AND %s", (lo, lo + 2))):
        got = [pg.execute(f"SELECT * FROM {f.t('eth_account')} WHERE address = ANY(%s){cond} "
                          "ORDER BY address, block", (addrs, *args)).fetchall() for f in (g, r)]
        assert got[0] == got[1] and len(got[0]) >= len(addrs), cond
    h = txs[7][2]
    assert [pg.execute(f"SELECT * FROM {f.t('eth_tx')} WHERE hash = %s", (h,)).fetchall() for f in (g, r)] \
        == [[txs[7]]] * 2


# --------------------------------------------------------------------------
# the batch answer's order and completeness


class _Proxy(http.server.BaseHTTPRequestHandler):
    """Passes requests to the test server and changes the batch answers:
    mode "reverse" (the replies in the other order, which JSON-RPC allows),
    "drop" (the last reply left out), "twice" (the first reply sent twice);
    or every answer: "escape" (the first "jsonrpc": "2.0" written
    "2\\u002e0", the same value; counted in escaped)."""

    upstream = ""
    mode = "reverse"
    escaped: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        req = urllib.request.Request(self.upstream + self.path, data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            status, out = r.status, r.read()
        answer = json.loads(out)
        if isinstance(answer, list) and len(answer) > 1:
            if self.mode == "reverse":
                answer.reverse()
            elif self.mode == "drop":
                answer.pop()
            elif self.mode == "twice":
                answer.append(answer[0])
            out = json.dumps(answer).encode()
        if self.mode == "escape":
            text = json.dumps(answer)
            out = text.replace('"jsonrpc": "2.0"', '"jsonrpc": "2\\u002e0"', 1).encode()
            self.escaped.append(out != text.encode())
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


@pytest.fixture
def proxy(node):
    started = []
    handlers = []

    def start(mode: str) -> str:
        handler = type("Proxy", (_Proxy,), {"upstream": node.control.base, "mode": mode, "escaped": []})
        handlers.append(handler)
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        started.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}/"

    start.handlers = handlers
    yield start
    for srv in started:
        srv.shutdown()
        srv.server_close()


def test_batch_answered_in_another_order(pg, make_fdw, node, proxy):
    """JSON-RPC lets a server answer a batch in any order (Erigon answers
    calls concurrently): replies are matched by id, the rows are the same."""
    g = make_fdw(node.endpoint, node_api="graphql")
    f = make_fdw(proxy("reverse"), node_api="jsonrpc", batch_blocks=20)
    for q in ("SELECT {c} FROM {s}.eth_tx WHERE block BETWEEN 400 AND 459 ORDER BY block, tx_index",
              "SELECT {c} FROM {s}.eth_block WHERE number BETWEEN 400 AND 459 ORDER BY number"):
        cols = TX_COLS if "eth_tx" in q else "*"
        got = pg.execute(q.format(c=cols, s=f.schema)).fetchall()
        assert got == pg.execute(q.format(c=cols, s=g.schema)).fetchall() and len(got) >= 60


def test_keys_left_out_of_answers_are_read_by_nothing(pg, make_fdw, node, proxy):
    """jsonfast.c leaves out of a JSON-RPC result the keys no decoder reads
    (jsonrpc.c's answer_skip: logsBloom, signatures, a receipt's logs ...);
    an answer outside its subset (here: one escaped character, the same
    value) goes whole to jansson, every key kept.  Both give the same rows
    of every table: a listed key that something read would be missing on
    one side only (an error, or another value)."""
    direct = make_fdw(node.endpoint, node_api="jsonrpc", batch_blocks=40)
    whole = make_fdw(proxy("escape"), node_api="jsonrpc", batch_blocks=40)
    lo, hi = 1000, 1099
    assert_same_range_rows(pg, direct, whole, lo, hi)
    txs = pg.execute(f"SELECT * FROM {direct.t('eth_tx')} WHERE block BETWEEN %s AND %s", (lo, hi)).fetchall()
    h = txs[7][2]
    assert [pg.execute(f"SELECT * FROM {f.t('eth_tx')} WHERE hash = %s", (h,)).fetchall() for f in (direct, whole)] \
        == [[txs[7]]] * 2
    addrs = sorted({t[3] for t in txs[:20]})
    got = [pg.execute(f"SELECT * FROM {f.t('eth_account')} WHERE address = ANY(%s) AND block = %s "
                      "ORDER BY address", (addrs, lo)).fetchall() for f in (direct, whole)]
    assert got[0] == got[1] and len(got[0]) == len(addrs)
    escaped = proxy.handlers[0].escaped
    assert len(escaped) >= 5 and all(escaped), "every answer through the proxy went to jansson"


@pytest.mark.parametrize("mode", ["drop", "twice"])
def test_batch_answer_missing_or_doubled_reply(pg, make_fdw, proxy, mode):
    """A reply left out, or one sent twice: the answer is not the batch's,
    an error (HV004) naming the server, never rows."""
    f = make_fdw(proxy(mode), node_api="jsonrpc", batch_blocks=20, max_retries=0)
    with pytest.raises(psycopg.Error) as ei:
        pg.execute(f"SELECT number, hash FROM {f.t('eth_block')} WHERE number BETWEEN 400 AND 419").fetchall()
    text = error_text(ei.value)
    assert ei.value.sqlstate == "HV004" and f'"{f.server}"' in text, (ei.value.sqlstate, text)
