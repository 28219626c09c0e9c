"""eth_account and the whales' contract exclusion against real account state (issue 18).

shared/data/accounts/accounts.csv holds the real balance, nonce and contract
flag of every account that block B+1 touches, as of the end of block B. The
test server over that directory (conftest `accounts_server`) serves exactly
that and answers like a pruned Geth elsewhere. Expected values come from the
CSV, parsed here:

- eth_account balance / balance_eth / nonce / code_size / is_contract at every
  block of accounts.csv, for every address it lists;
- the head (no state in the data) and an address missing at a covered block
  are errors quoting the node, never zeros;
- ethwhale.address_info and whale_candidates after a sync of one real block N
  with the head at N-1 (so the node knows every address of N): contract flags
  equal the CSV's, and the exclusion reasons follow the real labels.csv and the
  CSV's contract flag.

Every test runs over GraphQL and JSON-RPC (eth_getBalance,
eth_getTransactionCount and eth_getCode at the block).
"""

from __future__ import annotations

import shutil
import uuid
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, getcontext

import psycopg
import pytest
from psycopg import sql

from conftest import api_endpoint, read_csv

getcontext().prec = 100

# README "Sync and whale analytics": categories excluded by label.
from test_whales_mainnet import EXCLUDED_CATEGORIES  # noqa: E402  (one list of the seeds)


def state_rows(accounts_dir) -> dict[int, dict[str, dict]]:
    out: dict[int, dict[str, dict]] = {}
    for r in read_csv(accounts_dir, "accounts.csv"):
        out.setdefault(int(r["block"]), {})[r["address"]] = r
    return out


def test_eth_account_equals_accounts_csv(pg, make_fdw, accounts_server, accounts_dir):
    state = state_rows(accounts_dir)
    assert len(state) >= 80
    f = make_fdw(accounts_server.endpoint)
    n = contracts = rich = nonced = 0
    for block, rows in sorted(state.items()):
        got = {r[0]: r[1:] for r in pg.execute(
            f"SELECT address, block, balance, balance_eth, nonce, code_size, is_contract "
            f"FROM {f.t('eth_account')} WHERE address = ANY(%s) AND block = %s",
            [sorted(rows), block])}
        assert got.keys() == rows.keys(), block
        for a, r in rows.items():
            wei = int(r["balance_wei"])
            is_contract = r["is_contract"] == "t"
            g = got[a]
            assert g[:4] == (block, Decimal(wei), Decimal(wei).scaleb(-18), int(r["nonce"])), (block, a, g)
            assert g[5] is is_contract and (g[4] > 0) is is_contract, (block, a, g)
            n += 1
            contracts += is_contract
            rich += wei > 10**21
            nonced += int(r["nonce"]) > 100
    assert n == sum(len(v) for v in state.values()) > 30000
    assert contracts > 5000 and rich > 500 and nonced > 1000


def test_eth_account_history_of_one_address(pg, make_fdw, accounts_server, accounts_dir):
    """An address known at many blocks (WETH: 58): block IN (...) gives each block's state."""
    state = state_rows(accounts_dir)
    weth = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
    blocks = sorted(b for b, rows in state.items() if weth in rows)
    assert len(blocks) >= 50
    f = make_fdw(accounts_server.endpoint)
    got = pg.execute(f"SELECT block, balance, nonce, is_contract FROM {f.t('eth_account')} "
                     f"WHERE address = %s AND block = ANY(%s) ORDER BY block", [weth, blocks]).fetchall()
    want = [(b, Decimal(state[b][weth]["balance_wei"]), int(state[b][weth]["nonce"]), True) for b in blocks]
    assert got == want
    assert len({g[1] for g in got}) > 40, "WETH's balance changes between these blocks"


def test_eth_account_without_state_is_an_error_not_zero(pg, make_fdw, accounts_server, accounts_dir):
    state = state_rows(accounts_dir)
    f = make_fdw(accounts_server.endpoint)
    block, rows = next(iter(sorted(state.items())))
    known = next(iter(rows))
    absent = "0x" + "12" * 20
    assert absent not in rows
    # at the head: the data has no state there (a pruned node)
    with pytest.raises(psycopg.Error) as ei:
        pg.execute(f"SELECT balance FROM {f.t('eth_account')} WHERE address = %s", [known]).fetchall()
    assert "historical state" in str(ei.value) and "is not available" in str(ei.value), str(ei.value)
    if f.api == "jsonrpc":
        # issue 13: the error names the block and says an archive node is needed
        head = accounts_server.control.head()
        assert str(head) in str(ei.value) and "archive" in str(ei.value).lower(), str(ei.value)
    # an address the data does not have at a block it covers
    with pytest.raises(psycopg.Error) as ei:
        pg.execute(f"SELECT balance FROM {f.t('eth_account')} WHERE address = ANY(%s) AND block = %s",
                   [[known, absent], block]).fetchall()
    assert "missing trie node" in str(ei.value), str(ei.value)
    if f.api == "jsonrpc":
        assert str(block) in str(ei.value) and "archive" in str(ei.value).lower(), str(ei.value)
    # the same backend goes on
    assert pg.execute(f"SELECT balance FROM {f.t('eth_account')} WHERE address = %s AND block = %s",
                      [known, block]).fetchone()[0] == Decimal(rows[known]["balance_wei"])


# --------------------------------------------------------------------------
# the whale views' contract exclusion


@pytest.fixture
def fresh_db(extension_ready):
    name = "ew_truth_" + uuid.uuid4().hex[:8]
    with psycopg.connect(autocommit=True) as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(dbname=name, autocommit=True) as c:
            c.execute("CREATE EXTENSION ethwhale_fdw")
        yield name
    finally:
        with psycopg.connect(autocommit=True) as c:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def readable(src, d) -> str:
    dst = d / src.name
    shutil.copyfile(src, dst)
    dst.chmod(0o644)
    return str(dst)


def test_whale_contract_exclusion_equals_accounts_csv(fresh_db, own_server, data_dir, accounts_dir,
                                                       readable_dir, api):
    threshold = Decimal(1000)
    state = state_rows(accounts_dir)
    blocks = {int(b["number"]): b for b in read_csv(accounts_dir, "blocks.csv")}
    prices = {r["day"]: Decimal(r["close_usd"]) for r in read_csv(data_dir, "eth_usd_daily.csv") if r["close_usd"]}
    day = {n: datetime.fromtimestamp(int(b["timestamp"]), tz=timezone.utc).date().isoformat()
           for n, b in blocks.items()}
    token_blocks = {int(r["block"]) for r in read_csv(accounts_dir, "token_transfers.csv")}
    txs_by_block: dict[int, list] = {}
    for t in read_csv(accounts_dir, "txs.csv"):
        txs_by_block.setdefault(int(t["block"]), []).append(t)

    def large(n):
        out = {}
        for t in txs_by_block.get(n, []):
            if not t["to"] or int(t["value_wei"]) == 0:
                continue
            usd = Decimal(int(t["value_wei"])).scaleb(-18) * prices[day[n]]
            if usd >= threshold:
                out[t["hash"]] = (t["from"], t["to"], usd.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
        return out

    # The block N (state at N-1 in the data, no token logs in the data) with
    # the most ETH transfers of at least $1,000.
    n = max((b for b in blocks if b - 1 in state and b not in token_blocks), key=lambda b: len(large(b)))
    want_lt = large(n)
    assert len(want_lt) >= 20, (n, len(want_lt))
    addrs = {a for f_, t_, _ in want_lt.values() for a in (f_, t_)}
    assert addrs <= state[n - 1].keys(), "every address of block N is touched by N: known at N-1"
    csv_contract = {a: state[n - 1][a]["is_contract"] == "t" for a in addrs}
    assert any(csv_contract.values()) and not all(csv_contract.values())

    labels = {r["address"].lower(): (r["label"], r["category"] or None)
              for r in read_csv(data_dir, "labels.csv")}
    srv = own_server("--data", str(accounts_dir))
    with psycopg.connect(dbname=fresh_db, autocommit=True) as c:
        c.execute(sql.SQL("CREATE SERVER geth FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint {})")
                  .format(sql.Literal(api_endpoint(srv.endpoint, api))))
        c.execute("CREATE USER MAPPING FOR CURRENT_USER SERVER geth")
        c.execute("SELECT ethwhale.load_prices(%s)", [readable(data_dir / "eth_usd_daily.csv", readable_dir)])
        assert c.execute("SELECT ethwhale.load_labels(%s)",
                         [readable(data_dir / "labels.csv", readable_dir)]).fetchone()[0] == len(labels)
        c.execute("SET ethwhale.whale_threshold_usd = 1000")
        # only labels and contracts decide here (the exchange-like heuristic is off)
        c.execute("SET ethwhale.exchange_min_counterparties = 1000000000")
        c.execute("SET ethwhale.exchange_min_sweepers = 1000000000")
        c.execute("CALL ethwhale.sync('geth', %s, %s)", [n, n])
        assert c.execute("SELECT count(*) FROM ethwhale.txs").fetchone()[0] == len(txs_by_block[n])
        # The node's head goes back to N-1, whose state the data has for every
        # address of block N; the contract look-ups ask at the head.
        status, body = srv.control._req("POST", "/control/head", {"number": n - 1})
        assert status == 200 and body["head"] == n - 1, body
        # 0.4: refresh_views() brings the views up to date without a sync
        c.execute("SELECT ethwhale.refresh_views()")
        got_lt = {r[0]: r[1:] for r in c.execute(
            "SELECT tx_hash, from_address, to_address, value_usd FROM ethwhale.large_transfers")}
        assert got_lt == want_lt
        assert c.execute("SELECT ethwhale.check_contracts('geth', ethwhale.current_chain())").fetchone()[0] \
            == len(addrs)
        # the look-ups marked their addresses: an incremental refresh computes them again
        c.execute("SELECT ethwhale.refresh_views()")
        info = {r[0]: r[1:] for r in c.execute("SELECT address, code_size, is_contract FROM ethwhale.address_info")}
        cand = {r[0]: r[1:] for r in c.execute(
            "SELECT address, is_contract, label, category, excluded_reason, rank FROM ethwhale.whale_candidates")}
        tokens = {r[0] for r in c.execute("SELECT address FROM ethwhale.token")}

    assert info.keys() == addrs
    for a in addrs:
        assert info[a][1] is csv_contract[a] and (info[a][0] > 0) is csv_contract[a], (a, info[a])
    assert cand.keys() == addrs
    reasons = {"label": 0, "contract": 0, "none": 0}
    for a in addrs:
        label, category = labels.get(a, (None, None))
        contract = csv_contract[a] or a in tokens
        if category in EXCLUDED_CATEGORIES:
            want_reason = "labelled " + category
            reasons["label"] += 1
        elif contract:
            want_reason = "contract"
            reasons["contract"] += 1
        else:
            want_reason = None
            reasons["none"] += 1
        g = cand[a]
        assert (g[0], g[1], g[2], g[3]) == (contract, label, category, want_reason), (a, g)
        assert (g[4] is None) == (want_reason is not None), (a, g)
    assert reasons["contract"] >= 1 and reasons["none"] >= 1, reasons
    assert reasons["label"] >= 1, f"block {n} should move ETH of a labelled exchange/dex: {reasons}"
