"""Several chains in one database, takeover, whale-only mode, partitions (0.4).

- two chains:  two generated chains (chain ids 1337 and 8453) synced at the
               same time from two connections: a cursor per chain with the
               node's head, per block the node's own hash, transaction count
               and value (asked over raw JSON-RPC, not through the wrapper),
               the views of each chain equal the full computation, the rank
               is per chain, partitions per chain with each chain's size, a
               per-address function needs ethwhale.chain_id, reset_sync(chain)
               empties that chain only.
- takeover:    a second server of the same node (the other API) continues
               the cursor: a NOTICE, no block read again, none missing or
               twice; the first server takes it back.
- whale mode:  ethwhale.sync_mode('geth', 'whale', 100000) against a full
               sync of the same chain: the same large_transfers, row for row,
               from far fewer transactions; the mode of a non-empty chain
               cannot change; a reorg is handled in the whale mode too.
- partitions:  ethwhale.partition_blocks = 1000 and 2500 blocks: three
               partitions per table with the right bounds; bad settings are
               refused; the size is fixed at the chain's first sync; a
               partition detached and dropped by the user leaves the rest
               readable and syncable.
- known bugs (these fail until fixed): a whale-mode chain on a day without
               its own ETH/USD row keeps no ETH transaction; a server moved to
               another chain's node looks up the old chain's addresses there;
               a candidate of $0.00 volume fails whale_candidates_of (log 0).

Every test runs over GraphQL and JSON-RPC (conftest `api`).
"""

from __future__ import annotations

import random
import threading
import time
from decimal import Decimal

import psycopg
import pytest

import psycopg.sql

from conftest import Control, api_endpoint, to_int
from test_sync import add_server, connect, gen_server, load_prices, make_db, server_files  # noqa: F401


# --------------------------------------------------------------------------
# helpers (test_incremental.py uses them too)


def add_tokens(c, facts: dict) -> None:
    """The generated chain's priced tokens (the same addresses on every seed)."""
    for t in facts["tokens"]:
        if t.get("priced"):
            c.execute("INSERT INTO ethwhale.token (address, symbol, decimals, usd_peg) VALUES (%s, %s, %s, %s)"
                      " ON CONFLICT DO NOTHING",
                      [t["address"], t["symbol"], t["decimals"], 1 if t["priced"] == "usd" else None])


def node_blocks(ctl: Control, numbers) -> dict:
    """Per block, from the test server's JSON-RPC (not through the wrapper):
    hash, transaction count, sum of the values in wei."""
    out = {}
    for n in numbers:
        b = ctl.rpc("eth_getBlockByNumber", hex(n), True)
        out[n] = (b["hash"], len(b["transactions"]), sum(int(t["value"], 16) for t in b["transactions"]))
    return out


def local_blocks(c, chain: int, numbers=None) -> dict:
    """The same figures from the local tables of CHAIN."""
    q = """SELECT b.number, b.hash,
                  (SELECT count(*) FROM ethwhale.txs t WHERE t.chain_id = b.chain_id AND t.block = b.number),
                  (SELECT coalesce(sum(t.value), 0) FROM ethwhale.txs t
                   WHERE t.chain_id = b.chain_id AND t.block = b.number)
           FROM ethwhale.blocks b WHERE b.chain_id = %s"""
    args = [chain]
    if numbers is not None:
        q += " AND b.number = ANY(%s)"
        args.append(list(numbers))
    return {r[0]: (r[1], r[2], int(r[3])) for r in c.execute(q + " ORDER BY 1", args)}


def chain_digest(c, chain: int) -> dict:
    """Per block of CHAIN: hash, parent, tx count, wei sum, token transfer count and amount sum."""
    rows = c.execute("""
        SELECT b.number, b.hash, b.parent_hash, b.tx_count,
               (SELECT count(*) FROM ethwhale.txs t WHERE t.chain_id = b.chain_id AND t.block = b.number),
               (SELECT coalesce(sum(value), 0) FROM ethwhale.txs t WHERE t.chain_id = b.chain_id AND t.block = b.number),
               (SELECT count(*) FROM ethwhale.token_transfers t WHERE t.chain_id = b.chain_id AND t.block = b.number),
               (SELECT coalesce(sum(amount), 0) FROM ethwhale.token_transfers t
                WHERE t.chain_id = b.chain_id AND t.block = b.number)
        FROM ethwhale.blocks b WHERE b.chain_id = %s ORDER BY 1""", [chain]).fetchall()
    return {r[0]: r[1:] for r in rows}


BIG = 2 ** 62


def view_rows(c, chain: int) -> tuple[list, list]:
    """The chain's rows of the incremental tables, sorted."""
    lt = c.execute("SELECT * FROM ethwhale.large_transfer_rows WHERE chain_id = %s"
                   " ORDER BY tx_hash, log_index", [chain]).fetchall()
    wc = c.execute("SELECT * FROM ethwhale.whale_candidate_rows WHERE chain_id = %s"
                   " ORDER BY address", [chain]).fetchall()
    return lt, wc


def full_rows(c, chain: int) -> tuple[list, list]:
    """The full computation of the same rows, from the local tables now."""
    lt = c.execute("SELECT * FROM ethwhale.large_transfers_of(%s, 0, %s) ORDER BY tx_hash, log_index",
                   [chain, BIG]).fetchall()
    wc = c.execute("SELECT * FROM ethwhale.whale_candidates_of(%s, NULL) ORDER BY address", [chain]).fetchall()
    return lt, wc


def assert_views_full(c, chain: int, what: str = "") -> tuple[list, list]:
    """The chain's view rows are exactly the full computation (and the views
    show them)."""
    got, want = view_rows(c, chain), full_rows(c, chain)
    assert got[0] == want[0], f"{what}: large_transfer_rows of chain {chain} differ from large_transfers_of: " \
        f"{len(got[0])} rows vs {len(want[0])}; only in rows: {set(got[0]) - set(want[0])}; " \
        f"only in full: {set(want[0]) - set(got[0])}"
    if got[1] != want[1]:
        g, w = {r[0]: r for r in got[1]}, {r[0]: r for r in want[1]}
        bad = sorted(a for a in g.keys() | w.keys() if g.get(a) != w.get(a))
        pytest.fail(f"{what}: whale_candidate_rows of chain {chain} differ from whale_candidates_of "
                    f"for {len(bad)} addresses, e.g. {bad[:3]}: {[(g.get(a), w.get(a)) for a in bad[:1]]}")
    n_lt = c.execute("SELECT count(*) FROM ethwhale.large_transfers WHERE chain_id = %s", [chain]).fetchone()[0]
    n_wc = c.execute("SELECT count(*) FROM ethwhale.whale_candidates WHERE chain_id = %s", [chain]).fetchone()[0]
    assert (n_lt, n_wc) == (len(want[0]), len(want[1])), what
    return got


def partitions(c, chain: int | None = None) -> list:
    q = "SELECT table_name, chain_id, first_block, last_block FROM ethwhale.partitions"
    if chain is not None:
        return c.execute(q + " WHERE chain_id = %s ORDER BY 1, 3", [chain]).fetchall()
    return c.execute(q + " ORDER BY 2, 1, 3").fetchall()


def parts_of(chain: int, size: int, firsts) -> list:
    return [(t, chain, f, f + size - 1) for t in ("blocks", "token_transfers", "txs") for f in firsts]


# --------------------------------------------------------------------------
# two chains synced at the same time


def test_two_chains_synced_concurrently(make_db, gen_server, server_files, data_dir, api):
    sa = gen_server("--generate", "1500", "--seed", "31", "--chain-id", "1337", "--txs-per-block", "2-6")
    sb = gen_server("--generate", "1200", "--seed", "32", "--chain-id", "8453", "--txs-per-block", "2-6")
    db = make_db()
    fa, fb = sa.control.chain(), sb.control.chain()
    with connect(db) as c:
        add_server(c, "a", sa.endpoint, api)
        add_server(c, "b", sb.endpoint, api)
        load_prices(c, data_dir, server_files)
        add_tokens(c, fa)
        add_tokens(c, fb)
    # each node answers 20 ms late, so that the two runs overlap for sure
    for s in (sa, sb):
        s.control.set_faults([{"fault": "latency", "ms": 20}])

    errors = []
    barrier = threading.Barrier(2)

    def run(server: str, size: int | None):
        try:
            with connect(db) as c:
                c.execute("SET ethwhale.sync_batch_blocks = 100")
                if size:
                    c.execute(f"SET ethwhale.partition_blocks = {size}")
                barrier.wait(30)
                c.execute("CALL ethwhale.sync(%s)", [server])
        except Exception as e:   # noqa: BLE001  (reported below)
            errors.append((server, e))

    threads = [threading.Thread(target=run, args=("a", 1000)), threading.Thread(target=run, args=("b", None))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    for s in (sa, sb):
        s.control.clear_faults()

    with connect(db) as c:
        status = c.execute("SELECT server, chain_id, first_block, last_synced_block, node_head, state, mode"
                           " FROM ethwhale.sync_status ORDER BY chain_id").fetchall()
        assert status == [("a", 1337, 0, 1499, 1499, "ok", "full"), ("b", 8453, 0, 1199, 1199, "ok", "full")], status
        # the two runs overlapped (two chains do not wait for each other)
        spans = c.execute("SELECT run_started_at, last_batch_at FROM ethwhale.sync_state ORDER BY chain_id").fetchall()
        assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1], spans

        # per chain, the node's own blocks: every block's hash, and for a
        # sample the transaction count and value, over raw JSON-RPC
        for chain, s, n in ((1337, sa, 1500), (8453, sb, 1200)):
            local = local_blocks(c, chain)
            assert sorted(local) == list(range(n)), chain
            assert c.execute("SELECT count(*) FROM ethwhale.txs WHERE chain_id = %s", [chain]).fetchone()[0] == \
                c.execute("SELECT sum(tx_count) FROM ethwhale.blocks WHERE chain_id = %s", [chain]).fetchone()[0]
            sample = sorted(random.Random(chain).sample(range(n), 25) + [0, n - 1])
            want = node_blocks(s.control, sample)
            assert {k: local[k] for k in sample} == want, chain
            # every block, against the server's foreign tables
            sch = "ethwhale_a" if chain == 1337 else "ethwhale_b"
            hashes = dict(c.execute(f"SELECT number, hash FROM {sch}.eth_block WHERE number BETWEEN 0 AND {n - 1}"))
            txs = {r[0]: (r[1], int(r[2])) for r in c.execute(
                f"SELECT block, count(*), sum(value) FROM {sch}.eth_tx WHERE block BETWEEN 0 AND {n - 1}"
                " GROUP BY block")}
            remote = {k: (h,) + txs.get(k, (0, 0)) for k, h in hashes.items()}
            assert remote == local, chain
        # nothing of one chain under the other's id: the hashes differ
        both = c.execute("SELECT count(*) FROM ethwhale.blocks a JOIN ethwhale.blocks b ON a.hash = b.hash"
                         " AND a.chain_id <> b.chain_id").fetchone()[0]
        assert both == 0

        # partitions per chain, each with its own size (fixed at its first sync)
        assert c.execute("SELECT chain_id, partition_blocks FROM ethwhale.sync_state ORDER BY 1").fetchall() \
            == [(1337, 1000), (8453, 100000)]
        assert partitions(c, 1337) == parts_of(1337, 1000, (0, 1000))
        assert partitions(c, 8453) == parts_of(8453, 100000, (0,))

        c.execute("CALL ethwhale.refresh()")
        for chain in (1337, 8453):
            lt, wc = assert_views_full(c, chain, "after refresh")
            assert len(lt) >= 5 and len(wc) >= 5, (chain, len(lt), len(wc))
        # the rank is per chain: 1.. within each, by volume × transfers
        for chain in (1337, 8453):
            got = c.execute("SELECT address, rank FROM ethwhale.whale_candidates"
                            " WHERE chain_id = %s AND rank IS NOT NULL", [chain]).fetchall()
            keys = c.execute("SELECT address, volume_usd * large_transfers FROM ethwhale.whale_candidate_rows"
                             " WHERE chain_id = %s AND excluded_reason IS NULL", [chain]).fetchall()
            want = {a: 1 + sum(1 for _, k2 in keys if k2 > k) for a, k in keys}
            assert dict(got) == want and min(want.values()) == 1, chain
        # the planted whales of each chain rank on their chain only
        for chain, f in ((1337, fa), (8453, fb)):
            mine = {r[0] for r in c.execute("SELECT address FROM ethwhale.whale_candidates"
                                            " WHERE chain_id = %s AND rank <= 5", [chain])}
            assert set(f["whales"]) & mine, (chain, mine)

        # a per-address function with two chains and no ethwhale.chain_id
        whale = fa["whales"][0]
        with pytest.raises(psycopg.errors.AmbiguousParameter) as ei:
            c.execute("SELECT * FROM ethwhale.balance_history(%s)", [whale])
        assert "several chains are synced (1337, 8453)" in ei.value.diag.message_primary
        assert "SET ethwhale.chain_id = 1337;" in ei.value.diag.message_hint
        c.execute("SET ethwhale.chain_id = 1337")
        hist = c.execute("SELECT change_eth, flow_eth FROM ethwhale.balance_history(%s, '1 hour')",
                         [whale]).fetchall()
        assert hist and sum(h[0] for h in hist) == hist[-1][1]
        net = c.execute("""SELECT (sum(CASE WHEN to_address = %(a)s AND coalesce(status, 1) <> 0 THEN value ELSE 0 END)
                                 - sum(CASE WHEN from_address = %(a)s AND coalesce(status, 1) <> 0 THEN value ELSE 0 END)
                                 - sum(CASE WHEN from_address = %(a)s THEN gas_used * gas_price ELSE 0 END)) * 1e-18
                           FROM ethwhale.txs WHERE chain_id = 1337 AND (from_address = %(a)s OR to_address = %(a)s)""",
                        {"a": whale}).fetchone()[0]
        assert hist[-1][1] == net
        c.execute("SET ethwhale.chain_id = 'x'")
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            c.execute("SELECT ethwhale.current_chain()")
        c.execute("RESET ethwhale.chain_id")

        # reset_sync(chain) empties that chain only
        keep = chain_digest(c, 1337)
        keep_views = view_rows(c, 1337)
        assert c.execute("SELECT ethwhale.reset_sync(8453)").fetchone()[0] == 1
        assert c.execute("SELECT chain_id FROM ethwhale.sync_status").fetchall() == [(1337,)]
        for t in ("blocks", "txs", "token_transfers", "large_transfer_rows", "whale_candidate_rows",
                  "address_info", "view_state"):
            assert c.execute(f"SELECT count(*) FROM ethwhale.{t} WHERE chain_id = 8453").fetchone()[0] == 0, t
        assert partitions(c, 8453) == []
        assert chain_digest(c, 1337) == keep and view_rows(c, 1337) == keep_views
        assert partitions(c, 1337) == parts_of(1337, 1000, (0, 1000))
        # one chain left: the per-address functions need no setting again
        assert c.execute("SELECT ethwhale.current_chain()").fetchone()[0] == 1337
        assert c.execute("SELECT count(*) FROM ethwhale.balance_history(%s, '1 hour')", [whale]).fetchone()[0] \
            == len(hist)
        # and the chain can be synced again from scratch
        c.execute("CALL ethwhale.sync('b', 0, 99)")
        assert c.execute("SELECT last_synced_block FROM ethwhale.sync_status WHERE chain_id = 8453").fetchone()[0] \
            == 99


def test_refresh_after_a_server_moved_to_another_chain(make_db, gen_server, server_files, data_dir, api):
    """Server 'a' synced chain 1337, then its endpoint was pointed at a node
    of chain 8453 (a user's mistake, or a node replaced): CALL
    ethwhale.refresh() syncs 8453 through it, as it should, but must not
    look up chain 1337's addresses (address_info of 1337) at a node of
    chain 8453: those answers would be cached as chain 1337's for good."""
    sa = gen_server("--generate", "300", "--seed", "31", "--chain-id", "1337", "--txs-per-block", "2-6")
    sb = gen_server("--generate", "200", "--seed", "32", "--chain-id", "8453", "--txs-per-block", "2-6")
    db = make_db()
    with connect(db) as c:
        add_server(c, "a", sa.endpoint, api)
        load_prices(c, data_dir, server_files)
        c.execute("CALL ethwhale.sync('a')")
        c.execute("SELECT ethwhale.refresh_views()")      # no contract look-ups yet
        assert c.execute("SELECT count(*) FROM ethwhale.large_transfer_rows").fetchone()[0] > 0
        c.execute("ALTER SERVER a OPTIONS (SET endpoint %s)" % psycopg.sql.Literal(
            api_endpoint(sb.endpoint, api)).as_string(c))
        c.execute("CALL ethwhale.refresh()")
        assert c.execute("SELECT chain_id, server, last_synced_block FROM ethwhale.sync_status ORDER BY 1"
                         ).fetchall() == [(1337, "a", 299), (8453, "a", 199)]
        wrong = c.execute("SELECT count(*) FROM ethwhale.address_info WHERE chain_id = 1337").fetchone()[0]
        assert wrong == 0, f"{wrong} addresses of chain 1337 looked up at a node of chain 8453"


# --------------------------------------------------------------------------
# takeover by another server of the same chain


def test_takeover_by_a_second_server(make_db, gen_server, api):
    srv = gen_server("--generate", "600", "--seed", "33", "--txs-per-block", "1-4", "--head", "299")
    other_api = "jsonrpc" if api == "graphql" else "graphql"
    db = make_db()
    with connect(db) as c:
        add_server(c, "primary", srv.endpoint, api)
        add_server(c, "fallback", srv.endpoint, other_api)
        c.execute("SET ethwhale.sync_batch_blocks = 50")
        c.execute("CALL ethwhale.sync('primary')")
        assert c.execute("SELECT server, last_synced_block FROM ethwhale.sync_status").fetchone() == ("primary", 299)

        srv.control._req("POST", "/control/head", {"number": 449})
        srv.control.clear_log()
        notices = []
        c.add_notice_handler(lambda n: notices.append(n.message_primary))
        c.execute("CALL ethwhale.sync('fallback')")
        assert any('chain 1337 was synced through server "primary" so far; server "fallback" continues it' in n
                   for n in notices), notices
        assert c.execute("SELECT server, chain_id, first_block, last_synced_block, reorgs FROM ethwhale.sync_status"
                         ).fetchall() == [("fallback", 1337, 0, 449, 0)]
        # the fallback went on from the cursor: no block below 300 read
        # again but the tip check of block 299
        reads = sorted({b for q in srv.control.requests() for b in q.block_reads})
        assert reads and reads[0] >= 299 and set(range(300, 450)) <= set(reads), reads[:5]

        # back to the first server
        srv.control._req("POST", "/control/head", {"number": 599})
        notices.clear()
        c.execute("CALL ethwhale.sync('primary')")
        assert any('server "primary" continues it' in n for n in notices), notices
        assert c.execute("SELECT server, last_synced_block FROM ethwhale.sync_status").fetchall() == [("primary", 599)]
        # no block twice or missing, each the node's
        assert c.execute("SELECT count(*), count(DISTINCT number), min(number), max(number) FROM ethwhale.blocks"
                         ).fetchone() == (600, 600, 0, 599)
        local = local_blocks(c, 1337)
        sample = sorted(random.Random(7).sample(range(600), 30) + [299, 300, 449, 450])
        assert {k: local[k] for k in sample} == node_blocks(srv.control, sample)
        assert c.execute("SELECT count(*) FROM ethwhale.txs").fetchone()[0] == \
            c.execute("SELECT sum(tx_count) FROM ethwhale.blocks").fetchone()[0]
        # the parent links hold across the hand-overs
        assert c.execute("""SELECT count(*) FROM ethwhale.blocks b JOIN ethwhale.blocks p
                            ON p.chain_id = b.chain_id AND p.number = b.number - 1
                            WHERE b.parent_hash <> p.hash""").fetchone()[0] == 0


# --------------------------------------------------------------------------
# whale-only mode


LT_COLS = ("kind, block, block_time, tx_hash, log_index, token, symbol, from_address, to_address, amount,"
           " value_usd, from_label, from_category, to_label, to_category, chain_id")


def test_whale_mode_equals_full_large_transfers(make_db, gen_server, server_files, data_dir, api):
    srv = gen_server("--generate", "1200", "--seed", "34", "--txs-per-block", "3-8")
    full, whale = make_db(), make_db()
    facts = srv.control.chain()
    for db in (full, whale):
        with connect(db) as c:
            add_server(c, "geth", srv.endpoint, api)
            load_prices(c, data_dir, server_files)
            add_tokens(c, facts)
    with connect(whale) as c:
        # the floor must be given; the mode must be one of the two
        with pytest.raises(psycopg.errors.InvalidParameterValue) as ei:
            c.execute("SELECT ethwhale.sync_mode('geth', 'whale')")
        assert "sync_mode('geth', 'whale'" in ei.value.diag.message_hint
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            c.execute("SELECT ethwhale.sync_mode('geth', 'whales', 1)")
        assert c.execute("SELECT ethwhale.sync_mode('geth', 'whale', 100000)").fetchone()[0] == 1337
        assert c.execute("SELECT mode, min_usd FROM ethwhale.sync_status").fetchone() == ("whale", 100000)
    for db in (full, whale):
        with connect(db) as c:
            c.execute("SET ethwhale.whale_threshold_usd = 100000")
            c.execute("SET ethwhale.sync_batch_blocks = 300")
            c.execute("CALL ethwhale.refresh()")

    def large(db):
        with connect(db) as c:
            c.execute("SET ethwhale.whale_threshold_usd = 100000")
            return c.execute(f"SELECT {LT_COLS} FROM ethwhale.large_transfers ORDER BY tx_hash, log_index").fetchall()

    def counts(db):
        with connect(db) as c:
            return c.execute("SELECT (SELECT count(*) FROM ethwhale.blocks), (SELECT count(*) FROM ethwhale.txs),"
                             " (SELECT count(*) FROM ethwhale.token_transfers)").fetchone()

    lf, lw = large(full), large(whale)
    assert len(lf) >= 20 and {r[0] for r in lf} == {"ETH", "token"}, len(lf)
    assert lw == lf
    nf, nw = counts(full), counts(whale)
    assert nf[0] == nw[0] == 1200, (nf, nw)           # every block
    # (the generated chain is whale-rich: about 1 transaction in 10 is large)
    assert nw[1] * 5 < nf[1] and nw[2] * 5 < nf[2], (nf, nw)
    with connect(whale) as c:
        c.execute("SET ethwhale.whale_threshold_usd = 100000")
        assert_views_full(c, 1337, "whale mode")
        # every kept transaction is one of the large ones (or a failed one of as much)
        small = c.execute("""SELECT count(*) FROM ethwhale.txs t WHERE coalesce(t.status, 1) <> 0 AND t.value > 0
                             AND t.to_address IS NOT NULL AND NOT EXISTS (
                               SELECT 1 FROM ethwhale.large_transfers l WHERE l.tx_hash = t.hash AND l.log_index = -1)"""
                          ).fetchone()[0]
        assert small == 0
        # the mode of a chain with blocks cannot change
        for args in (("full", None), ("whale", 5000)):
            with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as ei:
                c.execute("SELECT ethwhale.sync_mode('geth', %s, %s)", args)
            assert "SELECT ethwhale.reset_sync(1337);" in ei.value.diag.message_hint, ei.value
        assert c.execute("SELECT ethwhale.sync_mode('geth', 'whale', 100000)").fetchone()[0] == 1337   # the same: fine
        assert c.execute("SELECT mode, min_usd FROM ethwhale.sync_status").fetchone() == ("whale", 100000)

    # a reorg: both follow the node's new blocks
    fork = srv.control._req("POST", "/control/fork", {"depth": 40, "seed": "whale-fork"})[1]
    assert (fork["from"], fork["to"]) == (1160, 1199)
    for db in (full, whale):
        with connect(db) as c:
            notices = []
            c.add_notice_handler(lambda n: notices.append(n.message_primary))
            c.execute("SET ethwhale.whale_threshold_usd = 100000")
            c.execute("CALL ethwhale.refresh()")
            assert any("reorg" in n and "1160..1199" in n for n in notices), notices
            assert c.execute("SELECT reorgs, last_synced_block FROM ethwhale.sync_status").fetchone() == (1, 1199)
            assert dict(c.execute("SELECT number, hash FROM ethwhale.blocks WHERE number >= 1160")) == \
                {int(k): v for k, v in fork["newHashes"].items()} | {
                    n: h for n, h in c.execute("SELECT number, hash FROM ethwhale_geth.eth_block"
                                               " WHERE number BETWEEN 1160 AND 1199")}
            assert_views_full(c, 1337, "after the reorg")
    lf2, lw2 = large(full), large(whale)
    assert lw2 == lf2 and lf2 != lf
    # a reset makes the mode free again
    with connect(whale) as c:
        assert c.execute("SELECT ethwhale.reset_sync(1337)").fetchone()[0] == 1
        assert c.execute("SELECT ethwhale.sync_mode('geth', 'full')").fetchone()[0] == 1337


def test_whale_mode_on_a_day_without_its_own_price(make_db, gen_server, api):
    """large_transfers prices a day without an ETH/USD row at the last price
    before it (ethwhale.eth_usd_filled); the whale mode must keep the same
    transactions.  Here the chain's day (2023-05-01) has no price, the day
    before has one: the full database lists ETH transfers at that price,
    and the whale database must list the same ones."""
    srv = gen_server("--generate", "300", "--seed", "37", "--txs-per-block", "3-8")
    full, whale = make_db(), make_db()
    for db in (full, whale):
        with connect(db) as c:
            add_server(c, "geth", srv.endpoint, api)
            c.execute("INSERT INTO ethwhale.eth_usd VALUES ('2023-04-30', 1876.22)")
            if db == whale:
                c.execute("SELECT ethwhale.sync_mode('geth', 'whale', 100000)")
            c.execute("CALL ethwhale.sync('geth')")
            c.execute("SELECT ethwhale.refresh_views()")
    got = {}
    for db in (full, whale):
        with connect(db) as c:
            got[db] = c.execute(f"SELECT {LT_COLS} FROM ethwhale.large_transfers WHERE kind = 'ETH'"
                                " ORDER BY tx_hash").fetchall()
    assert len(got[full]) >= 5, len(got[full])
    assert got[whale] == got[full], (len(got[whale]), len(got[full]))


# --------------------------------------------------------------------------
# partitions


def test_partitions(make_db, gen_server, api):
    srv = gen_server("--generate", "3000", "--seed", "35", "--txs-per-block", "1-2", "--head", "2499")
    db = make_db()
    with connect(db) as c:
        add_server(c, "geth", srv.endpoint, api)
        # out of range, or not a number: refused before anything is made
        for bad in ("999", "1000000001", "lots"):
            c.execute(f"SET ethwhale.partition_blocks = '{bad}'")
            with pytest.raises(psycopg.errors.InvalidParameterValue) as ei:
                c.execute("CALL ethwhale.sync('geth')")
            assert "ethwhale.partition_blocks" in ei.value.diag.message_primary, ei.value
            assert ei.value.diag.message_hint == "Use an integer from 1000 to 1000000000.", ei.value
        assert c.execute("SELECT count(*) FROM ethwhale.sync_state").fetchone()[0] == 0
        assert partitions(c) == []

        c.execute("SET ethwhale.partition_blocks = 1000")
        c.execute("SET ethwhale.sync_batch_blocks = 400")
        c.execute("CALL ethwhale.sync('geth')")
        assert c.execute("SELECT next_block - 1, partition_blocks FROM ethwhale.sync_state").fetchone() == (2499, 1000)
        assert partitions(c) == parts_of(1337, 1000, (0, 1000, 2000))
        # the bounds are the catalog's, and each partition holds its blocks only
        bounds = dict(c.execute("""SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i
                                   JOIN pg_class c ON c.oid = i.inhrelid
                                   WHERE i.inhparent = 'ethwhale.blocks'::regclass"""))
        assert bounds == {f"blocks_1337_{f:010d}": f"FOR VALUES FROM ('1337', '{f}') TO ('1337', '{f + 1000}')"
                          for f in (0, 1000, 2000)}, bounds
        for f in (0, 1000, 2000):
            got = c.execute(f"SELECT count(*), min(number), max(number) FROM ethwhale.blocks_1337_{f:010d}").fetchone()
            assert got == ((1000, f, f + 999) if f < 2000 else (500, 2000, 2499)), got
            n = c.execute(f"SELECT count(*) FROM ethwhale.txs_1337_{f:010d}").fetchone()[0]
            assert n == c.execute("SELECT sum(tx_count) FROM ethwhale.blocks WHERE number BETWEEN %s AND %s",
                                  [f, f + 999]).fetchone()[0]
        # the size is the chain's: a later setting does not change it
        c.execute("SET ethwhale.partition_blocks = 5000")
        srv.control._req("POST", "/control/head", {"number": 2999})
        c.execute("CALL ethwhale.sync('geth')")
        assert partitions(c) == parts_of(1337, 1000, (0, 1000, 2000))
        c.execute("RESET ethwhale.partition_blocks")
        # ensure_partitions for a chain without a cursor
        with pytest.raises(psycopg.errors.UndefinedObject):
            c.execute("SELECT ethwhale.ensure_partitions(99, 0, 10)")
        assert c.execute("SELECT ethwhale.ensure_partitions(1337, 0, 2999)").fetchone()[0] == 0

        c.execute("INSERT INTO ethwhale.eth_usd VALUES ('2023-05-01', 1885.39) ON CONFLICT (day) DO NOTHING")
        c.execute("SELECT ethwhale.refresh_views()")
        assert c.execute("SELECT count(*) FROM ethwhale.large_transfers WHERE block < 1000").fetchone()[0] > 0
        # the user detaches and drops the oldest range
        for t in ("blocks", "txs", "token_transfers"):
            c.execute(f"ALTER TABLE ethwhale.{t} DETACH PARTITION ethwhale.{t}_1337_0000000000")
            c.execute(f"DROP TABLE ethwhale.{t}_1337_0000000000")
        assert partitions(c) == parts_of(1337, 1000, (1000, 2000))
        assert c.execute("SELECT count(*), min(number), max(number) FROM ethwhale.blocks").fetchone() == \
            (2000, 1000, 2999)
        assert c.execute("SELECT last_synced_block, state FROM ethwhale.sync_status").fetchone() == (2999, "ok")
        # what is left reads and, after a full rebuild (a basis change: a
        # label), the views are those of the blocks left
        c.execute("INSERT INTO ethwhale.address_label VALUES ('0x00000000000000000000000000000000000000aa', 'x', NULL)")
        c.execute("SELECT ethwhale.refresh_views()")
        assert c.execute("SELECT last_full FROM ethwhale.view_state").fetchone()[0] is True
        assert c.execute("SELECT count(*) FROM ethwhale.large_transfers WHERE block < 1000").fetchone()[0] == 0
        assert_views_full(c, 1337, "after the detach")
        # and the sync goes on, reorgs included
        fork = srv.control._req("POST", "/control/fork", {"depth": 5, "seed": "after-detach"})[1]
        assert fork["from"] == 2995
        c.execute("CALL ethwhale.sync('geth')")
        assert c.execute("SELECT reorgs, last_synced_block FROM ethwhale.sync_status").fetchone() == (1, 2999)
        assert c.execute("SELECT count(*) FROM ethwhale.blocks").fetchone()[0] == 2000


# --------------------------------------------------------------------------
# a candidate whose large transfers add up to $0.00


def test_candidates_of_a_zero_volume(make_db, gen_server, api):
    """With a threshold below half a cent, a transfer of under $0.005 is
    large and its value_usd rounds to 0.00 (test_whales_mainnet's
    test_failed_transfers_are_not_large, at $0.000001, has such): an address whose only large
    transfers are such has volume_usd 0, and its score log10(0 × n) must
    not fail the whole refresh (0.4 computes the candidates at every
    refresh_views / CALL ethwhale.refresh; 0.3 only at REFRESH MATERIALIZED
    VIEW whale_candidates).  A score of NULL (or 0) is fine; an error is
    not."""
    srv = gen_server("--generate", "40", "--seed", "36", "--txs-per-block", "5-10")
    db = make_db()
    with connect(db) as c:
        add_server(c, "geth", srv.endpoint, api)
        c.execute("INSERT INTO ethwhale.eth_usd VALUES ('2023-05-01', 1885.39)")
        c.execute("SET ethwhale.whale_threshold_usd = 0.000001")
        c.execute("CALL ethwhale.sync('geth')")
        # an address whose only move is 10^12 wei ($0.0019): large at this threshold, $0.00 rounded
        c.execute("""INSERT INTO ethwhale.txs (chain_id, block, tx_index, hash, from_address, to_address, value,
                                               status, block_time)
                     SELECT 1337, 39, 9999, '0x' || repeat('ab', 32), '0x' || repeat('cd', 20),
                            '0x' || repeat('ef', 20), 1000000000000, 1, "timestamp"
                     FROM ethwhale.blocks WHERE number = 39""")
        c.execute("SELECT ethwhale.refresh_views()")
        got = c.execute("SELECT count(*) FROM ethwhale.whale_candidates WHERE volume_usd = 0").fetchone()[0]
        assert got >= 1
