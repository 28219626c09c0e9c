"""Real balance history (issue 17): anchored at eth_account, walked with the
synced transactions (value, and fees = gas used x the effective gas price),
priced tokens in USD, checked against eth_account at sampled blocks.

Every expected value is computed here, never by the extension's SQL:

- real state: shared/data/accounts, blocks 12964999-12965000 (a pair of
  consecutive mainnet blocks) synced from the accounts test server, which
  answers like a pruned node: state only where accounts.csv has it. Each
  address active there is anchored where the data has its state (the end of
  block 12964998, or 12964999), and its series must be that balance plus
  the flows of txs.csv; balance_check's node values are accounts.csv's at
  12964999 (or "no state"), and its gaps their difference with the series
  (real internal transfers and mining rewards make some gaps non-zero);
- mainnet blocks 500000-501000 and 17173049-17173050 of shared/data: the
  server reports a balance of 0 at every block, so the series is the flows
  of txs.csv (fees from receipts.csv, or the gas used the server derives)
  ending at 0, and token_usd the net USDT/USDC/DAI/WETH of
  token_transfers.csv at the peg or the day's ETH/USD;
- the generated chain: anchored at the generator's own balance (asked of the
  server over GraphQL), flows from its blocks; balance_check's node values
  are the generator's balances, which are synthetic (not the flows), so the
  gaps are what the test computes; a fork re-anchors.
- price_correlation_stats: r and level_r against Pearson computed here,
  the number of days and the period; price_correlation says them.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest

from chain_truth import WEI, Prices, add_server, bins, cents, chain, connect, new_db, readable  # noqa: F401
from conftest import read_csv, to_int

PRICED = {  # what ethwhale.token seeds: decimals, peg (None: priced as ETH)
    "0xdac17f958d2ee523a2206206994597c13d831ec7": (6, Decimal(1)),
    "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48": (6, Decimal(1)),
    "0x6b175474e89094c44da98b954eedeac495271d0f": (18, Decimal(1)),
    "0x4fabb145d64652a948d72533023f6e7a623c7c53": (18, Decimal(1)),
    "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2": (18, None),
}


# --------------------------------------------------------------------------
# the walk, computed here


def eth_moves(blocks: list[dict], addr: str) -> dict[int, tuple[int, int, int]]:
    """{block: (value change in wei, fees paid in wei, transactions sent without a gas used)}"""
    out = {}
    for b in blocks:
        value = fee = unknown = 0
        for t in b["txs"]:
            ok = t["status"] != 0
            if ok and (t["to"] == addr or (t["to"] is None and t["created"] == addr)):
                value += t["value"]
            if t["from"] == addr:
                if ok:
                    value -= t["value"]
                if t["gas_used"] is None or t["gas_price"] is None:
                    unknown += 1
                else:
                    fee += t["gas_used"] * t["gas_price"]
        out[b["number"]] = (value, fee, unknown)
    return out


def token_moves(blocks: list[dict], addr: str, tokens: dict) -> list[tuple[int, str, Decimal]]:
    out = []
    for b in blocks:
        for tr in b["transfers"]:
            if tr["token"] not in tokens:
                continue
            dec = tokens[tr["token"]][0]
            amount = Decimal(tr["amount"]).scaleb(-dec)
            if tr["to"] == addr:
                out.append((b["number"], tr["token"], amount))
            if tr["from"] == addr:
                out.append((b["number"], tr["token"], -amount))
    return out


def walk(blocks, addr, anchor_block, anchor_wei, step, prices: Prices, tokens) -> list[dict]:
    """balance_history(addr, step) as README "Balance history" defines it."""
    ev = eth_moves(blocks, addr)
    tm = token_moves(blocks, addr, tokens)
    times = {b["number"]: b["time"] for b in blocks}
    cum_at_anchor = sum(v - f for n, (v, f, _) in ev.items() if n <= anchor_block)
    periods = bins(list(times.values()), step)
    hi = datetime.fromtimestamp(max(times.values()), tz=timezone.utc)
    rows = []
    cum = unk = 0
    held: dict[str, Decimal] = defaultdict(Decimal)
    for p in periods:
        end = p + step
        in_p = [n for n, t in times.items() if p <= datetime.fromtimestamp(t, tz=timezone.utc) < end]
        change = sum(ev[n][0] - ev[n][1] for n in in_p)
        fees = sum(ev[n][1] for n in in_p)
        unk += sum(ev[n][2] for n in in_p)
        cum += change
        for n, tok, amount in tm:
            if n in in_p:
                held[tok] += amount
        px = prices.on(min(end - timedelta(microseconds=1), hi).date())
        tok_usd = sum((amount * (tokens[tok][1] if tokens[tok][1] is not None else px) for tok, amount in held.items()),
                      Decimal(0))
        bal = None if anchor_wei is None else Decimal(anchor_wei + cum - cum_at_anchor) / WEI
        rows.append({"period_start": p, "change_eth": Decimal(change) / WEI, "balance_eth": bal,
                     "fees_eth": Decimal(fees) / WEI, "flow_eth": Decimal(cum) / WEI, "eth_usd": px,
                     "token_usd": tok_usd, "unknown_fees": unk,
                     "series_wei": None if anchor_wei is None else anchor_wei + cum - cum_at_anchor})
    return rows


def moved_in(blocks, addr) -> set[int]:
    """The blocks where ADDR sent or received ETH or a priced token (balance_check's samples)."""
    return {b["number"] for b in blocks
            if any(addr in (t["from"], t["to"], t["created"]) for t in b["txs"])
            or any(addr in (tr["from"], tr["to"]) for tr in b["transfers"] if tr["token"] in PRICED)}


def series_at(blocks, addr, anchor_block, anchor_wei, n) -> int:
    ev = eth_moves(blocks, addr)
    return anchor_wei + sum(v - f for b, (v, f, _) in ev.items() if b <= n) - \
        sum(v - f for b, (v, f, _) in ev.items() if b <= anchor_block)


def history(c, addr, step):
    cols = ["period_start", "change_eth", "balance_eth", "fees_eth", "flow_eth", "eth_usd", "balance_usd",
            "token_usd", "total_usd", "unknown_fees"]
    return [dict(zip(cols, r)) for r in c.execute(
        "SELECT " + ", ".join(cols) + " FROM ethwhale.balance_history(%s, %s)", [addr, step])]


def compare(got: list[dict], want: list[dict], addr: str) -> None:
    assert [g["period_start"] for g in got] == [w["period_start"] for w in want], addr
    for g, w in zip(got, want):
        for k in ("change_eth", "balance_eth", "fees_eth", "flow_eth", "eth_usd", "unknown_fees"):
            assert g[k] == w[k], (addr, g["period_start"], k, g[k], w[k])
        assert g["token_usd"] == cents(w["token_usd"]), (addr, g, w)
        if w["balance_eth"] is None:
            assert g["balance_usd"] is None and g["total_usd"] is None
        else:
            assert g["balance_usd"] == cents(w["balance_eth"] * w["eth_usd"]), (addr, g, w)
            assert g["total_usd"] == cents(w["balance_eth"] * w["eth_usd"] + w["token_usd"]), (addr, g, w)


# --------------------------------------------------------------------------
# real account state (shared/data/accounts)


N = 12964999     # and N + 1: consecutive mainnet blocks of the data, with state at N - 1 and N


def test_walk_and_check_against_real_account_state(new_db, accounts_server, accounts_dir, data_dir, readable_dir):
    state: dict[int, dict[str, int]] = defaultdict(dict)
    for r in read_csv(accounts_dir, "accounts.csv"):
        state[int(r["block"])][r["address"]] = int(r["balance_wei"])
    assert N - 1 in state and N in state and N + 1 not in state
    blocks = chain(accounts_server.control, N, N + 1)
    # the server serves txs.csv: the same transactions, values and parties
    csv_txs = {(int(t["block"]), t["hash"]): (t["from"], t["to"] or None, int(t["value_wei"]))
               for t in read_csv(accounts_dir, "txs.csv") if N <= int(t["block"]) <= N + 1}
    assert csv_txs == {(b["number"], t["hash"]): (t["from"], t["to"], t["value"]) for b in blocks for t in b["txs"]}
    active = {a for b in blocks for t in b["txs"] for a in (t["from"], t["to"]) if a}
    # where the data has each address's state: the first of the blocks the
    # extension asks (the last synced N+1, none; N-1; N)
    anchors = {a: next((blk, state[blk][a]) for blk in (N - 1, N) if a in state[blk])
               for a in active if a in state[N - 1] or a in state[N]}
    assert len(anchors) >= 50 and any(blk == N for blk, _ in anchors.values())
    prices = Prices(data_dir)
    db = new_db()
    agree = differ = 0
    with connect(db) as c:
        add_server(c, accounts_server.endpoint)
        c.execute("SELECT ethwhale.load_prices(%s)", [readable(data_dir / "eth_usd_daily.csv", readable_dir)])
        c.execute("CALL ethwhale.sync('geth', %s, %s)", [N, N + 1])
        notices = []
        c.add_notice_handler(lambda n: notices.append((n.message_primary, n.message_detail)))
        for a, (blk, wei) in sorted(anchors.items()):
            got = history(c, a, "1 second")
            compare(got, walk(blocks, a, blk, wei, timedelta(seconds=1), prices, PRICED), a)
            assert c.execute("SELECT block, balance FROM ethwhale.balance_anchor WHERE address = %s",
                             [a]).fetchone() == (blk, wei)
            rows = c.execute("SELECT block, series_eth, node_eth, gap_eth, note FROM ethwhale.balance_check(%s)",
                             [a]).fetchall()
            want_blocks = sorted(({N + 1} | moved_in(blocks, a)) - {blk})
            assert [r[0] for r in rows] == want_blocks, a
            for n, series, node, gap, note in rows:
                s = series_at(blocks, a, blk, wei, n)
                assert series == Decimal(s) / WEI, (a, n)
                if n in state and a in state[n]:
                    assert node == Decimal(state[n][a]) / WEI and gap == Decimal(state[n][a] - s) / WEI, (a, n)
                    if state[n][a] == s:
                        agree += 1
                        assert note is None
                    else:
                        differ += 1
                        assert note.startswith("differs: transfers the transaction list does not show"), note
                else:
                    assert node is None and gap is None and note.startswith("the node has no state at this block:")
        # the check says what the transaction list leaves out
        summary = [n for n in notices if n[0].startswith("ethwhale.balance_check(")]
        assert summary and all("internal transfers from contracts" in d for _, d in summary)
    # both happen on real data: walks that meet the node, and gaps (internal
    # transfers, the miner's reward, fees the CSV server cannot tell)
    assert agree >= 10 and differ >= 3, (agree, differ)


def test_no_state_at_the_node_means_no_balance(new_db, accounts_server):
    """An address the pruned node has no state for at any block asked: the
    changes, but no balance, and a NOTICE quoting the node."""
    db = new_db()
    nobody = "0x00000000000000000000000000000000000000e7"
    with connect(db) as c:
        add_server(c, accounts_server.endpoint)
        c.execute("CALL ethwhale.sync('geth', %s, %s)", [N, N + 1])
        notices = []
        c.add_notice_handler(lambda n: notices.append((n.message_primary, n.message_detail)))
        got = history(c, nobody, "1 hour")
        assert got and all(g["balance_eth"] is None and g["change_eth"] == 0 for g in got)
        msg = [d for m, d in notices if m.startswith(f"ethwhale.anchor_balance({nobody})")]
        assert msg and f"block {N + 1}:" in msg[0] and f"block {N - 1}:" in msg[0] and f"block {N}:" in msg[0], notices
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as e:
            c.execute("SELECT * FROM ethwhale.balance_check(%s)", [nobody])
        assert e.value.diag.message_hint


# --------------------------------------------------------------------------
# mainnet blocks of shared/data: the CSVs


def csv_blocks(data_dir, lo, hi) -> list[dict]:
    """The blocks as chain() gives them, read from the CSV files (the gas used
    the server derives without a receipt: test/geth-server/README.md)."""
    blocks = {int(b["number"]): b for b in read_csv(data_dir, "blocks.csv") if lo <= int(b["number"]) <= hi}
    receipts = {r["tx_hash"]: r for r in read_csv(data_dir, "receipts.csv")}
    txs = defaultdict(list)
    for t in read_csv(data_dir, "txs.csv"):
        if lo <= int(t["block"]) <= hi:
            txs[int(t["block"])].append(t)
    transfers = defaultdict(list)
    for r in read_csv(data_dir, "token_transfers.csv"):
        if lo <= int(r["block"]) <= hi:
            transfers[int(r["block"])].append(r)
    out = []
    for n in sorted(blocks):
        b = blocks[n]
        rows = []
        for t in txs[n]:
            rc = receipts.get(t["hash"])
            if rc is not None:
                gas, status = int(rc["gas_used"]), (int(rc["status"]) if rc["status"] else None)
            elif len(txs[n]) == 1:
                gas, status = int(b["gas_used"]), None
            elif int(b["gas_used"]) == 21000 * len(txs[n]):
                gas, status = 21000, None
            else:
                gas, status = None, None
            rows.append({"hash": t["hash"], "from": t["from"], "to": t["to"] or None, "value": int(t["value_wei"]),
                         "status": status, "gas_used": gas, "gas_price": int(t["gas_price"]),
                         "created": (rc or {}).get("contract_address") or None})
        hashes = {t["hash"] for t in txs[n]}
        out.append({"number": n, "time": int(b["timestamp"]), "txs": rows,
                    "transfers": [{"token": r["token"], "from": r["from"], "to": r["to"], "amount": int(r["value_raw"]),
                                   "log_index": int(r["log_index"]), "tx_hash": r["tx_hash"]}
                                  for r in transfers[n] if r["tx_hash"] in hashes]})
    return out


@pytest.mark.parametrize("lo,hi,step", [(500000, 501000, "30 minutes"), (17173049, 17173050, "1 second")])
def test_mainnet_blocks_walk_to_the_served_balance(new_db, csv_endpoint, data_dir, readable_dir, lo, hi, step):
    blocks = csv_blocks(data_dir, lo, hi)
    assert [b["number"] for b in blocks] == list(range(lo, hi + 1))
    prices = Prices(data_dir)
    # the busiest addresses, and (2023) the biggest holders of priced tokens
    activity = defaultdict(int)
    for b in blocks:
        for t in b["txs"]:
            activity[t["from"]] += 1
            if t["to"]:
                activity[t["to"]] += 1
    addrs = sorted(activity, key=lambda a: (-activity[a], a))[:6]
    tok_addrs = sorted({tr["to"] for b in blocks for tr in b["transfers"] if tr["token"] in PRICED})[:6]
    delta = timedelta(minutes=30) if step == "30 minutes" else timedelta(seconds=1)
    db = new_db()
    with connect(db) as c:
        add_server(c, csv_endpoint)
        c.execute("SELECT ethwhale.load_prices(%s)", [readable(data_dir / "eth_usd_daily.csv", readable_dir)])
        c.execute("SET ethwhale.sync_batch_blocks = 500")
        c.execute("CALL ethwhale.sync('geth', %s, %s)", [lo, hi])
        fees_seen = tokens_seen = 0
        for a in addrs + tok_addrs:
            want = walk(blocks, a, hi, 0, delta, prices, PRICED)     # the server: 0 at the last synced block
            got = history(c, a, step)
            compare(got, want, a)
            assert got[-1]["balance_eth"] == 0
            fees_seen += sum(w["fees_eth"] > 0 for w in want)
            tokens_seen += any(w["token_usd"] != 0 for w in want)
        # the node says 0 at the sampled blocks: the check reports the walk as the gap
        rows = c.execute("SELECT block, series_eth, node_eth, gap_eth FROM ethwhale.balance_check(%s, 4)",
                         [addrs[0]]).fetchall()
    assert len(rows) == min(4, len(moved_in(blocks, addrs[0]) | {hi}) - 1) >= 1
    for n, series, node, gap in rows:
        s = series_at(blocks, addrs[0], hi, 0, n)
        assert (series, node, gap) == (Decimal(s) / WEI, 0, Decimal(-s) / WEI)
    assert fees_seen > 0
    if lo == 17173049:
        assert tokens_seen >= 3      # USDT, USDC, WETH ... received in these blocks


# --------------------------------------------------------------------------
# the generated chain: the generator's own balances


def gen_balance(control, addr: str, n: int) -> int:
    status, body = control.graphql("query($n: Long!, $a: Address!) { block(number: $n) { account(address: $a) "
                                   "{ balance } } }", {"n": hex(n), "a": addr})
    assert status == 200, body
    return to_int(body["data"]["block"]["account"]["balance"])


def test_generated_chain_against_the_generators_balances(new_db, own_server, data_dir, readable_dir):
    srv = own_server("--generate", "300", "--seed", "42", "--txs-per-block", "20-40")
    facts = srv.control.chain()
    tokens = {t["address"]: (t["decimals"], Decimal(1) if t["priced"] == "usd" else None)
              for t in facts["tokens"] if t.get("priced")}
    whale = facts["whales"][0]
    prices = Prices(data_dir)
    db = new_db()
    with connect(db) as c:
        add_server(c, srv.endpoint)
        c.execute("SELECT ethwhale.load_prices(%s)", [readable(data_dir / "eth_usd_daily.csv", readable_dir)])
        for a, (dec, peg) in tokens.items():
            c.execute("INSERT INTO ethwhale.token (address, decimals, usd_peg) VALUES (%s, %s, %s)", [a, dec, peg])
        c.execute("CALL ethwhale.sync('geth')")
        blocks = chain(srv.control, 0, 299)
        anchor = gen_balance(srv.control, whale, 299)
        want = walk(blocks, whale, 299, anchor, timedelta(minutes=10), prices, tokens)
        compare(history(c, whale, "10 minutes"), want, whale)
        assert any(w["fees_eth"] > 0 for w in want) and any(w["token_usd"] != 0 for w in want)
        rows = c.execute("SELECT block, series_eth, node_eth, gap_eth FROM ethwhale.balance_check(%s, 6)",
                         [whale]).fetchall()
        assert len(rows) == 6
        for n, series, node, gap in rows:
            s = series_at(blocks, whale, 299, anchor, n)
            g = gen_balance(srv.control, whale, n)
            assert (series, node, gap) == (Decimal(s) / WEI, Decimal(g) / WEI, Decimal(g - s) / WEI), n
        # a fork replaces the anchor's block: the next use asks the node again
        old = c.execute("SELECT block, block_hash FROM ethwhale.balance_anchor WHERE address = %s", [whale]).fetchone()
        fork = srv.control._req("POST", "/control/fork", {"depth": 5, "seed": "anchor"})[1]
        c.execute("CALL ethwhale.sync('geth')")
        assert c.execute("SELECT count(*) FROM ethwhale.balance_anchor").fetchone()[0] == 0
        blocks = chain(srv.control, 0, 299)
        compare(history(c, whale, "10 minutes"),
                walk(blocks, whale, 299, gen_balance(srv.control, whale, 299), timedelta(minutes=10), prices, tokens),
                whale)
        new = c.execute("SELECT block, block_hash FROM ethwhale.balance_anchor WHERE address = %s", [whale]).fetchone()
    assert old == (299, fork["oldHashes"]["299"]) and new == (299, fork["newHashes"]["299"]) and old != new


def pearson(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    return cov / (sum((x - mx) ** 2 for x in xs) * sum((y - my) ** 2 for y in ys)) ** 0.5


def test_price_correlation_states_method_points_and_period(new_db, own_server, data_dir, readable_dir):
    srv = own_server("--generate", "30000", "--seed", "9", "--txs-per-block", "1-2")
    whale = srv.control.chain()["whales"][1]
    prices = Prices(data_dir)
    db = new_db()
    with connect(db) as c:
        add_server(c, srv.endpoint)
        c.execute("SELECT ethwhale.load_prices(%s)", [readable(data_dir / "eth_usd_daily.csv", readable_dir)])
        c.execute("SET ethwhale.sync_batch_blocks = 10000")
        c.execute("CALL ethwhale.sync()")
        stats = c.execute("SELECT r, level_r, points, first_day, last_day, method, anchor_block, anchor_eth"
                          " FROM ethwhale.price_correlation_stats(%s)", [whale]).fetchone()
        notices = []
        c.add_notice_handler(lambda n: notices.append((n.message_primary, n.message_detail)))
        r = c.execute("SELECT ethwhale.price_correlation(%s)", [whale]).fetchone()[0]
    blocks = chain(srv.control, 0, 29999, chunk=2000)
    anchor = gen_balance(srv.control, whale, 29999)
    daily = walk(blocks, whale, 29999, anchor, timedelta(days=1), prices, {})
    days = [(d["period_start"].date(), d) for d in daily]
    pts = [(day, d) for day, d in days
           if prices.exact(day) is not None and prices.exact(day - timedelta(days=1)) is not None]
    assert len(pts) >= 4
    want_r = pearson([float(d["change_eth"]) for _, d in pts],
                     [float(prices.exact(day) - prices.exact(day - timedelta(days=1))) for day, _ in pts])
    want_level = pearson([float(d["balance_eth"]) for _, d in pts], [float(prices.exact(day)) for day, _ in pts])
    assert abs(stats[0] - want_r) < 1e-9 and abs(stats[1] - want_level) < 1e-9, (stats, want_r, want_level)
    assert stats[2:5] == (len(pts), pts[0][0], pts[-1][0])
    assert "Pearson" in stats[5] and "daily" in stats[5]
    assert stats[6] == 29999 and stats[7] == Decimal(anchor) / WEI
    assert r == stats[0]
    said = [(m, d) for m, d in notices if m.startswith(f"ethwhale.price_correlation({whale})")]
    assert said and f"over {len(pts)} days, {pts[0][0]} .. {pts[-1][0]}" in said[0][0] and "Pearson" in said[0][1]
