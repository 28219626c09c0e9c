"""Explained scores (issue 17): whale_candidates.reasons and .evidence on real
mainnet blocks of shared/data (17173049-17173050 and 500000-501000) with the
real labels.csv, every figure recomputed here from txs.csv, receipts.csv (or
the gas used the CSV server derives without one), token_transfers.csv,
eth_usd_daily.csv and labels.csv:

- reasons: the score's formula and inputs (and the score and rank they
  give), volume, transfers sent and received, counterparties, the USD to and
  from labelled exchanges and their share, the ETH balance change over the
  synced range (received - sent - fees of every synced transaction), the
  price-correlation days, first and last seen;
- evidence, for every row: the label and whether its category is excluded,
  the contract test (the code size the CSV server reports, created by a
  synced transaction, a token of ethwhale.token), the counterparties and
  deposit-like feeders of the exchange-like test with their thresholds, and
  the reason that follows from them (over two 2023 blocks the counterparty
  threshold is set to 2 so that the exchange-like test decides rows; the
  2015 blocks exclude a wallet with 12 deposit-like feeders at the defaults).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest
from psycopg import sql
from psycopg.types.json import set_json_loads

from chain_truth import WEI, Prices, cents, connect, moves, new_db, readable  # noqa: F401
from conftest import read_csv
from test_balance import PRICED, csv_blocks
from test_whales_mainnet import EXCLUDED_CATEGORIES

EXCHANGE_CATEGORIES = {"exchange", "hot-wallet", "cold-wallet", "binance", "bitfinex", "bithumb", "bitstamp",
                       "bittrex", "bybit", "coinbase", "coinone", "crypto-com", "ftx", "gate-io", "gemini", "huobi",
                       "kraken", "kucoin", "okex", "okx", "poloniex", "upbit"}


def utc(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("lo,hi,threshold,min_cp,min_sw", [
    (17173049, 17173050, 10000, 2, 10),      # two blocks: 2 counterparties make "exchange-like" here
    (500000, 501000, 1000, 1000, 10),        # the defaults: a 2015 wallet with 12 deposit-like feeders
])
def test_reasons_and_evidence_equal_the_csv_data(new_db, csv_endpoint, data_dir, readable_dir,
                                                 lo, hi, threshold, min_cp, min_sw):
    blocks = csv_blocks(data_dir, lo, hi)
    prices = Prices(data_dir)
    labels = {r["address"].lower(): (r["label"], r["category"] or None) for r in read_csv(data_dir, "labels.csv")}
    times = {b["number"]: b["time"] for b in blocks}
    token_contracts = {r["token"] for r in read_csv(data_dir, "token_transfers.csv")}
    created = {t["created"] for b in blocks for t in b["txs"] if t["created"] and t["status"] != 0}
    large = [m for m in moves(blocks, prices, PRICED)
             if (m["kind"] == "ETH" or m["token"] in PRICED) and m["usd"] is not None and m["usd"] >= threshold]

    db = new_db()
    with connect(db) as c:
        set_json_loads(lambda text: json.loads(text, parse_float=Decimal), c)   # exact numbers
        c.execute(sql.SQL("CREATE SERVER geth FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint {})")
                  .format(sql.Literal(csv_endpoint)))
        c.execute("CREATE USER MAPPING FOR CURRENT_USER SERVER geth")
        c.execute("SELECT ethwhale.load_prices(%s)", [readable(data_dir / "eth_usd_daily.csv", readable_dir)])
        c.execute("SELECT ethwhale.load_labels(%s)", [readable(data_dir / "labels.csv", readable_dir)])
        c.execute("SELECT set_config('ethwhale.whale_threshold_usd', %s, false)", [str(threshold)])
        c.execute("SELECT set_config('ethwhale.exchange_min_counterparties', %s, false)", [str(min_cp)])
        c.execute("SELECT set_config('ethwhale.exchange_min_sweepers', %s, false)", [str(min_sw)])
        c.execute("SET ethwhale.sync_batch_blocks = 500")
        c.execute("CALL ethwhale.sync('geth', %s, %s)", [lo, hi])
        # refresh()'s steps (it would also sync to the head, beyond these blocks in the 2015 case)
        # (0.4: views over incrementally maintained tables; the look-ups mark
        # their addresses for the second refresh_views)
        c.execute("SELECT ethwhale.refresh_views()")
        c.execute("SELECT ethwhale.check_contracts('geth', ethwhale.current_chain())")
        c.execute("SELECT ethwhale.refresh_views()")
        got = {r[0]: r[1:] for r in c.execute(
            "SELECT address, reasons, evidence, score, rank, excluded_reason FROM ethwhale.whale_candidates")}

    # the large transfers' figures per party
    sides = defaultdict(list)
    for m in large:
        usd = cents(m["usd"])
        sides[m["from"]].append((True, m["to"], usd, m["block"]))
        sides[m["to"]].append((False, m["from"], usd, m["block"]))
    assert len(sides) >= 10 and got.keys() == sides.keys()

    # every synced transaction: balance change, counterparties, feeders
    change = defaultdict(int)
    edges = defaultdict(set)
    sent_to = defaultdict(set)
    received_from = defaultdict(set)
    for b in blocks:
        for t in b["txs"]:
            ok = t["status"] != 0
            frm, to, value = t["from"], t["to"], t["value"]
            if ok and to is not None:
                change[to] += value
            if ok and to is None and t["created"]:
                change[t["created"]] += value
            if ok:
                change[frm] -= value
            if t["gas_used"] is not None:
                change[frm] -= t["gas_used"] * t["gas_price"]
            if to is not None and to != frm:
                edges[frm].add(to)
                edges[to].add(frm)
            sent_to[frm].add(to)
            if to is not None:
                received_from[to].add(frm)

    def sweepers(a: str) -> int:
        # README: addresses that received ETH from others and sent ETH only to it
        return sum(1 for d in received_from[a] if d != a and sent_to[d] == {a} and received_from[d] - {a})

    products = {}
    checked = {"label": 0, "exchange-like": 0, "ranked": 0}
    for a, rows in sides.items():
        reasons, evidence, score, rank, reason = got[a]
        volume = sum(u for _, _, u, _ in rows)
        n = len(rows)

        def ex(cp):
            return labels.get(cp, (None, None))[1] in EXCHANGE_CATEGORIES
        to_x = sum(u for s, cp, u, _ in rows if s and ex(cp))
        from_x = sum(u for s, cp, u, _ in rows if not s and ex(cp))
        assert reasons["volume_usd"] == volume, a
        assert (reasons["large_transfers"], reasons["large_sent"], reasons["large_received"]) == \
            (n, sum(1 for s, *_ in rows if s), sum(1 for s, *_ in rows if not s)), a
        assert (reasons["sent_usd"], reasons["received_usd"]) == \
            (sum(u for s, _, u, _ in rows if s), sum(u for s, _, u, _ in rows if not s)), a
        assert reasons["counterparties"] == len({cp for _, cp, _, _ in rows}), a
        x = reasons["exchanges"]
        assert (x["to_usd"], x["from_usd"], x["transfers"]) == (to_x, from_x, sum(1 for r in rows if ex(r[1]))), a
        assert x["share"] == ((to_x + from_x) / volume).quantize(Decimal("0.0001"), ROUND_HALF_UP), a
        assert reasons["balance_change_eth"] == Decimal(change[a]) / WEI, a
        assert (reasons["first_seen"], reasons["last_seen"]) == \
            (utc(times[min(r[3] for r in rows)]), utc(times[max(r[3] for r in rows)]))
        days = {datetime.fromtimestamp(t, tz=timezone.utc).date() for t in times.values()}
        pc = reasons["price_correlation"]
        assert pc["points"] == len(days) and pc["r"] is None and "Pearson" in pc["method"], pc   # < 3 days

        label, category = labels.get(a, (None, None))
        code = 5 if (a in token_contracts or a in created) else 0      # the CSV server's code: 0x6080604052
        contract = code > 0 or a in PRICED or a in created
        cps, feeders = len(edges[a]), sweepers(a)
        assert evidence["label"] == {"label": label, "category": category,
                                     "category_excluded": category in EXCLUDED_CATEGORIES}, a
        assert evidence["contract"] == {"is_contract": contract, "code_size": code, "looked_up_with_eth_account": True,
                                        "created_by_a_synced_transaction": a in created,
                                        "token_in_ethwhale_token": a in PRICED}, a
        assert evidence["exchange_like"] == {"exchange_like": cps >= min_cp or feeders >= min_sw, "counterparties": cps,
                                             "min_counterparties": min_cp, "deposit_like_feeders": feeders,
                                             "min_deposit_like_feeders": min_sw}, a
        if category in EXCLUDED_CATEGORIES:
            want_reason, kind = "labelled " + category, "label"
        elif contract:
            want_reason, kind = "contract", None
        elif cps >= min_cp or feeders >= min_sw:
            want_reason = f"exchange-like ({cps} counterparties, {feeders} deposit-like feeders)"
            kind = "exchange-like"
        else:
            want_reason, kind = None, "ranked"
        if kind:
            checked[kind] += 1
        assert (reason, evidence["reason"], evidence["excluded"]) == (want_reason, want_reason, want_reason is not None)
        s = reasons["score"]
        assert s["formula"] == "log10(volume_usd * large_transfers)"
        assert (s["volume_usd"], s["large_transfers"], s["product"]) == (volume, n, volume * n)
        if want_reason is None:
            assert abs(float(score) - math.log10(volume * n)) <= 0.0005 + 1e-12 and s["score"] == score, a
            assert s["rank"] == rank
            products[a] = volume * n
        else:
            assert score is None and rank is None and s["score"] is None and s["rank"] is None, a
    assert all(v >= 1 for v in checked.values()), checked
    # the ranking: by volume x transfers, highest first
    order = sorted(products, key=lambda a: -products[a])
    assert [got[a][3] for a in order] == sorted(got[a][3] for a in order) and got[order[0]][3] == 1
    assert any(got[a][0]["exchanges"]["share"] > 0 for a in sides), "somebody trades with an exchange"
