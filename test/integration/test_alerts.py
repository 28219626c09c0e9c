"""Alerts inside PostgreSQL (issue 17), with a real listener.

A generated chain of our own (test/geth-server), four alert rules and a
psycopg connection that LISTENs to ethwhale_alert. The expected alerts are
computed here from the blocks as the server serves them (plain GraphQL, not
the wrapper), eth_usd_daily.csv, the chain's tokens and the labels written
here, with the rule semantics of README "Alerts":

- every matching alert of a sync arrives once, with the transfer's fields;
  the NOTIFY payloads stay under 8000 bytes; alerts_since(0) has the same;
- a listener that disconnects and comes back resumes from the last event it
  saw (alerts_since) and, with the notifications after, has every alert once;
- a fork (/control/fork) retracts the alerts of the replaced blocks, with an
  event each, and the next sync alerts the new blocks;
- a batch rolled back leaves no alert and sends no notification; a label
  too long for a payload gives the short form and the whole in alerts_since;
- bad rules are refused with the reason; scripts/watch prints the feed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from decimal import Decimal

import psycopg
import pytest

from chain_truth import (Prices, add_server, cents, chain, connect, expected_alerts, moves, new_db,  # noqa: F401
                         readable, write_labels)
from conftest import REPO_ROOT

MARK = '{"event": "test-marker"}'


def rules_for(facts: dict) -> dict[str, dict]:
    tokens = {t["symbol"]: t["address"] for t in facts["tokens"]}
    return {
        "big ETH": {"min_usd": 2000000, "token": "ETH"},
        "whale 1 sends": {"address": facts["whales"][0], "direction": "out"},
        "into the exchange": {"min_usd": 20000, "counterparty_category": "exchange", "direction": "out"},
        "big USDX": {"min_usd": 1000000, "token": tokens["USDX"]},
    }


def setup(c, srv, files, data_dir, facts, rules, hot_label="Synthex Exchange hot wallet"):
    add_server(c, srv.endpoint)
    c.execute("SELECT ethwhale.load_prices(%s)", [readable(data_dir / "eth_usd_daily.csv", files)])
    for t in facts["tokens"]:
        if t.get("priced"):
            c.execute("INSERT INTO ethwhale.token (address, symbol, decimals, usd_peg) VALUES (%s, %s, %s, %s)",
                      [t["address"], t["symbol"], t["decimals"], 1 if t["priced"] == "usd" else None])
    labels = {facts["exchange"]["hot"]: (hot_label, "exchange"),
              facts["exchange"]["cold"]: ("Synthex Exchange cold wallet", "exchange")}
    c.execute("SELECT ethwhale.load_labels(%s)",
              [write_labels(files, [(a, lab, cat) for a, (lab, cat) in labels.items()])])
    for name, r in rules.items():
        c.execute("SELECT ethwhale.add_alert_rule(%s, min_usd => %s, token => %s, address => %s,"
                  " counterparty_category => %s, direction => %s)",
                  [name, r.get("min_usd"), r.get("token"), r.get("address"), r.get("counterparty_category"),
                   r.get("direction", "any")])
    c.execute("SET ethwhale.sync_batch_blocks = 40")
    return labels


def token_table(facts) -> dict:
    return {t["address"]: (t["decimals"], Decimal(1) if t["priced"] == "usd" else None)
            for t in facts["tokens"] if t.get("priced")}


class Listener:
    """A connection that LISTENs to ethwhale_alert and reads notifications up
    to a marker the test sends after its syncs (notifications come in
    commit order, so everything committed before the marker is before it)."""

    def __init__(self, db: str):
        self.conn = connect(db)
        self.conn.execute("LISTEN ethwhale_alert")

    def until_marker(self, limit: float = 120) -> list[dict]:
        got = []
        end = time.monotonic() + limit
        for n in self.conn.notifies(timeout=max(end - time.monotonic(), 0.1)):
            assert len(n.payload.encode()) < 8000, len(n.payload)
            if n.payload == MARK:
                return got
            got.append(json.loads(n.payload, parse_float=Decimal))
            if time.monotonic() > end:
                break
        pytest.fail(f"no marker within {limit} s; got {len(got)} notifications")

    def close(self):
        self.conn.close()


def mark(c) -> None:
    c.execute("SELECT pg_notify('ethwhale_alert', %s)", [MARK])


def check_fields(p: dict, want: dict, labels: dict) -> None:
    m = want
    assert (p["block"], p["from"], p["to"], p["kind"], p["direction"]) == \
        (m["block"], m["from"], m["to"], m["kind"], m["direction"]), (p, m)
    assert Decimal(str(p["amount"])) == m["amount"], (p, m)
    assert (Decimal(str(p["value_usd"])) if p["value_usd"] is not None else None) == \
        (cents(m["usd"]) if m["usd"] is not None else None), (p, m)
    assert p["token"] == m["token"]
    assert (p["from_label"], p["to_label"]) == (labels.get(m["from"], (None,))[0], labels.get(m["to"], (None,))[0])
    from datetime import datetime, timezone
    assert p["time"] == datetime.fromtimestamp(m["time"], tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def key(p: dict) -> tuple:
    return (p["rule"], p["tx_hash"], p["log_index"])


def test_every_alert_of_a_sync_once(new_db, own_server, readable_dir, data_dir):
    srv = own_server("--generate", "200", "--seed", "17", "--txs-per-block", "30-60")
    facts = srv.control.chain()
    rules = rules_for(facts)
    db = new_db()
    listener = Listener(db)
    try:
        with connect(db) as c:
            labels = setup(c, srv, readable_dir, data_dir, facts, rules)
            c.execute("CALL ethwhale.sync('geth', 0, 199)")
            mark(c)
            got = listener.until_marker()
            since = c.execute("SELECT event_id, event, payload::text FROM ethwhale.alerts_since(0)").fetchall()
            n_view = c.execute("SELECT count(*) FROM ethwhale.alerts").fetchone()[0]
    finally:
        listener.close()
    ms = moves(chain(srv.control, 0, 199), Prices(data_dir), token_table(facts))
    want = expected_alerts(rules, ms, labels)
    per_rule = {r: sum(1 for k in want if k[0] == r) for r in rules}
    assert all(n >= 3 for n in per_rule.values()), per_rule   # every rule has something to say
    assert len(got) == len({key(p) for p in got}), "an alert arrived twice"
    assert {key(p) for p in got} == want.keys()
    for p in got:
        assert p["event"] == "alert"
        check_fields(p, want[key(p)], labels)
    ids = [p["event_id"] for p in got]
    assert ids == sorted(ids)
    assert [(e, ev) for e, ev, _ in since] == [(i, "alert") for i in ids]
    assert [json.loads(pl, parse_float=Decimal) for _, _, pl in since] == got
    assert n_view == len(want)

    # scripts/watch prints the same feed (--once: what alerts_since has, then exit)
    env = {**os.environ, "PGDATABASE": db}
    out = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "watch"), "--once", "--json"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x, parse_float=Decimal) for x in out.stdout.splitlines()]
    assert [x["event_id"] for x in lines] == ids
    text = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "watch"), "--once", "--since", str(ids[-3])],
                          capture_output=True, text=True, env=env, timeout=120)
    assert text.returncode == 0, text.stderr
    shown = text.stdout.splitlines()
    assert len(shown) == 2 and all(f"#{i}" in line for i, line in zip(ids[-2:], shown)), shown
    last = got[-1]
    assert last["tx_hash"][:10] in shown[-1] and str(last["block"]) in shown[-1], shown[-1]


def test_resume_after_a_disconnect(new_db, own_server, readable_dir, data_dir):
    srv = own_server("--generate", "400", "--seed", "18", "--txs-per-block", "30-60", "--head", "80")
    facts = srv.control.chain()
    rules = rules_for(facts)
    db = new_db()
    seen: list[dict] = []
    with connect(db) as c:
        labels = setup(c, srv, readable_dir, data_dir, facts, rules)
        first = Listener(db)
        c.execute("CALL ethwhale.sync('geth', 0)")
        mark(c)
        seen += first.until_marker()
        last = seen[-1]["event_id"]
        first.close()                                  # the consumer goes away ...
        for head in (150, 230):                        # ... while the chain grows and is synced
            assert srv.control._req("POST", "/control/head", {"number": head})[0] == 200
            c.execute("CALL ethwhale.sync('geth')")
        second = Listener(db)                          # back: LISTEN first, then catch up
        missed = c.execute("SELECT payload::text FROM ethwhale.alerts_since(%s)", [last]).fetchall()
        seen += [json.loads(p, parse_float=Decimal) for (p,) in missed]
        last = seen[-1]["event_id"]
        assert srv.control._req("POST", "/control/head", {"number": 300})[0] == 200
        c.execute("CALL ethwhale.sync('geth')")
        mark(c)
        seen += [p for p in second.until_marker() if p["event_id"] > last]
        second.close()
    assert len(missed) > 0, "alerts were raised while nobody listened"
    ms = moves(chain(srv.control, 0, 300), Prices(data_dir), token_table(facts))
    want = expected_alerts(rules, ms, labels)
    assert len(seen) == len({key(p) for p in seen}), "an alert was seen twice"
    assert {key(p) for p in seen} == want.keys()
    ids = [p["event_id"] for p in seen]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_reorg_retracts_the_alerts_of_replaced_blocks(new_db, own_server, readable_dir, data_dir):
    srv = own_server("--generate", "200", "--seed", "19", "--txs-per-block", "30-60")
    facts = srv.control.chain()
    rules = rules_for(facts)
    tokens = token_table(facts)
    db = new_db()
    with connect(db) as c:
        labels = setup(c, srv, readable_dir, data_dir, facts, rules)
        c.execute("CALL ethwhale.sync('geth')")
        before = expected_alerts(rules, moves(chain(srv.control, 0, 199), Prices(data_dir), tokens), labels)
        old_ids = dict(c.execute("SELECT id, block FROM ethwhale.alerts").fetchall())
        listener = Listener(db)
        fork = srv.control._req("POST", "/control/fork", {"depth": 30, "seed": "alerts"})[1]
        assert (fork["from"], fork["to"]) == (170, 199)
        notices = []
        c.add_notice_handler(lambda n: notices.append(n.message_primary))
        c.execute("CALL ethwhale.sync('geth')")
        mark(c)
        got = listener.until_marker()
        listener.close()
        live = {(r[0], r[1], r[2]) for r in c.execute("SELECT rule_name, tx_hash, log_index FROM ethwhale.alerts")}
        log_rows = c.execute("SELECT id, retracted_at IS NOT NULL, retracted_reason FROM ethwhale.alert_log").fetchall()
    after = expected_alerts(rules, moves(chain(srv.control, 0, 199), Prices(data_dir), tokens), labels)
    replaced = {k for k, m in before.items() if m["block"] >= 170}
    assert len(replaced) >= 5, "the forked blocks had alerts to retract"
    retractions = [p for p in got if p["event"] == "retraction"]
    alerts = [p for p in got if p["event"] == "alert"]
    assert {key(p) for p in retractions} == replaced
    assert all(old_ids[p["id"]] >= 170 and "170..199" in p["reason"] for p in retractions)
    assert {key(p) for p in alerts} == {k for k, m in after.items() if m["block"] >= 170}
    assert max(p["event_id"] for p in retractions) < min(p["event_id"] for p in alerts), \
        "the retractions come before the new blocks' alerts"
    assert live == after.keys()
    assert any("170..199" in n and f"{len(replaced)} alert(s) of those blocks retracted" in n for n in notices), notices
    retracted = {i for i, r, reason in log_rows if r}
    assert retracted == {p["id"] for p in retractions}


def test_rolled_back_batch_alerts_nothing(new_db, own_server, readable_dir, data_dir):
    """Inside BEGIN ... ROLLBACK sync copies one batch: its alerts go with it."""
    srv = own_server("--generate", "100", "--seed", "17", "--txs-per-block", "30-60")
    facts = srv.control.chain()
    db = new_db()
    listener = Listener(db)
    try:
        with connect(db) as c:
            setup(c, srv, readable_dir, data_dir, facts, rules_for(facts))
            c.execute("BEGIN")
            c.execute("CALL ethwhale.sync('geth', 0, 99)")
            inside = c.execute("SELECT count(*) FROM ethwhale.alerts").fetchone()[0]
            c.execute("ROLLBACK")
            mark(c)
            got = listener.until_marker()
            assert c.execute("SELECT count(*) FROM ethwhale.alert_log").fetchone()[0] == 0
    finally:
        listener.close()
    assert inside > 0 and got == []


def test_long_label_gives_the_short_payload(new_db, own_server, readable_dir, data_dir):
    srv = own_server("--generate", "120", "--seed", "17", "--txs-per-block", "30-60")
    facts = srv.control.chain()
    rules = {"into the exchange": rules_for(facts)["into the exchange"]}
    long_label = "Synthex Exchange hot wallet " + "x" * 9000
    db = new_db()
    listener = Listener(db)
    try:
        with connect(db) as c:
            labels = setup(c, srv, readable_dir, data_dir, facts, rules, hot_label=long_label)
            c.execute("CALL ethwhale.sync('geth', 0, 119)")
            mark(c)
            got = listener.until_marker()
            full = dict(c.execute("SELECT event_id, payload::text FROM ethwhale.alerts_since(0)").fetchall())
    finally:
        listener.close()
    want = expected_alerts(rules, moves(chain(srv.control, 0, 119), Prices(data_dir), token_table(facts)), labels)
    assert len(want) >= 1 and len(got) == len(want)
    short = 0
    for p in got:
        whole = json.loads(full[p["event_id"]], parse_float=Decimal)
        if long_label in (whole["from_label"], whole["to_label"]):
            # the hot wallet's label does not fit: the short form, the rest in alerts_since
            assert p.get("truncated") is True and set(p) == {"event", "event_id", "id", "block", "tx_hash",
                                                             "log_index", "truncated"}, p
            assert (whole["tx_hash"], whole["log_index"], whole["block"]) == (p["tx_hash"], p["log_index"], p["block"])
            short += 1
        else:
            assert p == whole
    assert short >= 1


def test_bad_rules_are_refused_with_the_reason(new_db):
    db = new_db()
    with connect(db) as c:
        with pytest.raises(psycopg.errors.CheckViolation) as e:
            c.execute("SELECT ethwhale.add_alert_rule('x', min_usd => 1, direction => 'sideways')")
        assert "direction" in e.value.diag.message_primary and e.value.diag.message_hint
        with pytest.raises(psycopg.errors.InvalidParameterValue) as e:
            c.execute("SELECT ethwhale.add_alert_rule('x', address => '0x1234')")
        assert '"0x1234" is not an address' in e.value.diag.message_primary and e.value.diag.message_detail
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            c.execute("SELECT ethwhale.add_alert_rule('x', min_usd => 1, token => 'USDT')")
        with pytest.raises(psycopg.errors.CheckViolation) as e:
            c.execute("INSERT INTO ethwhale.alert_rule (name, token) VALUES ('everything', 'ETH')")
        assert "every transfer" in e.value.diag.message_primary and e.value.diag.message_hint
        with pytest.raises(psycopg.errors.CheckViolation):
            c.execute("SELECT ethwhale.add_alert_rule('x', min_usd => -5)")
        with pytest.raises(psycopg.errors.NotNullViolation):
            c.execute("SELECT ethwhale.add_alert_rule(' ', min_usd => 5)")
        # a checksummed address and 'eth' are taken as what they mean
        rid = c.execute("SELECT ethwhale.add_alert_rule('mixed case', address => "
                        "'0xD476715A69805F8A3DF635BDD795F0A600715AFF', token => 'eth', direction => 'IN')").fetchone()[0]
        row = c.execute("SELECT address, token, direction FROM ethwhale.alert_rule WHERE id = %s", [rid]).fetchone()
        assert row == ("0xd476715a69805f8a3df635bdd795f0a600715aff", "ETH", "in")
        assert c.execute("SELECT count(*) FROM ethwhale.alert_rule").fetchone()[0] == 1
