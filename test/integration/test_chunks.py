"""How many blocks a range scan asks for per request (chunk.c).

Each answer aims at 4 MB (or a quarter of max_response_mb), never more than
batch_blocks blocks.  A backend remembers, for the rest of its session, how
large a block's answer was for each kind of scan (server, table, request
document), so the next scan of the same kind starts near the target instead
of at batch_blocks: a sync's statements no longer open with answers several
times the target.  These tests read the spans and sizes the test server
logged.
"""

from __future__ import annotations

import math

import pytest

from conftest import _connect, block_entries

BATCH = 30
FIRST = (100, 100 + BATCH - 1)      # the first scan: one request of BATCH blocks
FULL = "SELECT * FROM {t} WHERE block BETWEEN {lo} AND {hi}"


def spans(ctl, lo, hi):
    return [tuple(e["range"]) for e in block_entries(ctl.log(), lo, hi)]


def first_request(conn, ctl, query, lo, hi):
    """Run query over lo..hi on conn: (the first request's span, its bytes, the rows)."""
    ctl.clear_log()
    rows = conn.execute(query).fetchall()
    entries = block_entries(ctl.log(), lo, hi)
    assert all(e["status"] == 200 and not e["fault"] for e in entries), entries
    got = sorted(tuple(e["range"]) for e in entries)
    # every block asked for once, the range covered
    assert got[0][0] == lo and got[-1][1] == hi, got
    assert all(b[0] == a[1] + 1 for a, b in zip(got, got[1:])), got
    first = entries[0]
    return first["range"][1] - first["range"][0] + 1, first["bytes"], rows


def explain(pg, query, opts="VERBOSE, COSTS OFF"):
    """The text of EXPLAIN (opts) query on pg."""
    return "\n".join(r[0] for r in pg.execute(f"EXPLAIN ({opts}) {query}").fetchall())


@pytest.fixture
def sized(make_fdw, fault_endpoint, control, pg):
    """sized(**options) -> (server, control, target bytes): a server whose
    max_response_mb puts the target near half of FIRST's answer, so the
    first scan is one request of BATCH blocks and the learnt chunk 15 or so."""
    ctl = control(fault_endpoint)
    ctl.clear_faults()
    probe = make_fdw(fault_endpoint, batch_blocks=BATCH, compression="none", timeout_ms=20000)
    _, probe_bytes, _ = first_request(pg, ctl, FULL.format(t=probe.t("eth_tx"), lo=FIRST[0], hi=FIRST[1]),
                                      *FIRST)
    # a target of half the probe's answer or more: the first scan's one answer
    # is below max_response_mb with a margin, and the learnt chunk about 15
    mb = math.ceil(probe_bytes * 2 / 2**20)
    target = min(4 * 2**20, mb * 2**20 / 4)
    assert target / (probe_bytes / BATCH) < BATCH, f"blocks too small for this test: {probe_bytes} bytes"

    def make(**extra):
        opts = dict(batch_blocks=BATCH, max_response_mb=mb, compression="none", timeout_ms=20000)
        opts.update(extra)
        return make_fdw(fault_endpoint, **opts)

    return make, ctl, target


def learn(pg, ctl, f, target):
    """The first scan of f's eth_tx in this session; the chunk it learnt."""
    n, nbytes, _ = first_request(pg, ctl, FULL.format(t=f.t("eth_tx"), lo=FIRST[0], hi=FIRST[1]), *FIRST)
    assert n == BATCH, "a session's first scan starts at batch_blocks"
    return int(target / (nbytes / BATCH))


def test_the_next_scan_starts_near_the_target(pg, sized):
    make, ctl, target = sized
    f = make()
    want = learn(pg, ctl, f, target)
    n2, _, rows = first_request(pg, ctl, FULL.format(t=f.t("eth_tx"), lo=200, hi=299), 200, 299)
    assert abs(n2 - want) <= 1 and n2 < BATCH, (n2, want)
    # a new session starts at batch_blocks again, and reads the same rows
    with _connect() as fresh:
        n3, _, rows3 = first_request(fresh, ctl, FULL.format(t=f.t("eth_tx"), lo=200, hi=299), 200, 299)
    assert n3 == BATCH, "the sizes are a backend's own"
    assert rows == rows3 and len(rows) > 1000


def test_another_kind_of_scan_is_not_sized_by_it(pg, sized):
    make, ctl, target = sized
    f = make()
    learn(pg, ctl, f, target)
    # other columns: another document
    n, _, _ = first_request(pg, ctl, f"SELECT block, tx_index FROM {f.t('eth_tx')} "
                            "WHERE block BETWEEN 200 AND 299", 200, 299)
    assert n == BATCH
    # the same document on another server
    g = make()
    n, _, _ = first_request(pg, ctl, FULL.format(t=g.t("eth_tx"), lo=200, hi=299), 200, 299)
    assert n == BATCH


def test_batch_blocks_still_bounds_the_first_chunk(pg, sized):
    make, ctl, target = sized
    f = make()
    learn(pg, ctl, f, target)
    pg.execute(f"ALTER SERVER {f.server} OPTIONS (SET batch_blocks '2')")
    n, _, _ = first_request(pg, ctl, FULL.format(t=f.t("eth_tx"), lo=200, hi=229), 200, 229)
    assert n == 2
    assert max(b - a + 1 for a, b in spans(ctl, 200, 229)) <= 2


def test_a_limit_still_asks_for_one_block_first(pg, sized):
    make, ctl, target = sized
    f = make()
    learn(pg, ctl, f, target)
    ctl.clear_log()
    pg.execute(f"SELECT * FROM {f.t('eth_tx')} WHERE block BETWEEN 200 AND 299 LIMIT 3").fetchall()
    assert spans(ctl, 200, 299)[0] == (200, 200)


def test_concurrent_scans_start_near_the_target(pg, sized):
    make, ctl, target = sized
    f = make(concurrency=4)
    want = learn(pg, ctl, f, target)
    ctl.clear_log()
    pg.execute(FULL.format(t=f.t("eth_tx"), lo=200, hi=399)).fetchall()
    # the requests sent before any answer came back are all of the learnt size
    early = sorted(spans(ctl, 200, 399))[:4]
    assert all(abs((b - a + 1) - want) <= 1 for a, b in early), (early, want)


def test_a_rescan_of_one_request_still_reuses_its_answer(pg, sized):
    """Ranges that fit one request keep batch_blocks, so a nested loop's
    rescans send the same request and take the answer again."""
    make, ctl, target = sized
    f = make()
    want = learn(pg, ctl, f, target)
    assert want < 20
    # a nested loop whose inner side, the foreign scan, runs once per outer row
    ctl.clear_log()
    q = (f"SELECT v.k, t.* FROM generate_series(1, 3) v(k) CROSS JOIN LATERAL "
         f"(SELECT * FROM {f.t('eth_tx')} t WHERE t.block BETWEEN 200 AND 219 "
         f"AND t.tx_index + v.k > 0 OFFSET 0) t")
    plan = explain(pg, q, "ANALYZE, VERBOSE, COSTS OFF, TIMING OFF")
    assert "Nested Loop" in plan, plan
    assert spans(ctl, 200, 219) == [(200, 219)], spans(ctl, 200, 219)
    assert "Answers Reused by Rescans: 2" in plan, plan
    # and the same plan over more than batch_blocks blocks starts at the learnt size
    ctl.clear_log()
    pg.execute(q.replace("AND 219", "AND 299")).fetchall()
    first = spans(ctl, 200, 299)[0]
    assert abs((first[1] - first[0] + 1) - want) <= 1, (first, want)


def test_a_transaction_answer_reused_by_rescans(pg, sized):
    """The same hash on consecutive outer rows: one request, its answer taken
    again by each rescan (JSON-RPC edits the answer it takes, in the memory
    the reused answer lives in)."""
    make, ctl, _ = sized
    f = make()
    h = pg.execute(f"SELECT hash FROM {f.t('eth_tx')} WHERE block = 200 ORDER BY tx_index LIMIT 1").fetchone()[0]
    ctl.clear_log()
    q = (f"SELECT v.k, t.* FROM generate_series(1, 4) v(k) CROSS JOIN LATERAL "
         f"(SELECT * FROM {f.t('eth_tx')} t WHERE t.hash = %s AND v.k > 0 OFFSET 0) t")
    got = pg.execute(q, (h,)).fetchall()
    assert len(got) == 4 and len({r[1:] for r in got}) == 1 and got[0][3] == h, got
    plan = explain(pg, q.replace("%s", f"'{h}'"), "ANALYZE, VERBOSE, COSTS OFF, TIMING OFF")
    assert "Answers Reused by Rescans: 3" in plan, plan


def requests_in_plan(plan, name):
    """The integer property NAME of an EXPLAIN text plan, or None."""
    for line in plan.splitlines():
        line = line.strip()
        if line.startswith(name + ": "):
            return int(line.split(": ", 1)[1])
    return None


def test_explain_expects_the_requests_the_learnt_size_sends(pg, sized):
    """Planned Requests is the fewest, at batch_blocks per request (what
    max_requests is checked against); once the session has seen a scan of
    the kind, Expected Requests is what it sends at the learnt size, shown
    when that is more."""
    make, ctl, target = sized
    f = make()
    q = FULL.format(t=f.t("eth_tx"), lo=200, hi=399)

    plan = explain(pg, q)
    assert requests_in_plan(plan, "Planned Requests") == math.ceil(200 / BATCH), plan
    assert requests_in_plan(plan, "Expected Requests") is None, "nothing seen yet, nothing expected"
    want = learn(pg, ctl, f, target)
    plan = explain(pg, q)
    expected = requests_in_plan(plan, "Expected Requests")
    assert requests_in_plan(plan, "Planned Requests") == math.ceil(200 / BATCH), plan
    assert expected is not None and expected > math.ceil(200 / BATCH), plan
    # what the scan then sends, as the node saw it and as ANALYZE counts it
    ctl.clear_log()
    analyzed = explain(pg, q, "ANALYZE, VERBOSE, COSTS OFF, TIMING OFF")
    sent = len(spans(ctl, 200, 399))
    assert requests_in_plan(analyzed, "Requests") == sent, analyzed
    assert "Expected Requests" not in analyzed, "ANALYZE shows the count itself"
    assert abs(sent - expected) <= 1, (sent, expected, want)
    # a scan that fits one request keeps it: nothing more to expect
    one = explain(pg, FULL.format(t=f.t("eth_tx"), lo=200, hi=200 + BATCH - 1))
    assert requests_in_plan(one, "Planned Requests") == 1, one
    assert requests_in_plan(one, "Expected Requests") is None, one
    # another session has seen nothing
    with _connect() as fresh:
        other = explain(fresh, q)
    assert requests_in_plan(other, "Expected Requests") is None, other


def test_token_scans_with_and_without_addresses_learn_apart(pg, make_fdw, fault_endpoint, control):
    """A token transfer scan that pushes an address and one that does not are
    two kinds: neither sizes the other's first chunk, and EXPLAIN finds the
    size its own kind learnt."""
    ctl = control(fault_endpoint)
    ctl.clear_faults()
    probe = make_fdw(fault_endpoint, batch_blocks=BATCH, compression="none", timeout_ms=20000)
    full = "SELECT * FROM {t} WHERE block BETWEEN {lo} AND {hi}"
    _, probe_bytes, _ = first_request(pg, ctl, full.format(t=probe.t("eth_token_transfer"), lo=FIRST[0],
                                                           hi=FIRST[1]), *FIRST)
    mb = math.ceil(probe_bytes * 2 / 2**20)
    target = min(4 * 2**20, mb * 2**20 / 4)
    want = int(target / (probe_bytes / BATCH))
    assert want < BATCH * 0.8, f"token answers too small for this test: {probe_bytes} bytes"
    f = make_fdw(fault_endpoint, batch_blocks=BATCH, max_response_mb=mb, compression="none", timeout_ms=20000)
    t = f.t("eth_token_transfer")
    who = pg.execute(f"SELECT from_address FROM {probe.t('eth_token_transfer')} "
                     "WHERE block BETWEEN 200 AND 205 LIMIT 1").fetchone()[0]
    plain = full.format(t=t, lo=200, hi=399)
    filtered = plain + f" AND from_address = '{who}'"

    def expected(q):
        return requests_in_plan(explain(pg, q), "Expected Requests")

    # the probe and the look-up of who were another server's
    assert expected(plain) is None and expected(filtered) is None
    n, _, _ = first_request(pg, ctl, full.format(t=t, lo=FIRST[0], hi=FIRST[1]), *FIRST)
    assert n == BATCH
    assert expected(plain) is not None and expected(plain) > math.ceil(200 / BATCH)
    assert expected(filtered) is None, "the filtered kind has learnt nothing"
    # and a filtered scan still starts at batch_blocks
    ctl.clear_log()
    pg.execute(filtered).fetchall()
    first = sorted(spans(ctl, 200, 399))[0]
    assert first == (200, 200 + BATCH - 1), first
    # the unfiltered one starts at its own size
    ctl.clear_log()
    pg.execute(plain).fetchall()
    first = sorted(spans(ctl, 200, 399))[0]
    assert abs((first[1] - first[0] + 1) - want) <= 1, (first, want)


def test_explain_expects_nothing_of_bounds_it_cannot_count(pg, sized):
    """An open upper bound, a bound known only when the scan starts, or a
    list of blocks: no Expected Requests, whatever the session learnt."""
    make, ctl, target = sized
    f = make()
    learn(pg, ctl, f, target)
    t = f.t("eth_tx")
    for q in (f"SELECT * FROM {t} WHERE block >= 200",
              f"SELECT * FROM {t} WHERE block BETWEEN 200 AND (SELECT 399)",
              f"SELECT * FROM {t} WHERE block = ANY(ARRAY(SELECT generate_series(200, 399)))"):
        plan = explain(pg, q)
        assert "Foreign Scan" in plan and requests_in_plan(plan, "Expected Requests") is None, plan
    # the same bounds as constants do
    plan = explain(pg, f"SELECT * FROM {t} WHERE block BETWEEN 200 AND 399")
    assert requests_in_plan(plan, "Expected Requests") is not None, plan
