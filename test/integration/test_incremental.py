"""The incremental views of 0.4 against the full computation.

- rounds:  the node's head moves by small and large steps (1, 6, 93, 400,
           1200 blocks); after each CALL ethwhale.refresh() the rows of
           large_transfer_rows and whale_candidate_rows are exactly
           large_transfers_of(chain, 0, big) and whale_candidates_of(chain,
           NULL), the refresh was incremental (view_state.last_full false,
           last_new_blocks the new blocks), and at the end they are the rows
           of a fresh database synced and refreshed in one go.
- reorg:   /control/fork replaces the last 25 blocks: the refresh takes the
           old rows back and adds the new ones, incrementally; equal to the
           full computation and to a fresh database synced after the fork.
- basis:   labels loaded, ethwhale.whale_threshold_usd changed, a token
           inserted, a price changed: each makes the next refresh a full
           rebuild (last_full true), equal to the full computation.
- kept:    after every round, the reorg and every basis change, the
           candidates' kept state (0.5: counterparties, feeder tests, daily
           ETH change), brought forward block by block, equals a fresh draw
           from the history of every candidate, and is kept for exactly the
           candidates.
- crash:   kill -9 of the backend running CALL ethwhale.refresh() (sync and
           view steps) at random moments, with ethwhale.partition_blocks =
           1000 so that partitions are made during the run; a final refresh
           gives the local rows and the views of a clean run, equal to the
           full computation.

Over GraphQL and JSON-RPC (conftest `api`).
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid

import psycopg
import pytest

from test_chains import add_tokens, assert_views_full, chain_digest, partitions, parts_of, view_rows
from test_sync import (add_server, connect, gen_server, load_prices, make_db, retry,  # noqa: F401
                       server_files, wait_for_postgres)

CHAIN = 1337


def setup_db(db, srv, api, data_dir, files) -> None:
    """Server geth, prices, tokens; and for every connection a threshold
    of $50,000 and exchange-like tests that the small chain reaches (25
    counterparties, 3 deposit-like feeders), so that the incremental
    marking of counterparties and feeders matters."""
    with connect(db) as c:
        add_server(c, "geth", srv.endpoint, api)
        load_prices(c, data_dir, files)
        add_tokens(c, srv.control.chain())
        for k, v in (("whale_threshold_usd", 50000), ("exchange_min_counterparties", 25),
                     ("exchange_min_sweepers", 3)):
            c.execute(f"ALTER DATABASE {db} SET ethwhale.{k} = {v}")


def refresh(db, threshold=50000, batch=250):
    with connect(db) as c:
        c.execute(f"SET ethwhale.whale_threshold_usd = {threshold}")
        c.execute(f"SET ethwhale.sync_batch_blocks = {batch}")
        c.execute("CALL ethwhale.refresh()")


def state(c) -> tuple:
    return c.execute("SELECT through_block, last_full, last_new_blocks FROM ethwhale.view_state"
                     " WHERE chain_id = %s", [CHAIN]).fetchone()


def check(db, what: str, threshold=50000):
    with connect(db) as c:
        c.execute(f"SET ethwhale.whale_threshold_usd = {threshold}")
        return assert_views_full(c, CHAIN, what), state(c)


KEPT_TABLES = {"ethwhale.candidate_kept": "address",
               "ethwhale.candidate_edges": "address, counterparty",
               "ethwhale.candidate_daily": "address, day"}


def kept_state(c) -> dict:
    return {t: c.execute(f"SELECT * FROM {t} WHERE chain_id = %s ORDER BY {o}", [CHAIN]).fetchall()
            for t, o in KEPT_TABLES.items()}


def assert_kept_fresh(db, what: str, threshold=50000, feeders=True) -> None:
    """The candidates' kept state, brought forward by the refreshes, is what
    drawing it afresh from the history of every candidate gives (drawn in a
    transaction rolled back), and it is kept for the candidates only."""
    with connect(db) as c:
        c.execute(f"SET ethwhale.whale_threshold_usd = {threshold}")
        got = kept_state(c)
        c.execute("BEGIN")
        try:
            c.execute("SELECT ethwhale.candidates_drop(%s, NULL)", [CHAIN])
            assert sum(len(v) for v in kept_state(c).values()) == 0
            c.execute("SELECT ethwhale.candidates_keep(%s, ARRAY(SELECT address FROM ethwhale.whale_candidate_rows"
                      " WHERE chain_id = %s), (SELECT through_block FROM ethwhale.view_state WHERE chain_id = %s))",
                      [CHAIN, CHAIN, CHAIN])
            want = kept_state(c)
            cands = sorted(r[0] for r in c.execute(
                "SELECT address FROM ethwhale.whale_candidate_rows WHERE chain_id = %s", [CHAIN]))
        finally:
            c.execute("ROLLBACK")
        # what a refresh asks to find the candidates among the dirty
        # addresses, over every address of the chain, against plain SQL
        among = sorted(r[0] for r in c.execute(
            "SELECT ethwhale.candidates_among(%s, ARRAY("
            " SELECT from_address FROM ethwhale.txs WHERE chain_id = %s"
            " UNION SELECT to_address FROM ethwhale.txs WHERE chain_id = %s AND to_address IS NOT NULL"
            " UNION SELECT from_address FROM ethwhale.token_transfers WHERE chain_id = %s"
            " UNION SELECT to_address FROM ethwhale.token_transfers WHERE chain_id = %s))",
            [CHAIN] * 5))
        parties = sorted(r[0] for r in c.execute(
            "SELECT from_address FROM ethwhale.large_transfer_rows WHERE chain_id = %s"
            " UNION SELECT to_address FROM ethwhale.large_transfer_rows WHERE chain_id = %s", [CHAIN, CHAIN]))
        everyone = c.execute("SELECT count(DISTINCT from_address) FROM ethwhale.txs WHERE chain_id = %s",
                             [CHAIN]).fetchone()[0]
    assert among == parties == cands and 0 < len(among) < everyone, \
        f"{what}: candidates_among gives {len(among)}, the large transfers' parties {len(parties)}, " \
        f"the candidate rows {len(cands)}, of {everyone} senders"
    assert [r[1] for r in got["ethwhale.candidate_kept"]] == cands, f"{what}: kept addresses are not the candidates"
    for t in KEPT_TABLES:
        if got[t] != want[t]:
            g, w = set(got[t]), set(want[t])
            pytest.fail(f"{what}: {t} brought forward differs from a fresh draw: {len(got[t])} rows vs "
                        f"{len(want[t])}; only kept: {sorted(g - w)[:3]}; only drawn: {sorted(w - g)[:3]}")
    # something to compare: edges of both directions, feeders that pass both tests
    # (columns chain_id, address, counterparty, received, feeder_sole, feeder_fed)
    edges = want["ethwhale.candidate_edges"]
    assert any(e[3] for e in edges) and not all(e[3] for e in edges), what
    assert not feeders or any(e[3] and e[4] and e[5] for e in edges), f"{what}: no deposit-like feeder at all"


def test_incremental_equals_full(make_db, gen_server, server_files, data_dir, api, readable_dir):
    srv = gen_server("--generate", "2200", "--seed", "41", "--txs-per-block", "2-6", "--head", "499")
    inc = make_db()
    setup_db(inc, srv, api, data_dir, server_files)
    refresh(inc)
    (lt, wc), st = check(inc, "first refresh")
    assert st == (499, True, 500), st
    assert len(lt) >= 5 and len(wc) >= 5, (len(lt), len(wc))

    head = 499
    computed = {}
    for step in (1, 6, 93, 400, 1200):
        head += step
        srv.control._req("POST", "/control/head", {"number": head})
        refresh(inc)
        (lt2, wc2), st = check(inc, f"after {step} new blocks")
        assert st == (head, False, step), (step, st)
        assert_kept_fresh(inc, f"after {step} new blocks")
        assert len(lt2) >= len(lt)
        lt = lt2
        with connect(inc) as c:
            computed[step] = (c.execute("SELECT last_addresses FROM ethwhale.view_state").fetchone()[0], len(wc2))
    assert head == 2199
    # a block computes again only the candidates it touches
    assert computed[1][0] < computed[1][1], computed
    # nothing new: an incremental refresh of no block
    refresh(inc)
    assert check(inc, "nothing new")[1] == (2199, False, 0)
    with connect(inc) as c:
        kinds = c.execute("SELECT count(*) FILTER (WHERE exchange_like), count(*) FILTER (WHERE NOT exchange_like),"
                          " count(*) FILTER (WHERE sweepers > 0), count(*) FILTER (WHERE rank IS NOT NULL)"
                          " FROM ethwhale.whale_candidates").fetchone()
    # the exchange-like tests decide for some candidates and not for others
    assert kinds[0] > 0 and kinds[1] > 0 and kinds[2] > 0 and kinds[3] > 0, kinds

    # a database synced in one go has the same rows
    one = make_db()
    setup_db(one, srv, api, data_dir, server_files)
    refresh(one, batch=1000)
    with connect(one) as c, connect(inc) as d:
        c.execute("SET ethwhale.whale_threshold_usd = 50000")
        assert view_rows(c, CHAIN) == view_rows(d, CHAIN)
        assert chain_digest(c, CHAIN) == chain_digest(d, CHAIN)

    # a reorg of the last 25 blocks
    fork = srv.control._req("POST", "/control/fork", {"depth": 25, "seed": "inc-fork"})[1]
    assert (fork["from"], fork["to"]) == (2175, 2199)
    with connect(inc) as c:
        old = {r[0] for r in c.execute("SELECT tx_hash FROM ethwhale.large_transfer_rows WHERE block >= 2175")}
        # The rollback alone, in a transaction rolled back: the kept state it
        # leaves is a fresh draw's as of block 2174 for the candidates that
        # keep it, and it does settle feeder tests again (the assertions
        # after the refresh below see the blocks that replace these too).
        before = kept_state(c)
        c.execute("BEGIN")
        try:
            c.execute("SELECT ethwhale.views_rollback(%s, 2174)", [CHAIN])
            rolled = kept_state(c)
            c.execute("SELECT ethwhale.candidates_drop(%s, NULL)", [CHAIN])
            c.execute("SELECT ethwhale.candidates_keep(%s, %s, 2174)",
                      [CHAIN, [r[1] for r in rolled["ethwhale.candidate_kept"]]])
            drawn = kept_state(c)
        finally:
            c.execute("ROLLBACK")
        assert rolled == drawn, "the kept state after the rollback is not a fresh draw as of block 2174"
        kept_after = {r[1] for r in rolled["ethwhale.candidate_kept"]}
        assert 0 < len(kept_after) < len(before["ethwhale.candidate_kept"]), \
            "the reorg should make some candidates, not all, draw their state again"
        # edges of candidates that kept their state, whose feeder tests the
        # rollback changed (columns chain_id, address, counterparty,
        # received, feeder_sole, feeder_fed)
        flags = {(e[1], e[2]): e[4:] for e in before["ethwhale.candidate_edges"] if e[1] in kept_after}
        changed = [e for e in rolled["ethwhale.candidate_edges"] if flags.get((e[1], e[2]), e[4:]) != e[4:]]
        assert changed, "the reorg settles no feeder test again"
    refresh(inc)
    (lt3, _), st = check(inc, "after the reorg")
    assert st == (2199, False, 25), st
    assert_kept_fresh(inc, "after the reorg")
    new = {r[3] for r in lt3 if r[2] >= 2175}
    assert not (old & new)
    fresh = make_db()
    setup_db(fresh, srv, api, data_dir, server_files)
    refresh(fresh, batch=1000)
    with connect(fresh) as c, connect(inc) as d:
        c.execute("SET ethwhale.whale_threshold_usd = 50000")
        assert view_rows(c, CHAIN) == view_rows(d, CHAIN)
        assert c.execute("SELECT reorgs FROM ethwhale.sync_state").fetchone()[0] == 0
        assert d.execute("SELECT reorgs FROM ethwhale.sync_state").fetchone()[0] == 1

    # basis changes: each makes the next refresh a full rebuild
    facts = srv.control.chain()
    labels = readable_dir / "labels.csv"
    labels.write_text("address,label,category\n"
                      f"{facts['exchange']['hot']},hot wallet,exchange\n"
                      f"{facts['exchange']['cold']},cold wallet,exchange\n"
                      f"{facts['whales'][0]},a whale,fund\n")
    labels.chmod(0o644)
    gtk = next(t for t in facts["tokens"] if not t.get("priced"))

    def add_token(c):
        c.execute("INSERT INTO ethwhale.token (address, symbol, decimals, usd_peg) VALUES (%s, %s, %s, 1000)",
                  [gtk["address"], gtk["symbol"], gtk["decimals"]])

    # (name, change, threshold after it, whether the rows must change)
    changes = [
        ("labels", lambda c: c.execute("SELECT ethwhale.load_labels(%s)", [str(labels)]), 50000, True),
        ("threshold", lambda c: None, 200000, True),
        ("token", add_token, 200000, False),
        ("price", lambda c: c.execute("UPDATE ethwhale.eth_usd SET price = price * 2 WHERE day = '2023-05-01'"),
         200000, True),
        ("excluded category", lambda c: c.execute(
            "INSERT INTO ethwhale.excluded_category (category) VALUES ('fund') ON CONFLICT DO NOTHING"), 200000, True),
        ("exchange setting", lambda c: c.execute(f"ALTER DATABASE {inc} SET ethwhale.exchange_min_sweepers = 2"),
         200000, True),
    ]
    prev = check(inc, "before the basis changes")[0]
    for name, change, threshold, changes_rows in changes:
        with connect(inc) as c:
            change(c)
        with connect(inc) as c:
            c.execute(f"SET ethwhale.whale_threshold_usd = {threshold}")
            c.execute("SELECT ethwhale.refresh_views()")
            st = state(c)
            assert st[1] is True, (name, st)
        got, _ = check(inc, f"after the basis change: {name}", threshold)
        assert_kept_fresh(inc, f"after the basis change: {name}", threshold, feeders=False)
        if changes_rows:
            assert got != prev, name
        prev = got
        # and the next refresh, with nothing new, is incremental again
        with connect(inc) as c:
            c.execute(f"SET ethwhale.whale_threshold_usd = {threshold}")
            c.execute("SELECT ethwhale.refresh_views()")
            assert state(c) == (2199, False, 0), name
    with connect(inc) as c:
        c.execute("SET ethwhale.whale_threshold_usd = 200000")
        wc = dict(c.execute("SELECT address, excluded_reason FROM ethwhale.whale_candidates"))
        assert wc.get(facts["whales"][0]) is not None and wc.get(facts["exchange"]["hot"]) is not None


def test_crash_during_refresh(make_db, gen_server, server_files, data_dir, api):
    srv = gen_server("--generate", "3000", "--seed", "43", "--txs-per-block", "1-4", "--head", "199")
    clean, crashed = make_db(), make_db()
    for db in (clean, crashed):
        setup_db(db, srv, api, data_dir, server_files)
        with connect(db) as c:
            c.execute("ALTER DATABASE {} SET ethwhale.partition_blocks = 1000".format(db))
            c.execute("ALTER DATABASE {} SET ethwhale.whale_threshold_usd = 50000".format(db))
            c.execute("ALTER DATABASE {} SET ethwhale.sync_batch_blocks = 60".format(db))
    # The test cluster runs with synchronous_commit = off: a kill -9 right
    # after a commit can lose it (the WAL still in shared memory), settings
    # included.  A checkpoint writes the set-up out before the first kill.
    with connect() as c:
        c.execute("CHECKPOINT")

    seed = int(time.time())
    rng = random.Random(seed)
    tag = "ew_inc_crash_" + uuid.uuid4().hex[:6]
    # the node answers 40 ms late: a refresh of a few hundred blocks takes
    # a second or more, and the kill lands in its sync or in its view steps
    srv.control.set_faults([{"fault": "latency", "ms": 40}])
    head, kills = 199, 0
    while kills < 6 and head < 2999:
        head = min(head + rng.randint(100, 300), 2999)
        srv.control._req("POST", "/control/head", {"number": head})
        errors = []

        def run():
            try:
                with connect(crashed, application_name=tag) as c:
                    c.execute("CALL ethwhale.refresh()")
            except psycopg.Error as e:
                errors.append(e)

        t = threading.Thread(target=run)
        t.start()
        pid = None
        end = time.monotonic() + 20
        while pid is None and t.is_alive() and time.monotonic() < end:
            try:
                with connect() as c:
                    r = c.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s"
                                  " AND query LIKE 'CALL%%'", [tag]).fetchone()
                pid = r[0] if r else None
            except psycopg.OperationalError:
                pid = None
            time.sleep(0.02)
        if pid is not None:
            time.sleep(rng.uniform(0.05, 0.8))
            if t.is_alive():
                os.kill(pid, signal.SIGKILL)
                kills += 1
        t.join(120)
        assert not t.is_alive()
        time.sleep(0.5)
        wait_for_postgres(crashed)
    srv.control.clear_faults()
    srv.control._req("POST", "/control/head", {"number": 2999})
    assert kills >= 4, f"only {kills} kills landed (seed {seed})"

    retry(lambda: refresh(crashed, batch=60))
    refresh(clean, batch=500)
    with connect(clean) as c, connect(crashed) as d:
        for x in (c, d):
            x.execute("SET ethwhale.whale_threshold_usd = 50000")
        assert d.execute("SELECT last_synced_block, first_block FROM ethwhale.sync_status").fetchone() == (2999, 0)
        assert chain_digest(d, CHAIN) == chain_digest(c, CHAIN), f"seed {seed}"
        assert partitions(d) == partitions(c) == parts_of(CHAIN, 1000, (0, 1000, 2000))
        assert view_rows(d, CHAIN) == view_rows(c, CHAIN), f"seed {seed}"
        assert_views_full(d, CHAIN, f"after the crashes (seed {seed})")
        # nothing half-made: every partition of a table has its siblings
        assert d.execute("SELECT count(*) FROM ethwhale.view_dirty").fetchone()[0] == 0
