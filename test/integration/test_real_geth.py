"""ethwhale_fdw against a real Geth (go-ethereum 1.17.5) in dev mode.

The module fixture starts `geth --dev --dev.period 1` in $EW_GETH_DATADIR with
test/geth/start.sh, puts known transactions on the chain with test/geth/populate.py
(ETH transfers of 0 wei up to 10^40 wei, two contract creations, and Transfer logs of a
hand-assembled ERC-20-like token), and stops the node at the end with test/geth/stop.sh.

  * test_graphql_*: what Geth's own GraphQL endpoint answers (the ground truth the wrapper
    reads, and the facts the test server in test/geth-server imitates);
  * test_fdw_*: the foreign tables over that endpoint, compared with Geth's JSON-RPC
    (eth_getBlockByNumber) and with the manifest of what was sent.

Skipped (loudly) when GETH_BIN is empty: test/geth/install.sh could not build geth and
test/run prints the banner "*** REAL GETH TESTS SKIPPED: <reason> ***".
"""

from __future__ import annotations

import decimal
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import Control, to_int

GETH_DIR = Path(__file__).resolve().parents[1] / "geth"
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
DEV_ACCOUNT = "0x71562b71999873db5b286df957af199ec94617f7"

decimal.getcontext().prec = 100

SKIP_REASON = ("*** REAL GETH TESTS SKIPPED: GETH_BIN is empty: test/geth/install.sh could not "
               "build geth (see the banner of test/run and test/results/geth-install.log) ***")
# Every test of the module shows the reason (the fixtures of PostgreSQL would otherwise
# report theirs first).
pytestmark = pytest.mark.skipif(not os.environ.get("GETH_BIN"), reason=SKIP_REASON)


# --------------------------------------------------------------------------
# the node


@dataclass
class Geth:
    url: str          # JSON-RPC
    graphql: str      # url + /graphql
    datadir: Path
    manifest: dict

    @property
    def lo(self) -> int:
        return self.manifest["first_block"]

    @property
    def hi(self) -> int:
        return self.manifest["last_block"]

    def rpc(self, method: str, *params):
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                           "params": list(params)}).encode()
        req = urllib.request.Request(self.url, data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            ans = json.loads(r.read())
        assert "error" not in ans, (method, params, ans)
        return ans["result"]

    def gql(self, query: str, variables: dict | None = None, headers: dict | None = None):
        """POST to /graphql; returns (HTTP status, parsed JSON body or text)."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(self.graphql, data=body, method="POST",
                                     headers={"Content-Type": "application/json",
                                              **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw, status = r.read(), r.status
        except urllib.error.HTTPError as e:
            raw, status = e.read(), e.code
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def gql_ok(self, query: str, variables: dict | None = None) -> dict:
        status, body = self.gql(query, variables)
        assert status == 200 and isinstance(body, dict) and not body.get("errors"), (status, body)
        return body["data"]

    def head(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def rpc_block(self, n: int) -> dict:
        b = self.rpc("eth_getBlockByNumber", hex(n), True)
        assert b is not None, f"block {n} missing"
        return b


def _skip_loudly(msg: str):
    print("\n" + msg, file=sys.stderr)
    pytest.skip(msg)


def _run(cmd: list[str], timeout: float, what: str) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{what} timed out after {timeout}s: {e.stderr or ''}")
    if p.returncode != 0:
        pytest.fail(f"{what} failed with exit {p.returncode}:\n{p.stderr[-3000:]}")
    return p.stdout


@pytest.fixture(scope="module")
def geth():
    geth_bin = os.environ.get("GETH_BIN", "")
    if not geth_bin:
        _skip_loudly(SKIP_REASON)
    if not os.access(geth_bin, os.X_OK):
        pytest.fail(f"GETH_BIN={geth_bin} is not an executable")
    own_tmp = None
    datadir = os.environ.get("EW_GETH_DATADIR", "")
    if not datadir:
        own_tmp = tempfile.mkdtemp(prefix="ew-geth-")
        datadir = own_tmp
    datadir = Path(datadir)
    datadir.mkdir(parents=True, exist_ok=True)
    env_bin = {**os.environ, "GETH_BIN": geth_bin}
    try:
        p = subprocess.run([str(GETH_DIR / "start.sh"), str(datadir)], capture_output=True,
                           text=True, timeout=120, env=env_bin)
        if p.returncode != 0:
            pytest.fail(f"test/geth/start.sh failed with exit {p.returncode}:\n{p.stderr[-3000:]}")
        url = p.stdout.strip().splitlines()[-1]
        manifest_file = datadir / "manifest.json"
        _run([sys.executable, str(GETH_DIR / "populate.py"), url, "--out", str(manifest_file)],
             180, "test/geth/populate.py")
        manifest = json.loads(manifest_file.read_text())
        node = Geth(url=url, graphql=url + "/graphql", datadir=datadir, manifest=manifest)
        # A couple of blocks past the last transaction, so that nothing under test is the head.
        deadline = time.monotonic() + 30
        while node.head() < node.hi + 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        yield node
    finally:
        subprocess.run([str(GETH_DIR / "stop.sh"), str(datadir)], capture_output=True,
                       timeout=60)
        if own_tmp:
            shutil.rmtree(own_tmp, ignore_errors=True)


def tx_by_kind(geth: Geth, kind: str) -> list[dict]:
    return [t for t in geth.manifest["transactions"] if t["kind"] == kind]


def pad_topic(address: str) -> str:
    return "0x" + address[2:].rjust(64, "0")


# --------------------------------------------------------------------------
# (a) Geth's GraphQL endpoint itself

TX_QUERY = """
query ($h: Bytes32!) {
  transaction(hash: $h) {
    hash index value inputData
    from { address } to { address }
    block { number hash }
    status createdContract { address }
  }
}"""

BLOCKS_QUERY = """
query ($from: Long!, $to: Long!) {
  blocks(from: $from, to: $to) {
    number hash parent { hash } miner { address } timestamp gasUsed gasLimit baseFeePerGas
    transactionCount
    transactions { hash index from { address } to { address } value }
  }
}"""


def test_populate_manifest(geth):
    m = geth.manifest
    assert m["account"] == DEV_ACCOUNT
    assert m["chain_id"] == 1337
    kinds = [t["kind"] for t in m["transactions"]]
    assert kinds.count("create") == 1 and kinds.count("token_deploy") == 1
    assert kinds.count("transfer") >= 5 and kinds.count("token_transfer") == 3
    values = {int(t["value"]) for t in m["transactions"]}
    assert {0, 1, 1000 * 10**18, 12345678901234567890123, 10**40} <= values
    # several transactions share a block
    blocks = [t["block"] for t in m["transactions"]]
    assert len(set(blocks)) < len(blocks)


def test_graphql_transaction_by_hash(geth):
    for t in geth.manifest["transactions"]:
        d = geth.gql_ok(TX_QUERY, {"h": t["hash"]})["transaction"]
        assert d is not None, t
        assert d["hash"] == t["hash"]
        assert d["from"]["address"] == t["from"]
        assert (d["to"] or {}).get("address") == t["to"]
        # BigInt and Long come back as "0x…" hex strings
        assert isinstance(d["value"], str) and d["value"].startswith("0x"), d
        assert to_int(d["value"]) == int(t["value"])
        assert isinstance(d["block"]["number"], str) and d["block"]["number"].startswith("0x"), d
        assert to_int(d["block"]["number"]) == t["block"]
        assert d["block"]["hash"] == t["block_hash"]
        assert to_int(d["index"]) == t["index"]
        assert to_int(d["status"]) == 1
        assert (d["createdContract"] or {}).get("address") == t["contract"]
        assert d["inputData"] == t["input"]
    # plain transfers have empty input, "0x"
    plain = tx_by_kind(geth, "transfer")[0]
    assert geth.gql_ok(TX_QUERY, {"h": plain["hash"]})["transaction"]["inputData"] == "0x"


def test_graphql_unknown_transaction_is_null(geth):
    d = geth.gql_ok(TX_QUERY, {"h": "0x" + "ab" * 32})
    assert d == {"transaction": None}


def test_graphql_blocks_range(geth):
    lo, hi = geth.lo, geth.hi
    blocks = geth.gql_ok(BLOCKS_QUERY, {"from": lo, "to": hi})["blocks"]
    assert [to_int(b["number"]) for b in blocks] == list(range(lo, hi + 1))
    seen = {}
    for b in blocks:
        assert to_int(b["transactionCount"]) == len(b["transactions"])
        for i, tx in enumerate(b["transactions"]):
            assert to_int(tx["index"]) == i
            seen[tx["hash"]] = (to_int(b["number"]), tx)
    for t in geth.manifest["transactions"]:
        assert t["hash"] in seen, t
        n, tx = seen[t["hash"]]
        assert n == t["block"]
        assert tx["from"]["address"] == t["from"]
        assert (tx["to"] or {}).get("address") == t["to"]
        assert to_int(tx["value"]) == int(t["value"])
    # the same range, with the bounds as hex strings and as decimal strings
    for v in ({"from": hex(lo), "to": hex(hi)}, {"from": str(lo), "to": str(hi)}):
        again = geth.gql_ok(BLOCKS_QUERY, v)["blocks"]
        assert [b["hash"] for b in again] == [b["hash"] for b in blocks]


def test_graphql_blocks_match_json_rpc(geth):
    blocks = geth.gql_ok(BLOCKS_QUERY, {"from": geth.lo, "to": geth.hi})["blocks"]
    for b in blocks:
        r = geth.rpc_block(to_int(b["number"]))
        assert b["hash"] == r["hash"]
        assert b["parent"]["hash"] == r["parentHash"]
        assert b["miner"]["address"] == r["miner"]
        assert to_int(b["timestamp"]) == int(r["timestamp"], 16)
        assert to_int(b["gasUsed"]) == int(r["gasUsed"], 16)
        assert to_int(b["gasLimit"]) == int(r["gasLimit"], 16)
        assert to_int(b["baseFeePerGas"]) == int(r["baseFeePerGas"], 16)
        assert [(t["hash"], t["from"]["address"], (t["to"] or {}).get("address"),
                 to_int(t["value"])) for t in b["transactions"]] == \
               [(t["hash"], t["from"], t["to"], int(t["value"], 16)) for t in r["transactions"]]


def test_graphql_transfer_logs(geth):
    lo, hi = geth.lo, geth.hi
    token = geth.manifest["token"]["address"]
    q = """
    query ($f: Long!, $t: Long!, $topics: [[Bytes32!]!], $addr: [Address!]) {
      logs(filter: {fromBlock: $f, toBlock: $t, topics: $topics, addresses: $addr}) {
        index account { address } topics data
        transaction { hash block { number } }
      }
    }"""
    want = [(tr["tx"], tr["block"], tr["log_index"], tr["token"], tr["from"], tr["to"],
             int(tr["amount"])) for tr in geth.manifest["token_transfers"]]
    assert len(want) == 3

    def got(logs):
        out = []
        for lg in logs:
            assert lg["topics"][0] == TRANSFER_TOPIC
            out.append((lg["transaction"]["hash"], to_int(lg["transaction"]["block"]["number"]),
                        to_int(lg["index"]), lg["account"]["address"],
                        "0x" + lg["topics"][1][-40:], "0x" + lg["topics"][2][-40:],
                        int(lg["data"], 16)))
        return out

    logs = geth.gql_ok(q, {"f": lo, "t": hi, "topics": [[TRANSFER_TOPIC]]})["logs"]
    assert got(logs) == want
    # the same by token address
    logs = geth.gql_ok(q, {"f": lo, "t": hi, "addr": [token]})["logs"]
    assert got(logs) == want
    # topic positions: [] is a wildcard; topic2 = the recipient
    to = geth.manifest["token_transfers"][1]["to"]
    logs = geth.gql_ok(q, {"f": lo, "t": hi, "topics": [[TRANSFER_TOPIC], [], [pad_topic(to)]]})["logs"]
    assert got(logs) == [w for w in want if w[5] == to]
    # the amount 2^256-1 is data = 32 bytes of ff
    assert any(w[6] == 2**256 - 1 for w in want)


def test_graphql_head_edges(geth):
    """Facts the wrapper relies on: missing blocks, ranges past the head."""
    head = geth.head()
    far = head + 1000
    # a block that does not exist: null with HTTP 200
    assert geth.gql_ok("query($n: Long!) { block(number: $n) { number } }", {"n": far}) == {"block": None}
    # blocks(from beyond head) = []; to beyond head is cut at head
    assert geth.gql_ok("query($a: Long!, $b: Long!) { blocks(from: $a, to: $b) { number } }",
                       {"a": far, "b": far + 5}) == {"blocks": []}
    got = geth.gql_ok("query($a: Long!, $b: Long!) { blocks(from: $a, to: $b) { number } }",
                      {"a": head - 2, "b": far})["blocks"]
    nums = [to_int(b["number"]) for b in got]
    assert nums[:3] == [head - 2, head - 1, head] and nums == list(range(head - 2, head - 2 + len(nums)))
    # to < from is an error, answered with HTTP 400
    status, body = geth.gql("query($a: Long!, $b: Long!) { blocks(from: $a, to: $b) { number } }",
                            {"a": 5, "b": 4})
    assert status == 400 and body["errors"], (status, body)
    # logs(toBlock beyond head) is an error
    status, body = geth.gql("query($a: Long!, $b: Long!) { logs(filter: {fromBlock: $a, toBlock: $b}) { index } }",
                            {"a": geth.lo, "b": far})
    assert status == 400 and body["errors"], (status, body)


def test_graphql_host_header(geth):
    """--graphql.vhosts '*' (start.sh) accepts any Host; an IP always passes."""
    q = "{ block { number } }"
    for host in ("127.0.0.1", "localhost", "geth.example"):
        status, body = geth.gql(q, headers={"Host": host})
        assert status == 200 and to_int(body["data"]["block"]["number"]) >= geth.hi, (host, status, body)


# --------------------------------------------------------------------------
# (b) the foreign tables over the real node


def rpc_txs(geth: Geth, lo: int, hi: int) -> list[tuple]:
    out = []
    for n in range(lo, hi + 1):
        b = geth.rpc_block(n)
        for t in b["transactions"]:
            out.append((n, t["hash"], t["from"], t["to"], int(t["value"], 16)))
    return out


def test_fdw_tx_range_matches_json_rpc(geth, make_fdw, pg):
    f = make_fdw(geth.graphql)
    lo, hi = geth.lo, geth.hi
    rows = pg.execute(
        f"SELECT block, hash, from_address, to_address, value FROM {f.t('eth_tx')} "
        f"WHERE block BETWEEN %s AND %s ORDER BY block, tx_index", (lo, hi)).fetchall()
    expected = rpc_txs(geth, lo, hi)
    assert len(rows) == len(expected) == len(geth.manifest["transactions"])
    for got, want in zip(rows, expected):
        assert got[:4] == want[:4]
        assert isinstance(got[4], Decimal) and got[4] == want[4], (got, want)
    by_hash = {r[1]: r for r in rows}
    for t in geth.manifest["transactions"]:
        r = by_hash[t["hash"]]
        assert (r[0], r[2], r[3], r[4]) == (t["block"], t["from"], t["to"], Decimal(t["value"]))
    # contract creations have a NULL to_address
    creations = [t["hash"] for t in geth.manifest["transactions"] if t["contract"]]
    assert len(creations) == 2
    assert all(by_hash[h][3] is None for h in creations)


def test_fdw_tx_count_and_sum(geth, make_fdw, pg):
    f = make_fdw(geth.graphql)
    lo, hi = geth.lo, geth.hi
    n, total = pg.execute(
        f"SELECT count(*), sum(value) FROM {f.t('eth_tx')} WHERE block BETWEEN %s AND %s",
        (lo, hi)).fetchone()
    expected = rpc_txs(geth, lo, hi)
    assert n == len(expected)
    assert total == sum(e[4] for e in expected)


def test_fdw_block_matches_json_rpc(geth, make_fdw, pg):
    f = make_fdw(geth.graphql)
    lo, hi = geth.lo - 1, geth.hi + 1
    rows = pg.execute(
        f"SELECT number, hash, parent_hash, miner FROM {f.t('eth_block')} "
        f"WHERE number BETWEEN %s AND %s ORDER BY number", (lo, hi)).fetchall()
    expected = []
    for n in range(lo, hi + 1):
        b = geth.rpc_block(n)
        expected.append((n, b["hash"], b["parentHash"], b["miner"]))
    assert rows == expected
    assert all(r[3] == DEV_ACCOUNT for r in rows)


def test_fdw_block_other_columns(geth, make_fdw, pg):
    f = make_fdw(geth.graphql)
    lo, hi = geth.lo, geth.hi
    rows = pg.execute(
        f"SELECT number, timestamp, gas_used, gas_limit, base_fee_per_gas, tx_count "
        f"FROM {f.t('eth_block')} WHERE number BETWEEN %s AND %s ORDER BY number",
        (lo, hi)).fetchall()
    expected = []
    for n in range(lo, hi + 1):
        b = geth.rpc_block(n)
        expected.append((n, datetime.fromtimestamp(int(b["timestamp"], 16), timezone.utc),
                         int(b["gasUsed"], 16), int(b["gasLimit"], 16),
                         int(b["baseFeePerGas"], 16), len(b["transactions"])))
    assert rows == expected


def test_fdw_hash_lookup(geth, make_fdw, pg):
    f = make_fdw(geth.graphql)
    for t in geth.manifest["transactions"]:
        rows = pg.execute(
            f"SELECT block, hash, from_address, to_address, value FROM {f.t('eth_tx')} "
            f"WHERE hash = %s", (t["hash"],)).fetchall()
        assert rows == [(t["block"], t["hash"], t["from"], t["to"], Decimal(t["value"]))], t
    rows = pg.execute(f"SELECT * FROM {f.t('eth_tx')} WHERE hash = %s",
                      ("0x" + "ab" * 32,)).fetchall()
    assert rows == []


def test_fdw_value_eth_exact(geth, make_fdw, pg):
    f = make_fdw(geth.graphql)
    want = {
        12345678901234567890123: Decimal("12345.678901234567890123"),
        1000 * 10**18: Decimal(1000),
        1: Decimal("0.000000000000000001"),
        10**40: Decimal(10**22),
    }
    by_value = {int(t["value"]): t for t in tx_by_kind(geth, "transfer")}
    for wei, eth in want.items():
        t = by_value[wei]
        row = pg.execute(f"SELECT value, value_eth FROM {f.t('eth_tx')} WHERE hash = %s",
                         (t["hash"],)).fetchone()
        assert row[0] == wei and row[1] == eth, (row, wei, eth)


# --------------------------------------------------------------------------
# eth_token_transfer and eth_account: IMPORT FOREIGN SCHEMA has made them
# since issue 4 (README, sql/tokens.sql); one that goes missing is a
# failure, not a skip that would hide every check below


def _require_table(pg, f, table: str) -> None:
    row = pg.execute("SELECT 1 FROM information_schema.tables "
                     "WHERE table_schema = %s AND table_name = %s", (f.schema, table)).fetchone()
    assert row is not None, f"IMPORT FOREIGN SCHEMA ethereum did not create {table}"


def test_fdw_token_transfers(geth, make_fdw, pg):
    f = make_fdw(geth.graphql)
    _require_table(pg, f, "eth_token_transfer")
    rows = pg.execute(
        f"SELECT block, tx_hash, log_index, token, from_address, to_address, amount "
        f"FROM {f.t('eth_token_transfer')} WHERE block BETWEEN %s AND %s "
        f"ORDER BY block, log_index", (geth.lo, geth.hi)).fetchall()
    want = [(tr["block"], tr["tx"], tr["log_index"], tr["token"], tr["from"], tr["to"],
             Decimal(tr["amount"])) for tr in geth.manifest["token_transfers"]]
    assert rows == want


def test_fdw_accounts(geth, make_fdw, pg):
    f = make_fdw(geth.graphql)
    _require_table(pg, f, "eth_account")
    token = geth.manifest["token"]["address"]
    whale = "0xabcdefabcdefabcdefabcdefabcdefabcdefabcd"
    rows = pg.execute(
        f"SELECT address, balance, code_size, is_contract FROM {f.t('eth_account')} "
        f"WHERE address = ANY(%s) ORDER BY address", ([token, whale],)).fetchall()
    expected = sorted(
        (a, Decimal(int(geth.rpc("eth_getBalance", a, "latest"), 16)),
         (len(geth.rpc("eth_getCode", a, "latest")) - 2) // 2, a == token)
        for a in (token, whale))
    assert rows == expected
    assert rows[0 if rows[0][0] == whale else 1][1] == 10**40


# --------------------------------------------------------------------------
# independent truth from Geth's own JSON-RPC (issue 18): receipts, nonces,
# accounts, a backward scan and a sync. These run last: the first one adds a
# failing transaction to the chain, after the manifest's blocks.


def _failing_creation(geth: Geth) -> dict:
    """A contract creation whose init code reverts (PUSH1 0 PUSH1 0 REVERT):
    mined with status 0. Geth still reports the would-be contractAddress in the
    receipt (and GraphQL's createdContract), so created_contract is not NULL.
    Sent once per module."""
    if "failing" not in geth.manifest:
        h = geth.rpc("eth_sendTransaction", {"from": DEV_ACCOUNT, "input": "0x60006000fd",
                                             "gas": hex(100000)})
        deadline = time.monotonic() + 30
        while True:
            r = geth.rpc("eth_getTransactionReceipt", h)
            if r is not None and r.get("blockNumber"):
                break
            assert time.monotonic() < deadline, "the failing creation was not mined"
            time.sleep(0.3)
        geth.manifest["failing"] = {"hash": h.lower(), "block": int(r["blockNumber"], 16),
                                    "contract": (r.get("contractAddress") or "").lower() or None}
        assert int(r["status"], 16) == 0, r
        deadline = time.monotonic() + 30
        while geth.head() < int(r["blockNumber"], 16) + 1 and time.monotonic() < deadline:
            time.sleep(0.3)
    return geth.manifest["failing"]


def _rpc_tx_truth(geth: Geth, lo: int, hi: int) -> dict:
    """hash -> (block, index, from, to, value, gas, gas_price, nonce, status, gas_used,
    created_contract), from eth_getBlockByNumber, eth_getTransactionByHash and
    eth_getTransactionReceipt."""
    out = {}
    for n in range(lo, hi + 1):
        for t in geth.rpc_block(n)["transactions"]:
            tx = geth.rpc("eth_getTransactionByHash", t["hash"])
            rc = geth.rpc("eth_getTransactionReceipt", t["hash"])
            out[t["hash"].lower()] = (
                n, int(tx["transactionIndex"], 16), tx["from"].lower(),
                tx["to"].lower() if tx.get("to") else None, Decimal(int(tx["value"], 16)),
                int(tx["gas"], 16), Decimal(int(rc["effectiveGasPrice"], 16)), int(tx["nonce"], 16),
                int(rc["status"], 16), int(rc["gasUsed"], 16),
                rc["contractAddress"].lower() if rc.get("contractAddress") else None)
    return out


TX_TRUTH_COLUMNS = ("block, tx_index, from_address, to_address, value, gas, gas_price, nonce, "
                    "status, gas_used, created_contract")


def test_fdw_receipts_and_nonces_match_json_rpc(geth, make_fdw, pg):
    failing = _failing_creation(geth)
    lo, hi = geth.lo, failing["block"]
    want = _rpc_tx_truth(geth, lo, hi)
    f = make_fdw(geth.graphql)
    got = {r[0]: tuple(r[1:]) for r in pg.execute(
        f"SELECT hash, {TX_TRUTH_COLUMNS} FROM {f.t('eth_tx')} WHERE block BETWEEN %s AND %s", (lo, hi))}
    assert got == want
    assert got[failing["hash"]][8] == 0 and got[failing["hash"]][10] == failing["contract"]
    assert sum(1 for v in want.values() if v[10] is not None and v[8] == 1) == 2, "two contract creations"
    assert sum(1 for v in want.values() if v[8] == 0) == 1, "one failed transaction"
    assert sorted(v[7] for v in want.values() if v[2] == DEV_ACCOUNT) == list(
        range(min(v[7] for v in want.values()), min(v[7] for v in want.values()) + len(want))), \
        "the dev account's nonces run without gaps"
    assert max(v[7] for v in want.values()) >= 10
    # by hash (transaction(hash:)) too
    for h in (failing["hash"], next(h for h, v in want.items() if v[10] is not None)):
        row = pg.execute(f"SELECT {TX_TRUTH_COLUMNS} FROM {f.t('eth_tx')} WHERE hash = %s", (h,)).fetchone()
        assert tuple(row) == want[h]


def test_fdw_account_matches_json_rpc(geth, make_fdw, pg):
    f = make_fdw(geth.graphql)
    _require_table(pg, f, "eth_account")
    addrs = sorted({DEV_ACCOUNT, geth.manifest["token"]["address"],
                    *(t["to"] for t in geth.manifest["transactions"] if t["to"]),
                    *(t["contract"] for t in geth.manifest["transactions"] if t["contract"]),
                    "0x" + "00" * 19 + "01"})
    assert len(addrs) >= 6
    for block in (geth.lo - 1, geth.lo, geth.hi):
        got = pg.execute(f"SELECT address, block, balance, balance_eth, nonce, code_size, is_contract "
                         f"FROM {f.t('eth_account')} WHERE address = ANY(%s) AND block = %s ORDER BY address",
                         (addrs, block)).fetchall()
        want = []
        for a in addrs:
            bal = int(geth.rpc("eth_getBalance", a, hex(block)), 16)
            code = geth.rpc("eth_getCode", a, hex(block))
            want.append((a, block, Decimal(bal), Decimal(bal).scaleb(-18),
                         int(geth.rpc("eth_getTransactionCount", a, hex(block)), 16),
                         (len(code) - 2) // 2, code != "0x"))
        assert got == want, block
    # at the head: the dev account's state does not change while no one sends
    got = pg.execute(f"SELECT balance, nonce FROM {f.t('eth_account')} WHERE address = %s",
                     (DEV_ACCOUNT,)).fetchone()
    assert got == (Decimal(int(geth.rpc("eth_getBalance", DEV_ACCOUNT, "latest"), 16)),
                   int(geth.rpc("eth_getTransactionCount", DEV_ACCOUNT, "latest"), 16))
    assert got[1] > 10 and got[0] > 0


def test_fdw_backward_scan_matches_json_rpc(geth, make_fdw, pg):
    f = make_fdw(geth.graphql)
    before = geth.head()
    rows = pg.execute(f"SELECT number, hash, parent_hash FROM {f.t('eth_block')} "
                      f"ORDER BY number DESC LIMIT 7").fetchall()
    after = geth.head()
    assert len(rows) == 7
    top = rows[0][0]
    assert before <= top <= after, (before, top, after)
    assert [r[0] for r in rows] == list(range(top, top - 7, -1))
    for n, h, p in rows:
        b = geth.rpc_block(n)
        assert (h, p) == (b["hash"], b["parentHash"])
    # the newest transactions, read backwards from the head over empty blocks
    failing = _failing_creation(geth)
    txs = pg.execute(f"SELECT block, tx_index, hash FROM {f.t('eth_tx')} "
                     f"ORDER BY block DESC, tx_index DESC LIMIT 3").fetchall()
    want = []
    n = geth.head()
    while len(want) < 3 and n >= 0:
        for t in reversed(geth.rpc_block(n)["transactions"]):
            want.append((n, int(t["transactionIndex"], 16), t["hash"].lower()))
        n -= 1
    assert txs == want[:3]
    assert txs[0][2] == failing["hash"]


@pytest.mark.parametrize("api", ["graphql", "jsonrpc"])
def test_fdw_sync_matches_json_rpc(geth, pg, extension_ready, api):
    import psycopg
    import uuid as _uuid
    from psycopg import sql as _sql

    failing = _failing_creation(geth)
    lo, hi = geth.lo - 1, failing["block"]
    db = "ew_geth_sync_" + _uuid.uuid4().hex[:8]
    pg.execute(_sql.SQL("CREATE DATABASE {}").format(_sql.Identifier(db)))
    try:
        with psycopg.connect(dbname=db, autocommit=True) as c:
            c.execute("CREATE EXTENSION ethwhale_fdw")
            c.execute(_sql.SQL("CREATE SERVER geth FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint {}, api {})")
                      .format(_sql.Literal(geth.graphql if api == "graphql" else geth.url),
                              _sql.Literal(api)))
            c.execute("CREATE USER MAPPING FOR CURRENT_USER SERVER geth")
            c.execute("SET ethwhale.sync_batch_blocks = 3")
            c.execute("CALL ethwhale.sync('geth', %s, %s)", (lo, hi))
            blocks = c.execute("SELECT number, hash, parent_hash, timestamp, miner, gas_used, gas_limit, "
                               "base_fee_per_gas, tx_count FROM ethwhale.blocks ORDER BY number").fetchall()
            txs = {r[0]: tuple(r[1:]) for r in c.execute(
                f"SELECT hash, {TX_TRUTH_COLUMNS} FROM ethwhale.txs")}
            tts = c.execute("SELECT block, tx_hash, log_index, token, from_address, to_address, amount "
                            "FROM ethwhale.token_transfers ORDER BY block, log_index").fetchall()
    finally:
        pg.execute(_sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(_sql.Identifier(db)))

    want_blocks = []
    for n in range(lo, hi + 1):
        b = geth.rpc_block(n)
        want_blocks.append((n, b["hash"], b["parentHash"],
                            datetime.fromtimestamp(int(b["timestamp"], 16), timezone.utc), b["miner"],
                            int(b["gasUsed"], 16), int(b["gasLimit"], 16), Decimal(int(b["baseFeePerGas"], 16)),
                            len(b["transactions"])))
    assert blocks == want_blocks
    assert txs == _rpc_tx_truth(geth, lo, hi) and len(txs) >= 10
    logs = geth.rpc("eth_getLogs", {"fromBlock": hex(lo), "toBlock": hex(hi), "topics": [TRANSFER_TOPIC]})
    want_tt = [(int(l["blockNumber"], 16), l["transactionHash"].lower(), int(l["logIndex"], 16),
                l["address"].lower(), "0x" + l["topics"][1][-40:], "0x" + l["topics"][2][-40:],
                Decimal(int(l["data"], 16)))
               for l in logs if len(l["topics"]) == 3 and len(l["data"]) == 66]
    assert len(want_tt) >= 3 and tts == want_tt


# --------------------------------------------------------------------------
# the two node APIs (issue 13): every column of every table read through
# Geth's GraphQL and through its JSON-RPC is the same, and the JSON-RPC side
# is what Geth's own JSON-RPC answers


def _both_apis(geth: Geth, make_fdw):
    g = make_fdw(geth.graphql, api="graphql")
    r = make_fdw(geth.url, api="jsonrpc")
    return g, r


def test_fdw_apis_agree_on_every_column(geth, make_fdw, pg):
    failing = _failing_creation(geth)
    lo, hi = geth.lo - 1, failing["block"] + 1
    g, r = _both_apis(geth, make_fdw)
    for table, order, where in (("eth_block", "number", "number BETWEEN %s AND %s"),
                                ("eth_tx", "block, tx_index", "block BETWEEN %s AND %s"),
                                ("eth_token_transfer", "block, log_index", "block BETWEEN %s AND %s")):
        got = [pg.execute(f"SELECT * FROM {f.t(table)} WHERE {where} ORDER BY {order}",
                          (lo, hi)).fetchall() for f in (g, r)]
        assert got[0] == got[1], table
        assert len(got[0]) >= (3 if table == "eth_token_transfer" else 10), table
    # the JSON-RPC side against Geth's own answers
    want = _rpc_tx_truth(geth, lo, hi)
    got = {row[0]: tuple(row[1:]) for row in pg.execute(
        f"SELECT hash, {TX_TRUTH_COLUMNS} FROM {r.t('eth_tx')} WHERE block BETWEEN %s AND %s", (lo, hi))}
    assert got == want
    # hash lookups, and the pushed joins
    for h in want:
        rows = [pg.execute(f"SELECT * FROM {f.t('eth_tx')} WHERE hash = %s", (h,)).fetchall() for f in (g, r)]
        assert rows[0] == rows[1] and len(rows[0]) == 1, h
    for f_sql in ("SELECT x.hash, x.value, b.miner, b.timestamp, b.base_fee_per_gas FROM {s}.eth_tx x "
                  "JOIN {s}.eth_block b ON b.number = x.block WHERE x.block BETWEEN %s AND %s "
                  "ORDER BY x.block, x.tx_index",
                  "SELECT t.tx_hash, t.amount, x.from_address, x.gas_used, x.status FROM {s}.eth_token_transfer t "
                  "JOIN {s}.eth_tx x ON x.hash = t.tx_hash WHERE t.block BETWEEN %s AND %s "
                  "ORDER BY t.block, t.log_index"):
        rows = [pg.execute(f_sql.format(s=f.schema), (lo, hi)).fetchall() for f in (g, r)]
        assert rows[0] == rows[1] and rows[0], f_sql


def test_fdw_apis_agree_on_accounts(geth, make_fdw, pg):
    g, r = _both_apis(geth, make_fdw)
    addrs = sorted({DEV_ACCOUNT, geth.manifest["token"]["address"],
                    *(t["to"] for t in geth.manifest["transactions"] if t["to"]),
                    *(t["contract"] for t in geth.manifest["transactions"] if t["contract"])})
    for cond, args in (("", ()), (" AND block = %s", (geth.lo,)),
                       (" AND block BETWEEN %s AND %s", (geth.lo, geth.hi))):
        rows = [pg.execute(f"SELECT * FROM {f.t('eth_account')} WHERE address = ANY(%s){cond} "
                           "ORDER BY address, block", (addrs, *args)).fetchall() for f in (g, r)]
        assert rows[0] == rows[1] and len(rows[0]) >= len(addrs), cond
    # the JSON-RPC side at a block, against eth_getBalance / eth_getCode
    for a, bal, code_size in pg.execute(
            f"SELECT address, balance, code_size FROM {r.t('eth_account')} "
            "WHERE address = ANY(%s) AND block = %s", (addrs, geth.hi)).fetchall():
        assert bal == int(geth.rpc("eth_getBalance", a, hex(geth.hi)), 16)
        assert code_size == (len(geth.rpc("eth_getCode", a, hex(geth.hi))) - 2) // 2


def test_fdw_jsonrpc_explain_names_the_calls(geth, make_fdw, pg):
    _, r = _both_apis(geth, make_fdw)
    plan = "\n".join(row[0] for row in pg.execute(
        f"EXPLAIN (VERBOSE, ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
        f"SELECT hash, status FROM {r.t('eth_tx')} WHERE block BETWEEN %s AND %s",
        (geth.lo, geth.hi)).fetchall())
    assert "Remote JSON-RPC: eth_getBlockByNumber(full) x100 per batch, eth_getBlockReceipts x100" in plan
    # Geth 1.17 serves eth_getBlockReceipts: no fallback
    assert "not served" not in plan
    n = geth.hi - geth.lo + 1
    assert f"Node Notes: {2 * n} calls" in plan, plan


@pytest.mark.parametrize("node_api", ["graphql", "jsonrpc"])
def test_fdw_node_chain_id_matches_eth_chain_id(geth, make_fdw, pg, node_api):
    """ethwhale.node_chain_id over either API is Geth's own eth_chainId (1337 in
    dev mode), and Geth's GraphQL chainID says the same."""
    want = int(geth.rpc("eth_chainId"), 16)
    assert want == 1337 == geth.manifest["chain_id"]
    assert int(geth.gql_ok("{ chainID }")["chainID"], 16) == want
    f = make_fdw(geth.graphql, node_api=node_api)
    assert pg.execute("SELECT ethwhale.node_chain_id(%s)", (f.server,)).fetchone() == (want,)
