"""Joins, sub-selects, LIMIT and the request budget (issue 14).

A join clause that bounds a foreign table (block number, hash or address
equal to an outer value) gives it a parameterized path: a nested loop (with
Memoize where the planner picks it) sends one small request per distinct
outer value.  Each query is compared with the same query over local copies
of the mainnet CSV files loaded with COPY, and the test server's request
log shows what was sent.  Every test runs over GraphQL and JSON-RPC; the
GraphQL document's text (one document carrying both tables' fields) is
checked on GraphQL, the JSON-RPC calls (one eth_getBlockByNumber per block,
no per-row look-ups) on JSON-RPC.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql

from conftest import read_csv, remote_text

B0, B1 = 500000, 500099          # mainnet blocks of the CSV server


def block_requests(ctl) -> list[tuple[int, int]]:
    """(first, last) block of every request that reads blocks (a GraphQL
    blocks(from:, to:), a JSON-RPC batch of eth_getBlockByNumber calls), in
    the order sent; each such request asks for every block of its span once."""
    out = []
    for q in ctl.requests():
        if q.block_reads:
            reads = sorted(q.block_reads)
            assert reads == list(range(reads[0], reads[-1] + 1)), f"not one contiguous chunk: {reads}"
            out.append((reads[0], reads[-1]))
    return out


def copy_csv(pg, table: str, columns: str, rows: list[list]) -> None:
    pg.execute(f"CREATE TEMP TABLE {table} ({columns})")
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    with pg.cursor().copy(f"COPY {table} FROM STDIN (FORMAT csv)") as cp:
        cp.write(buf.getvalue())
    pg.execute(f"ANALYZE {table}")


@pytest.fixture
def local(pg, data_dir):
    """Local copies of blocks.csv and txs.csv (the blocks B0..B1 and the
    2023 ones), for the same queries in plain SQL."""
    blocks = [[r["number"], r["hash"], r["miner"]] for r in read_csv(data_dir, "blocks.csv")]
    txs = [[r["block"], r["idx"], r["hash"], r["from"], r["to"] or None, r["value_wei"]]
           for r in read_csv(data_dir, "txs.csv")]
    copy_csv(pg, "l_block", "number bigint, hash text, miner text", blocks)
    copy_csv(pg, "l_tx", "block bigint, tx_index int, hash text, from_address text, "
                         "to_address text, value numeric", txs)
    tts = [[r["block"], r["tx_hash"], r["log_index"], r["token"], r["from"], r["to"], r["value_raw"]]
           for r in read_csv(data_dir, "token_transfers.csv")]
    copy_csv(pg, "l_tt", "block bigint, tx_hash text, log_index int, token text, from_address text, "
                         "to_address text, amount numeric", tts)
    yield
    pg.execute("DROP TABLE IF EXISTS l_block, l_tx, l_tt")


@pytest.fixture
def csv_fdw(make_fdw, csv_endpoint, control):
    f = make_fdw(csv_endpoint, batch_blocks=100)
    ctl = control(csv_endpoint)
    ctl.clear_log()
    return f, ctl


def rows(pg, q, *args) -> list:
    return pg.execute(q, args or None).fetchall()


@pytest.mark.parametrize("bounds", ["t.block BETWEEN 500000 AND 500009",
                                    "b.number BETWEEN 500000 AND 500009",
                                    "t.block >= 500000 AND b.number <= 500009"])
def test_tx_join_block_is_one_document(pg, csv_fdw, local, bounds):
    """eth_tx JOIN eth_block ON number = block is pushed down: one scan of
    eth_tx whose blocks carry the eth_block fields, bounded by the bounds of
    either side (the planner does not carry a BETWEEN across the join)."""
    f, ctl = csv_fdw
    q = ("SELECT t.hash, t.value, b.miner, b.hash FROM {t} t JOIN {b} b ON b.number = t.block "
         "WHERE " + bounds + " ORDER BY t.hash")
    got = rows(pg, q.format(t=f.t("eth_tx"), b=f.t("eth_block")))
    want = rows(pg, q.format(t="l_tx", b="l_block"))
    assert len(want) >= 4 and got == want
    assert block_requests(ctl) == [(500000, 500009)], block_requests(ctl)
    reqs = [r for r in ctl.requests() if r.block_reads]
    plan = "\n".join(r[0] for r in rows(pg, "EXPLAIN (VERBOSE, COSTS OFF) " +
                                          q.format(t=f.t("eth_tx"), b=f.t("eth_block"))))
    assert plan.count("Foreign Scan") == 1 and "Relations: (eth_tx t) INNER JOIN (eth_block b)" in plan, plan
    if f.api == "graphql":
        doc = reqs[0].text
        assert "miner{address}" in doc and "transactions{" in doc, doc
        assert "Remote GraphQL: " + doc in plan, plan
    else:
        # the blocks' full transactions carry both sides: nothing else is read
        assert all(r.tx_objects and set(r.methods) <= {"eth_getBlockByNumber"} for r in reqs), \
            [r.methods for r in reqs]
        assert "eth_getBlockByNumber(full)" in remote_text(plan, "jsonrpc"), plan


@pytest.mark.parametrize("extra", ["", " AND t.block = tt.block"])
def test_transfer_join_tx_is_one_document(pg, csv_fdw, local, extra):
    """eth_token_transfer JOIN eth_tx ON hash = tx_hash is pushed down: one
    scan of the logs whose transactions carry the eth_tx fields."""
    f, ctl = csv_fdw
    q = ("SELECT tt.tx_hash, tt.log_index, tt.amount, t.from_address, t.value, t.tx_index "
         "FROM {tt} tt JOIN {t} t ON t.hash = tt.tx_hash" + extra +
         " WHERE tt.block BETWEEN 17173049 AND 17173050 ORDER BY 1, 2")
    got = rows(pg, q.format(tt=f.t("eth_token_transfer"), t=f.t("eth_tx")))
    want = rows(pg, q.format(tt="l_tt", t="l_tx"))
    assert len(want) >= 10 and got == want
    reqs = ctl.requests()
    logs = [lq for r in reqs for lq in r.logs]
    assert sorted(b for lq in logs for b in range(lq.lo, lq.hi + 1)) == [17173049, 17173050], \
        [(lq.lo, lq.hi) for lq in logs]
    # no look-up per transfer
    assert not [r for r in reqs if r.tx_hashes or r.receipt_hashes], [r.methods for r in reqs]
    if f.api == "graphql":
        assert len(reqs) == 1 and reqs[0].ranges == [(17173049, 17173050)], [r.ranges for r in reqs]
        assert "logs(filter:" in reqs[0].text and "transaction{hash" in reqs[0].text, reqs[0].text
    plan = "\n".join(r[0] for r in rows(pg, "EXPLAIN (VERBOSE, COSTS OFF) " +
                                          q.format(tt=f.t("eth_token_transfer"), t=f.t("eth_tx"))))
    assert "Relations: (eth_token_transfer tt) INNER JOIN (eth_tx t)" in plan, plan


def test_tx_join_block_by_a_block_column(pg, csv_fdw, local):
    """A clause on a block column of the pushed join is checked on the joined
    rows, and counting reads no transaction objects."""
    f, ctl = csv_fdw
    miner = rows(pg, "SELECT miner FROM l_block WHERE number = 500002")[0][0]
    q = ("SELECT b.number, count(*) FROM {t} t JOIN {b} b ON b.number = t.block "
         "WHERE t.block BETWEEN 500000 AND 500099 AND b.miner = %s GROUP BY 1 ORDER BY 1")
    got = rows(pg, q.format(t=f.t("eth_tx"), b=f.t("eth_block")), miner)
    want = rows(pg, q.format(t="l_tx", b="l_block"), miner)
    assert len(want) >= 1 and got == want
    reqs = [r for r in ctl.requests() if r.block_reads]
    assert reqs and not any(r.tx_objects or r.receipts for r in reqs), [r.methods for r in reqs]
    if f.api == "graphql":
        doc = reqs[0].text
        assert "transactionCount" in doc and "transactions{" not in doc, doc


def test_tx_join_block_through_a_parameterized_path(pg, csv_fdw, local):
    """Joined on another pair (the block's parent is not a join key), the
    block side is read per outer row: one request per distinct block."""
    f, ctl = csv_fdw
    pg.execute("CREATE TEMP TABLE tb AS SELECT block, hash FROM l_tx WHERE block BETWEEN 500000 AND 500009")
    pg.execute("ANALYZE tb")
    try:
        q = "SELECT tb.hash, b.miner FROM tb JOIN {b} b ON b.number = tb.block ORDER BY tb.hash"
        got = rows(pg, q.format(b=f.t("eth_block")))
        want = rows(pg, q.format(b="l_block"))
        assert len(want) >= 4 and got == want
        distinct = {r[0] for r in rows(pg, "SELECT DISTINCT block FROM tb")}
        reqs = block_requests(ctl)
        assert all(a == b for a, b in reqs) and {a for a, _ in reqs} == distinct, reqs
        assert len(reqs) <= len(want)
    finally:
        pg.execute("DROP TABLE tb")


@pytest.mark.parametrize("form", ["join", "left", "in", "exists"])
def test_block_join_forms(pg, csv_fdw, local, form):
    f, ctl = csv_fdw
    wanted = [500000, 500005, 500005, 500077, 17173049]
    pg.execute("CREATE TEMP TABLE w (n bigint)")
    pg.execute("INSERT INTO w SELECT unnest(%s::bigint[])", (wanted,))
    pg.execute("ANALYZE w")
    try:
        sqls = {
            "join": "SELECT w.n, b.hash FROM w JOIN {b} b ON b.number = w.n ORDER BY 1, 2",
            "left": "SELECT w.n, b.hash FROM w LEFT JOIN {b} b ON b.number = w.n ORDER BY 1, 2",
            "in": "SELECT b.number, b.hash FROM {b} b WHERE b.number IN (SELECT n FROM w) ORDER BY 1",
            "exists": "SELECT b.number, b.hash FROM {b} b WHERE EXISTS "
                      "(SELECT 1 FROM w WHERE w.n = b.number) ORDER BY 1",
        }
        got = rows(pg, sqls[form].format(b=f.t("eth_block")))
        want = rows(pg, sqls[form].format(b="l_block"))
        assert len(want) >= 4 and got == want
        reqs = block_requests(ctl)
        assert all(a == b for a, b in reqs), f"only one-block requests expected: {reqs}"
        # each distinct outer value at most once... and each at least once
        assert sorted({a for a, _ in reqs}) == sorted(set(wanted)), reqs
        if form in ("in", "exists"):
            assert len(reqs) == len(set(wanted)), f"a semi-join asks once per distinct value: {reqs}"
    finally:
        pg.execute("DROP TABLE w")


def test_anti_join(pg, csv_fdw, local):
    f, ctl = csv_fdw
    q = ("SELECT v.n FROM (VALUES (500000::bigint), (500001), (499999999)) v(n) "
         "WHERE NOT EXISTS (SELECT 1 FROM {b} b WHERE b.number = v.n) ORDER BY 1")
    assert rows(pg, q.format(b=f.t("eth_block"))) == rows(pg, q.format(b="l_block")) == [(499999999,)]
    assert sorted(a for a, _ in block_requests(ctl)) == [500000, 500001, 499999999]


def test_values_list_and_prepared_outer_parameter(pg, csv_fdw, local):
    f, ctl = csv_fdw
    q = ("SELECT v.n, b.miner FROM (VALUES (500003::bigint), (500042)) v(n) "
         "JOIN {b} b ON b.number = v.n ORDER BY 1")
    assert rows(pg, q.format(b=f.t("eth_block"))) == rows(pg, q.format(b="l_block"))
    ctl.clear_log()
    pg.execute(f"PREPARE pj(bigint[]) AS SELECT n, b.hash FROM unnest($1) n "
               f"JOIN {f.t('eth_block')} b ON b.number = n ORDER BY 1")
    try:
        for arr in ([500010, 500011], [500020], [500010, 500011]):
            got = rows(pg, sql.SQL("EXECUTE pj({}::bigint[])").format(sql.Literal(arr)))
            want = rows(pg, "SELECT n, b.hash FROM unnest(%s::bigint[]) n JOIN l_block b ON b.number = n "
                            "ORDER BY 1", arr)
            assert got == want and len(got) == len(arr)
        assert sorted(a for a, _ in block_requests(ctl)) == [500010, 500010, 500011, 500011, 500020]
    finally:
        pg.execute("DEALLOCATE pj")


def test_hash_join_to_a_local_table(pg, csv_fdw, local):
    """eth_tx.hash = outer value: transaction(hash:) per outer row."""
    f, ctl = csv_fdw
    hashes = [r[0] for r in rows(pg, "SELECT hash FROM l_tx WHERE block BETWEEN 500000 AND 500099 "
                                      "ORDER BY hash LIMIT 7")]
    pg.execute("CREATE TEMP TABLE h (hash text)")
    pg.execute("INSERT INTO h SELECT unnest(%s::text[])", (hashes + ["0x" + "0" * 64],))
    try:
        q = ("SELECT t.block, t.hash, t.value FROM h JOIN {t} t ON t.hash = h.hash ORDER BY 2")
        got = rows(pg, q.format(t=f.t("eth_tx")))
        assert got == rows(pg, q.format(t="l_tx")) and len(got) == 7
        lookups = [r for r in ctl.requests() if r.tx_hashes]
        assert len(lookups) == 8 and not block_requests(ctl)
        assert sorted(h for r in lookups for h in r.tx_hashes) == sorted(hashes + ["0x" + "0" * 64])
    finally:
        pg.execute("DROP TABLE h")


def test_account_join_and_in_subselect(pg, make_fdw, accounts_server, control, data_dir):
    """eth_account.address = a local table's address: each distinct address
    asked for once (100 per request are for lists; a join asks per row),
    compared with the real state in accounts.csv."""
    acc = [r for r in read_csv(data_dir / "accounts", "accounts.csv")]
    block = int(acc[0]["block"])
    at = [r for r in acc if int(r["block"]) == block][:12]
    assert len(at) >= 2
    f = make_fdw(accounts_server.endpoint)
    ctl = control(accounts_server.endpoint)
    pg.execute("CREATE TEMP TABLE wl (address text)")
    pg.execute("INSERT INTO wl SELECT unnest(%s::text[])", ([r["address"] for r in at] + [at[0]["address"]],))
    pg.execute("ANALYZE wl")
    want = sorted((r["address"], Decimal(r["balance_wei"]), int(r["nonce"])) for r in at)
    try:
        for q in (f"SELECT w.address, a.balance, a.nonce FROM (SELECT DISTINCT address FROM wl) w "
                  f"JOIN {f.t('eth_account')} a ON a.address = w.address WHERE a.block = {block} ORDER BY 1",
                  f"SELECT a.address, a.balance, a.nonce FROM {f.t('eth_account')} a "
                  f"WHERE a.address IN (SELECT address FROM wl) AND a.block = {block} ORDER BY 1"):
            ctl.clear_log()
            assert rows(pg, q) == want, q
            # one request per outer row, each asking for that one address at the block
            per_request = [{(a, b) for a, b, _ in r.accounts} for r in ctl.requests() if r.accounts]
            assert all(len(x) == 1 for x in per_request), f"{q}: {per_request}"
            asked = [a for x in per_request for a, b in x if b == block]
            assert sorted(asked) == sorted(r["address"] for r in at), f"{q}: asked {per_request}"
    finally:
        pg.execute("DROP TABLE wl")


def test_limit_asks_for_one_block_first(pg, csv_fdw, local):
    f, ctl = csv_fdw
    # rows come in block order: ORDER BY block needs no sort and LIMIT stops the scan
    got = rows(pg, f"SELECT block, hash FROM {f.t('eth_tx')} WHERE block >= 500000 "
                   "ORDER BY block LIMIT 5")
    want = rows(pg, "SELECT block, hash FROM l_tx WHERE block >= 500000 ORDER BY block, tx_index LIMIT 5")
    assert got == want and len(got) == 5
    reqs = block_requests(ctl)
    assert reqs[0] == (500000, 500000), reqs
    # each request follows the last, at most doubling, and none starts
    # beyond the block of the fifth row
    for (a0, b0), (a1, b1) in zip(reqs, reqs[1:]):
        assert a1 == b0 + 1 and b1 - a1 + 1 <= 2 * (b0 - a0 + 1), reqs
    assert reqs[-1][0] <= want[-1][0] <= reqs[-1][1], (reqs, want[-1])


def test_limit_with_concurrency_does_not_run_ahead(pg, make_fdw, csv_endpoint, control):
    f = make_fdw(csv_endpoint, batch_blocks=100, concurrency=4)
    ctl = control(csv_endpoint)
    ctl.clear_log()
    # 500002 is the first block with transactions
    assert len(rows(pg, f"SELECT hash FROM {f.t('eth_tx')} WHERE block BETWEEN 500002 AND 500999 LIMIT 1")) == 1
    reqs = block_requests(ctl)
    assert reqs == [(500002, 500002)], f"before the first row nothing runs ahead: {reqs}"


def test_budget_refuses_a_planned_overrun_before_sending(pg, csv_fdw):
    f, ctl = csv_fdw
    pg.execute("SET ethwhale.max_requests_per_query = 5")
    try:
        with pytest.raises(psycopg.errors.ConfigurationLimitExceeded) as ei:
            rows(pg, f"SELECT count(*) FROM {f.t('eth_block')} WHERE number BETWEEN 500000 AND 500999")
        assert "would send 10 requests" in str(ei.value) and "max_requests (5)" in str(ei.value)
        assert ctl.log() == [], "nothing may be sent for a refused plan"
        # within the budget it runs
        assert rows(pg, f"SELECT count(*) FROM {f.t('eth_block')} WHERE number BETWEEN 500000 AND 500499"
                    ) == [(500,)]
        assert len(block_requests(ctl)) == 5
    finally:
        pg.execute("RESET ethwhale.max_requests_per_query")


def test_budget_stops_a_run_time_overrun(pg, make_fdw, csv_endpoint, control):
    """An open range under a LIMIT cannot be planned: the fourth request is
    refused, nothing beyond the budget is sent."""
    f = make_fdw(csv_endpoint, batch_blocks=100, max_requests=3)
    ctl = control(csv_endpoint)
    ctl.clear_log()
    with pytest.raises(psycopg.errors.ConfigurationLimitExceeded) as ei:
        rows(pg, f"SELECT hash FROM {f.t('eth_tx')} WHERE block >= 500000 AND value > 10^30 LIMIT 1")
    assert "reached max_requests (3)" in str(ei.value), str(ei.value)
    # every request counts, head look-ups too: three sent, the fourth refused
    reqs = ctl.requests()
    assert len(ctl.log()) == len(reqs) == 3, [r.text for r in reqs]
    assert any(r.reads_blocks() for r in reqs), [r.text for r in reqs]


def test_unbounded_scan_still_refused(pg, csv_fdw):
    f, ctl = csv_fdw
    with pytest.raises(psycopg.errors.FdwUnableToCreateExecution) as ei:
        rows(pg, f"SELECT count(*) FROM {f.t('eth_tx')} t JOIN {f.t('eth_block')} b "
                 "ON b.gas_used = t.gas_used")
    assert "needs a lower bound" in str(ei.value)
    assert ctl.log() == []


def test_explain_shows_parameterized_bounds_and_planned_requests(pg, csv_fdw):
    f, _ = csv_fdw
    plan = "\n".join(r[0] for r in rows(pg, (
        f"EXPLAIN (VERBOSE, COSTS OFF) SELECT v.n, b.miner FROM (VALUES (500001::bigint), (500002)) v(n) "
        f"JOIN {f.t('eth_block')} b ON b.number = v.n")))
    assert "Nested Loop" in plan, plan
    # the inner scan's bound is the outer row's value, a parameter
    assert "Block Bounds: = $" in plan, plan
    assert "Planned Requests: 1\n" in plan, plan
