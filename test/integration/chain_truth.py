"""Independent truth for the tests of issue 17 (alerts, balance history,
explained scores, the report): the chain as the test server serves it, read
here over plain GraphQL (never through the wrapper), ETH/USD from
eth_usd_daily.csv and labels from the tests' own files. Nothing here uses
the extension's SQL.

Fixtures (import them into a test module): ``new_db`` (new_db() -> name of a
fresh database with the extension, dropped after the test).
"""

from __future__ import annotations

import csv
import shutil
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, getcontext
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from conftest import Control, read_csv, to_int

getcontext().prec = 100
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
WEI = Decimal(10) ** 18


def connect(dbname: str) -> psycopg.Connection:
    return psycopg.connect(dbname=dbname, autocommit=True)


@pytest.fixture
def new_db(extension_ready):
    made = []

    def make() -> str:
        name = "ew_i17_" + uuid.uuid4().hex[:8]
        with psycopg.connect(autocommit=True) as c:
            c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        made.append(name)
        with connect(name) as c:
            c.execute("CREATE EXTENSION ethwhale_fdw")
        return name

    yield make
    with psycopg.connect(autocommit=True) as c:
        for name in made:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def add_server(c, endpoint: str, name: str = "geth", **options) -> None:
    opts = {"endpoint": endpoint, **{k: str(v) for k, v in options.items()}}
    c.execute(sql.SQL("CREATE SERVER {} FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS ({})").format(
        sql.Identifier(name),
        sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(k), sql.Literal(v)) for k, v in opts.items())))
    c.execute(sql.SQL("CREATE USER MAPPING FOR CURRENT_USER SERVER {}").format(sql.Identifier(name)))


def readable(src: Path, d: Path, name: str | None = None) -> str:
    dst = d / (name or src.name)
    shutil.copyfile(src, dst)
    dst.chmod(0o644)
    return str(dst)


def write_labels(d: Path, rows: list[tuple[str, str, str]], name: str = "labels.csv") -> str:
    p = d / name
    with open(p, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["address", "label", "category"])
        w.writerows(rows)
    p.chmod(0o644)
    return str(p)


def cents(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)   # PostgreSQL's round(numeric, 2)


# --------------------------------------------------------------------------
# prices


class Prices:
    """ETH/USD closes of eth_usd_daily.csv; the day's or the last one before."""

    def __init__(self, data_dir: Path):
        self.by_day = {date.fromisoformat(r["day"]): Decimal(r["close_usd"])
                       for r in read_csv(data_dir, "eth_usd_daily.csv") if r["close_usd"]}
        self.days = sorted(self.by_day)

    def exact(self, d: date) -> Decimal | None:
        return self.by_day.get(d)

    def on(self, d: date) -> Decimal | None:
        best = None
        for day in self.days:
            if day > d:
                break
            best = self.by_day[day]
        return best


def utc_day(epoch: int) -> date:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).date()


# --------------------------------------------------------------------------
# the chain, over plain GraphQL


BLOCKS_QUERY = """query($a: Long!, $b: Long!, $t: [[Bytes32!]!]) {
  blocks(from: $a, to: $b) {
    number hash parent { hash } timestamp
    transactions { hash index from { address } to { address } value status gasUsed gasPrice
                   createdContract { address } }
    logs(filter: { topics: $t }) { index account { address } topics data transaction { hash } }
  }
}"""


def chain(control: Control, lo: int, hi: int, chunk: int = 50) -> list[dict]:
    """Blocks lo..hi as dicts: number, hash, time (epoch), txs [{hash, index,
    from, to, value, status, gas_used, gas_price, created}], transfers
    [{log_index, token, from, to, amount, tx_hash}] (ERC-20 Transfer logs:
    3 topics and 32 bytes of data, as the wrapper reads them)."""
    out = []
    for a in range(lo, hi + 1, chunk):
        b = min(hi, a + chunk - 1)
        status, body = control.graphql(BLOCKS_QUERY, {"a": hex(a), "b": hex(b), "t": [[TRANSFER_TOPIC]]})
        assert status == 200 and "errors" not in body, (status, str(body)[:500])
        for blk in body["data"]["blocks"]:
            txs = [{"hash": t["hash"], "index": to_int(t["index"]), "from": t["from"]["address"],
                    "to": t["to"]["address"] if t["to"] else None, "value": to_int(t["value"]),
                    "status": to_int(t["status"]), "gas_used": to_int(t["gasUsed"]),
                    "gas_price": to_int(t["gasPrice"]),
                    "created": t["createdContract"]["address"] if t["createdContract"] else None}
                   for t in blk["transactions"]]
            transfers = []
            for lg in blk["logs"]:
                data = lg["data"]
                if len(lg["topics"]) != 3 or len(data) != 66:
                    continue
                transfers.append({"log_index": to_int(lg["index"]), "token": lg["account"]["address"],
                                  "from": "0x" + lg["topics"][1][-40:], "to": "0x" + lg["topics"][2][-40:],
                                  "amount": int(data, 16), "tx_hash": lg["transaction"]["hash"]})
            out.append({"number": to_int(blk["number"]), "hash": blk["hash"], "time": to_int(blk["timestamp"]),
                        "parent": blk["parent"]["hash"] if blk["parent"] else None,
                        "txs": txs, "transfers": transfers})
    assert [b["number"] for b in out] == list(range(lo, hi + 1)), "the server answered other blocks"
    return out


def moves(blocks: list[dict], prices: Prices, tokens: dict[str, tuple[int, Decimal | None]]) -> list[dict]:
    """The transfers an alert rule can match, priced as README "Alerts" says:
    successful ETH transfers of some value (not contract creations) at the
    ETH/USD of the block's UTC day (or the last day before), and every token
    transfer; a token of TOKENS {address: (decimals, usd_peg or None = as
    ETH)} in token units and USD, others raw and unpriced."""
    out = []
    for blk in blocks:
        px = prices.on(utc_day(blk["time"]))
        for t in blk["txs"]:
            if t["value"] > 0 and t["to"] is not None and t["status"] != 0:
                eth = Decimal(t["value"]) / WEI
                out.append({"kind": "ETH", "block": blk["number"], "time": blk["time"], "tx_hash": t["hash"],
                            "log_index": -1, "token": None, "from": t["from"], "to": t["to"], "amount": eth,
                            "usd": eth * px if px is not None else None})
        for tr in blk["transfers"]:
            if tr["token"] in tokens:
                dec, peg = tokens[tr["token"]]
                amount = Decimal(tr["amount"]).scaleb(-dec)
                p = peg if peg is not None else px
                usd = amount * p if p is not None else None
            else:
                amount, usd = Decimal(tr["amount"]), None
            out.append({"kind": "token", "block": blk["number"], "time": blk["time"], "tx_hash": tr["tx_hash"],
                        "log_index": tr["log_index"], "token": tr["token"], "from": tr["from"], "to": tr["to"],
                        "amount": amount, "usd": usd})
    return out


def rule_matches(rule: dict, m: dict, labels: dict[str, tuple[str, str]]):
    """The direction ('out', else 'in') in which move M matches RULE, or None
    (README "Alerts": direction seen from the address, or from the side
    that is not the counterparty; label patterns are ILIKE ones without
    wildcards here, i.e. case-insensitive equality)."""
    if rule.get("min_usd") is not None and (m["usd"] is None or m["usd"] < Decimal(rule["min_usd"])):
        return None
    tok = rule.get("token")
    if tok is not None and not ((tok == "ETH" and m["kind"] == "ETH") or tok == m["token"]):
        return None
    for d, subject, cp in (("out", m["from"], m["to"]), ("in", m["to"], m["from"])):
        if rule.get("direction", "any") not in ("any", d):
            continue
        if rule.get("address") is not None and rule["address"] != subject:
            continue
        label, category = labels.get(cp, (None, None))
        if rule.get("counterparty_label") is not None and (label or "").lower() != rule["counterparty_label"].lower():
            continue
        if rule.get("counterparty_category") is not None and \
                (category or "").lower() != rule["counterparty_category"].lower():
            continue
        return d
    return None


def expected_alerts(rules: dict[str, dict], ms: list[dict], labels) -> dict[tuple, dict]:
    """{(rule name, tx_hash, log_index): the alert} for the moves MS."""
    want = {}
    for name, rule in rules.items():
        for m in ms:
            d = rule_matches(rule, m, labels)
            if d is not None:
                want[(name, m["tx_hash"], m["log_index"])] = {**m, "direction": d}
    return want


def day_grid_start(epoch: int) -> datetime:
    t = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def bins(epochs: list[int], step: timedelta) -> list[datetime]:
    """balance_history's periods: from the first block's time binned by STEP
    (from 2000-01-01 UTC) to the last block's time."""
    origin = datetime(2000, 1, 1, tzinfo=timezone.utc)
    lo = min(epochs)
    hi = max(epochs)
    t0 = datetime.fromtimestamp(lo, tz=timezone.utc)
    start = origin + ((t0 - origin) // step) * step
    out = []
    p = start
    end = datetime.fromtimestamp(hi, tz=timezone.utc)
    while p <= end:
        out.append(p)
        p += step
    return out
