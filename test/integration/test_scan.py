"""Scans of eth_block / eth_tx against the test server over real mainnet data
(issue 3 acceptance): exact values, and pushdown proven by the server's log.

The CSV server (EW_CSV_ENDPOINT) serves the blocks of ../shared/data/blocks.csv
and their transactions from txs.csv; blocks 500000-501000 are consecutive.
Every test runs over GraphQL and JSON-RPC (conftest `api`); the request log
is read through conftest's NodeRequest, which means the same for both.  What
a GraphQL document selects (field names) is checked on GraphQL; what the
JSON-RPC calls ask for (full transactions or hashes, receipts) on JSON-RPC.
"""

from __future__ import annotations

import decimal
import random
from datetime import datetime, timezone
from decimal import Decimal

import psycopg
import pytest

from conftest import merged_intervals, read_csv, remote_line

LO, HI = 500000, 501000
BATCH = 100
# GraphQL transaction fields a count(*) has no business asking for.
COUNT_FORBIDDEN = {
    "hash", "from", "to", "value", "gas", "gasPrice", "inputData", "nonce", "status",
    "gasUsed", "logs", "createdContract", "address", "effectiveGasPrice", "maxFeePerGas",
    "r", "s", "v", "raw", "rawReceipt",
}

decimal.getcontext().prec = 100


# --------------------------------------------------------------------------
# expected values, from the CSV files


@pytest.fixture(scope="module")
def csv_txs(data_dir):
    return read_csv(data_dir, "txs.csv")


@pytest.fixture(scope="module")
def csv_blocks(data_dir):
    return read_csv(data_dir, "blocks.csv")


@pytest.fixture(scope="module")
def range_txs(csv_txs):
    rows = [r for r in csv_txs if LO <= int(r["block"]) <= HI]
    assert len(rows) > 1000, "the CSV data changed: expected ~2100 txs in 500000-501000"
    return rows


def expected_tx(r: dict) -> tuple:
    sel = r["input_prefix"]
    return (
        int(r["block"]),
        int(r["idx"]),
        r["hash"],
        r["from"],
        r["to"] or None,
        Decimal(r["value_wei"]),
        int(r["gas"]),
        Decimal(r["gas_price"]),
        None if sel in ("", "0x") else sel,
    )


TX_COLS = "block, tx_index, hash, from_address, to_address, value, gas, gas_price, input_selector"
TX_NAMES = TX_COLS.split(", ")


def expected_block(r: dict) -> tuple:
    return (
        int(r["number"]),
        r["hash"],
        r["parent_hash"],
        r["miner"],
        int(r["gas_used"]),
        int(r["tx_count"]),
        datetime.fromtimestamp(int(r["timestamp"]), tz=timezone.utc),
    )


BLOCK_COLS = 'number, hash, parent_hash, miner, gas_used, tx_count, "timestamp"'
BLOCK_NAMES = ["number", "hash", "parent_hash", "miner", "gas_used", "tx_count", "timestamp"]


def diff_rows(got: list[tuple], want: list[tuple], names: list[str], limit: int = 5) -> list[str]:
    """Readable differences between two row lists of the same key order."""
    out = []
    if len(got) != len(want):
        out.append(f"{len(got)} rows, expected {len(want)}")
    for g, w in zip(got, want):
        if g != w:
            cols = [f"{n}: got {a!r}, expected {b!r}" for n, a, b in zip(names, g, w) if a != b]
            out.append(f"row {w[:2]}: " + "; ".join(cols))
            if len(out) >= limit:
                break
    return out


@pytest.fixture
def csv_fdw(make_fdw, csv_endpoint, control):
    f = make_fdw(csv_endpoint, batch_blocks=BATCH)
    c = control(csv_endpoint)
    c.clear_log()
    return f, c


# --------------------------------------------------------------------------
# values


def test_tx_count_and_sum_match_csv(pg, csv_fdw, range_txs):
    f, ctl = csv_fdw
    count, total = pg.execute(
        f"SELECT count(*), sum(value) FROM {f.t('eth_tx')} WHERE block BETWEEN %s AND %s",
        (LO, HI)).fetchone()
    assert count == len(range_txs)
    assert total == sum(Decimal(r["value_wei"]) for r in range_txs)
    assert total == total.to_integral_value(), "sum(value) must be an exact integer of wei"


def test_tx_rows_match_csv(pg, csv_fdw, range_txs):
    f, ctl = csv_fdw
    got = pg.execute(
        f"SELECT {TX_COLS} FROM {f.t('eth_tx')} WHERE block BETWEEN %s AND %s "
        "ORDER BY block, tx_index", (LO, HI)).fetchall()
    want = sorted((expected_tx(r) for r in range_txs), key=lambda t: (t[0], t[1]))
    problems = diff_rows(got, want, TX_NAMES)
    assert not problems, "\n".join(problems)


def test_tx_sample_by_hash(pg, csv_fdw, range_txs):
    """~50 transactions looked up one by one with hash = '0x...'; each uses
    transaction(hash:) / eth_getTransactionByHash and no block scan."""
    f, ctl = csv_fdw
    rnd = random.Random(20151101)
    sample = rnd.sample(range_txs, 45)
    sample += [r for r in range_txs if not r["to"]][:5]          # contract creations
    for r in sample:
        ctl.clear_log()
        got = pg.execute(f"SELECT {TX_COLS} FROM {f.t('eth_tx')} WHERE hash = %s",
                         (r["hash"],)).fetchall()
        assert got == [expected_tx(r)], f"tx {r['hash']}"
        reqs = ctl.requests()
        assert reqs, "no request was logged"
        assert any(r["hash"] in q.tx_hashes for q in reqs), \
            f"hash = ... did not look the transaction up by hash: {[q.text for q in reqs]}"
        assert not any(q.ranges or q.block_reads for q in reqs), \
            f"hash = ... scanned blocks: {[q.text for q in reqs]}"


def test_tx_hash_not_found_is_empty(pg, csv_fdw):
    f, ctl = csv_fdw
    rows = pg.execute(f"SELECT hash FROM {f.t('eth_tx')} WHERE hash = %s",
                      ("0x" + "ab" * 32,)).fetchall()
    assert rows == []


def test_contract_creation_has_null_to(pg, csv_fdw, range_txs):
    f, ctl = csv_fdw
    creations = sorted(r["hash"] for r in range_txs if not r["to"])
    assert creations, "the CSV has contract creations in this range"
    got = [h for (h,) in pg.execute(
        f"SELECT hash FROM {f.t('eth_tx')} WHERE block BETWEEN %s AND %s AND to_address IS NULL "
        "ORDER BY hash", (LO, HI))]
    assert got == creations


def test_value_eth_is_value_over_1e18_exactly(pg, csv_fdw):
    f, ctl = csv_fdw
    rows = pg.execute(
        f"SELECT hash, value, value_eth FROM {f.t('eth_tx')} WHERE block BETWEEN %s AND %s",
        (LO, HI)).fetchall()
    assert rows
    bad = [(h, v, e) for h, v, e in rows if e != v.scaleb(-18)]
    assert not bad, f"value_eth != value / 1e18 for {len(bad)} rows, e.g. {bad[:3]}"
    # Something with a fractional part, so the check above is not vacuous.
    assert any(e != e.to_integral_value() for _, _, e in rows)
    # And in SQL, with numeric arithmetic.
    n = pg.execute(
        f"SELECT count(*) FROM {f.t('eth_tx')} WHERE block BETWEEN %s AND %s "
        "AND value_eth * 1000000000000000000 <> value", (LO, HI)).fetchone()[0]
    assert n == 0


def test_block_rows_match_csv(pg, csv_fdw, csv_blocks):
    f, ctl = csv_fdw
    want = sorted((expected_block(r) for r in csv_blocks if LO <= int(r["number"]) <= HI),
                  key=lambda t: t[0])
    assert len(want) == HI - LO + 1
    got = pg.execute(
        f"SELECT {BLOCK_COLS} FROM {f.t('eth_block')} WHERE number BETWEEN %s AND %s "
        "ORDER BY number", (LO, HI)).fetchall()
    problems = diff_rows(got, want, BLOCK_NAMES)
    assert not problems, "\n".join(problems)
    ranges = [r for q in ctl.requests() for r in q.ranges]
    assert merged_intervals(ctl.requests()) == [(LO, HI)], ranges


# --------------------------------------------------------------------------
# pushdown, proven by the server's request log


def test_range_pushdown_in_batches(pg, csv_fdw):
    f, ctl = csv_fdw
    pg.execute(f"SELECT count(*), sum(value) FROM {f.t('eth_tx')} WHERE block BETWEEN %s AND %s",
               (LO, HI)).fetchone()
    reqs = [q for q in ctl.requests() if q.reads_blocks()]
    assert reqs, "no request was logged"
    assert merged_intervals(reqs) == [(LO, HI)], \
        f"requested blocks differ from the WHERE range: {[q.ranges or q.numbers for q in reqs]}"
    # one request per chunk: a GraphQL blocks(from:, to:), or one JSON-RPC
    # batch of eth_getBlockByNumber calls
    spans = [q.span() for q in reqs]
    assert all(hi is not None for q in reqs for _, hi in q.ranges), spans
    assert all(hi - lo + 1 <= BATCH for lo, hi in spans), \
        f"a request spans more than batch_blocks={BATCH} blocks: {spans}"
    reads = sorted(b for q in reqs for b in q.block_reads)
    assert reads == list(range(LO, HI + 1)), \
        f"some blocks were requested more than once (or not at all): {sorted(spans)}"


def test_other_operators_push_down(pg, csv_fdw, range_txs):
    f, ctl = csv_fdw
    cases = [
        ("block >= 500990 AND block < 500995", [(500990, 500994)]),
        ("block > 500990 AND block <= 500995", [(500991, 500995)]),
        ("block = 500123", [(500123, 500123)]),
        ("500200 <= block AND 500210 >= block", [(500200, 500210)]),
    ]
    for where, want in cases:
        ctl.clear_log()
        got = sorted(h for (h,) in pg.execute(f"SELECT hash FROM {f.t('eth_tx')} WHERE {where}"))
        assert merged_intervals(ctl.requests()) == want, where
        # the right blocks asked for, and the rows of exactly those blocks
        lo, hi = want[0]
        assert got == sorted(r["hash"] for r in range_txs if lo <= int(r["block"]) <= hi), where


def test_count_requests_no_tx_fields(pg, csv_fdw, range_txs):
    """count(*) reads no transaction: GraphQL transactionCount, JSON-RPC
    eth_getBlockTransactionCountByNumber or blocks with hashes only."""
    f, ctl = csv_fdw
    lo, hi = 500100, 500399
    want = sum(1 for r in range_txs if lo <= int(r["block"]) <= hi)
    (n,) = pg.execute(f"SELECT count(*) FROM {f.t('eth_tx')} WHERE block BETWEEN %s AND %s",
                      (lo, hi)).fetchone()
    assert n == want
    reqs = ctl.requests()
    assert merged_intervals(reqs) == [(lo, hi)]
    assert not any(q.tx_objects or q.receipts for q in reqs), \
        f"count(*) asked for transactions or receipts: {[q.methods for q in reqs]}"
    if f.api == "graphql":
        asked = set().union(*(q.tx_fields for q in reqs))
        assert not (asked & COUNT_FORBIDDEN), \
            f"count(*) asked for transaction fields {sorted(asked & COUNT_FORBIDDEN)}: {reqs[0].text}"
    else:
        methods = {m for q in reqs for m in q.methods}
        assert methods <= {"eth_getBlockTransactionCountByNumber", "eth_getBlockByNumber", "eth_blockNumber"}, methods
        assert sorted(b for q in reqs for b in q.block_reads) == list(range(lo, hi + 1))


@pytest.mark.graphql_only("GraphQL selects fields one by one; JSON-RPC's are in "
                          "test_jsonrpc_methods_follow_the_columns")
def test_projection_only_needed_fields(pg, csv_fdw):
    f, ctl = csv_fdw
    pg.execute(f"SELECT hash FROM {f.t('eth_tx')} WHERE block BETWEEN 500000 AND 500050").fetchall()
    asked = set().union(*(q.tx_fields for q in ctl.requests()))
    assert "hash" in asked
    unneeded = asked & {"value", "gas", "gasPrice", "inputData", "status", "gasUsed", "logs",
                        "createdContract", "nonce"}
    assert not unneeded, f"SELECT hash asked for {sorted(unneeded)}"


@pytest.mark.jsonrpc_only("which JSON-RPC methods a column needs; GraphQL's field "
                          "selection is test_projection_only_needed_fields")
def test_jsonrpc_methods_follow_the_columns(pg, csv_fdw, csv_blocks, range_txs):
    """Header columns: eth_getBlockByNumber(n, false), no transaction objects.
    A transaction column: full transactions, no receipt.  A receipt column
    (status, gas_used, created_contract): eth_getBlockReceipts of each block,
    once.  Every answer still equals the CSV files."""
    f, ctl = csv_fdw
    lo, hi = 500000, 500099
    txs = [r for r in range_txs if lo <= int(r["block"]) <= hi]
    assert len(txs) > 50

    got = pg.execute(f"SELECT number, hash, miner, gas_used FROM {f.t('eth_block')} "
                     "WHERE number BETWEEN %s AND %s ORDER BY number", (lo, hi)).fetchall()
    assert got == [(int(r["number"]), r["hash"], r["miner"], int(r["gas_used"]))
                   for r in sorted(csv_blocks, key=lambda r: int(r["number"])) if lo <= int(r["number"]) <= hi]
    reqs = [q for q in ctl.requests() if q.reads_blocks()]
    calls = [c for q in reqs for c in q.calls_of("eth_getBlockByNumber")]
    assert sorted(int(c["params"][0], 16) for c in calls) == list(range(lo, hi + 1)), calls[:3]
    assert all(c["params"][1] is False for c in calls), "header columns asked for full transactions"
    assert not any(q.receipts or q.tx_hashes for q in reqs), [q.methods for q in reqs]

    ctl.clear_log()
    got = pg.execute(f"SELECT hash, value FROM {f.t('eth_tx')} WHERE block BETWEEN %s AND %s",
                     (lo, hi)).fetchall()
    assert sorted(got) == sorted((r["hash"], Decimal(r["value_wei"])) for r in txs)
    reqs = [q for q in ctl.requests() if q.reads_blocks()]
    assert any(q.tx_objects for q in reqs), "value needs the transaction objects"
    assert not any(q.receipts for q in reqs), f"no receipt column, yet receipts: {[q.methods for q in reqs]}"

    ctl.clear_log()
    got = pg.execute(f"SELECT hash, status, gas_used FROM {f.t('eth_tx')} WHERE block BETWEEN %s AND %s",
                     (lo, hi)).fetchall()
    assert sorted(h for h, _, _ in got) == sorted(r["hash"] for r in txs)
    assert all(s is None for _, s, _ in got), "no status before Byzantium"
    reqs = [q for q in ctl.requests() if q.reads_blocks()]
    with_txs = sorted({int(r["block"]) for r in txs})
    asked = sorted(b for q in reqs for b in q.receipt_blocks)
    # each block's receipts once (a block without transactions may be left out)
    assert set(with_txs) <= set(asked) and len(asked) == len(set(asked)) and \
        set(asked) <= set(range(lo, hi + 1)), asked
    assert not any(q.receipt_hashes for q in reqs), "eth_getBlockReceipts works here: no per-transaction receipts"


def test_in_list_requests_only_those_blocks(pg, csv_fdw, range_txs):
    f, ctl = csv_fdw
    blocks = [500010, 500500, 500999]
    rows = pg.execute(
        f"SELECT block, hash FROM {f.t('eth_tx')} WHERE block IN (500010, 500500, 500999) "
        "ORDER BY block, tx_index").fetchall()
    want = [(int(r["block"]), r["hash"]) for r in range_txs if int(r["block"]) in blocks]
    assert sorted(rows) == sorted(want)
    assert merged_intervals(ctl.requests()) == [(b, b) for b in blocks]


def test_any_array_requests_only_those_blocks(pg, csv_fdw, csv_blocks):
    f, ctl = csv_fdw
    blocks = [500001, 500002, 500777]
    rows = pg.execute(
        f"SELECT number, hash FROM {f.t('eth_block')} WHERE number = ANY(%s) ORDER BY number",
        (blocks,)).fetchall()
    want = [(int(r["number"]), r["hash"]) for r in csv_blocks if int(r["number"]) in blocks]
    assert rows == sorted(want)
    assert merged_intervals(ctl.requests()) == [(500001, 500002), (500777, 500777)]


def test_generic_plan_parameters(pg, csv_fdw, range_txs):
    """Bounds that are parameters of a generic plan are evaluated at execution."""
    f, ctl = csv_fdw
    pg.execute("SET plan_cache_mode = force_generic_plan")
    pg.execute(f"PREPARE ew_q(bigint, bigint) AS SELECT count(*) FROM {f.t('eth_tx')} "
               "WHERE block BETWEEN $1 AND $2")
    pg.execute(f"PREPARE ew_a(bigint[]) AS SELECT count(*) FROM {f.t('eth_tx')} "
               "WHERE block = ANY($1)")
    try:
        for lo, hi in [(500100, 500149), (500600, 500609)]:
            ctl.clear_log()
            # EXECUTE takes no protocol-level parameters: inline the values.
            (n,) = pg.execute(f"EXECUTE ew_q({int(lo)}, {int(hi)})").fetchone()
            assert n == sum(1 for r in range_txs if lo <= int(r["block"]) <= hi)
            assert merged_intervals(ctl.requests()) == [(lo, hi)]
        ctl.clear_log()
        blocks = [500300, 500301, 500900]
        (n,) = pg.execute(f"EXECUTE ew_a(ARRAY{blocks}::bigint[])").fetchone()
        assert n == sum(1 for r in range_txs if int(r["block"]) in blocks)
        assert merged_intervals(ctl.requests()) == [(500300, 500301), (500900, 500900)]
        generic = dict(pg.execute(
            "SELECT name, generic_plans FROM pg_prepared_statements").fetchall())
        assert generic.get("ew_q", 0) >= 2 and generic.get("ew_a", 0) >= 1, generic
    finally:
        pg.execute("DEALLOCATE ALL")
        pg.execute("RESET plan_cache_mode")


def test_stable_expression_bound(pg, csv_fdw):
    """A bound computed by a stable expression (a subquery-free one) is pushed down."""
    f, ctl = csv_fdw
    (n,) = pg.execute(f"SELECT count(*) FROM {f.t('eth_block')} "
                      "WHERE number BETWEEN 500000 + length(current_setting('application_name')) * 0 "
                      "AND 500009").fetchone()
    assert merged_intervals(ctl.requests()) == [(500000, 500009)]
    assert n == 10


def test_no_block_bound_is_refused(pg, csv_fdw):
    f, ctl = csv_fdw
    for q in [f"SELECT count(*) FROM {f.t('eth_tx')}",
              f"SELECT * FROM {f.t('eth_block')}",
              f"SELECT hash FROM {f.t('eth_tx')} WHERE to_address = '0x" + "12" * 20 + "'"]:
        with pytest.raises(psycopg.Error) as ei:
            pg.execute(q).fetchall()
        hint = ei.value.diag.message_hint or ""
        assert "block" in hint.lower() or "number" in hint.lower(), \
            f"{q}: hint should tell to bound the block range, got hint={hint!r}, error={ei.value}"
    assert not any(q.reads_blocks() for q in ctl.requests()), "a refused query still scanned blocks"


def test_upper_bound_only_is_refused(pg, csv_fdw):
    """No lower bound: the scan would start at genesis; refused with a hint."""
    f, ctl = csv_fdw
    with pytest.raises(psycopg.Error) as ei:
        pg.execute(f"SELECT count(*) FROM {f.t('eth_tx')} WHERE block <= 500100").fetchall()
    hint = ei.value.diag.message_hint or ""
    assert "block" in hint.lower(), f"hint={hint!r}, error={ei.value}"


def test_order_by_desc_limit_without_lower_bound(pg, csv_fdw, csv_txs):
    f, ctl = csv_fdw
    head = ctl.head()
    rows = pg.execute(
        f"SELECT block, hash FROM {f.t('eth_tx')} ORDER BY block DESC LIMIT 5").fetchall()
    head_txs = {r["hash"] for r in csv_txs if int(r["block"]) == head}
    assert len(head_txs) >= 5
    assert len(rows) == 5
    assert all(b == head and h in head_txs for b, h in rows), rows
    asked = merged_intervals(ctl.requests(), head=head)
    assert asked and asked[0][0] >= head - 10 * BATCH, \
        f"ORDER BY block DESC LIMIT 5 scanned far below the head: {asked}"


def test_order_by_desc_limit_blocks_generated_chain(pg, make_fdw, gen_endpoint, control):
    f = make_fdw(gen_endpoint, batch_blocks=BATCH)
    ctl = control(gen_endpoint)
    head = ctl.head()
    status, body = ctl.graphql(
        "query($a: Long!, $b: Long!) { blocks(from: $a, to: $b) { number hash } }",
        {"a": str(head - 4), "b": str(head)})
    assert status == 200, body
    want = sorted(((int(b["number"], 16), b["hash"]) for b in body["data"]["blocks"]), reverse=True)
    ctl.clear_log()
    rows = pg.execute(
        f"SELECT number, hash FROM {f.t('eth_block')} ORDER BY number DESC LIMIT 5").fetchall()
    assert rows == want
    asked = merged_intervals(ctl.requests(), head=head)
    assert asked and asked[0][0] >= head - 10 * BATCH, asked
