"""Upgrade and dump/restore of the extension's SQL (issues 12 and 17).

- upgrade:  CREATE EXTENSION ethwhale_fdw VERSION '0.1' (or '0.2', '0.3') then
            ALTER EXTENSION ethwhale_fdw UPDATE (0.1 goes through 0.2 and 0.3), in one fresh
            database, must give exactly the
            objects of CREATE EXTENSION ethwhale_fdw (the current version, the
            control file's default_version) in
            another: member objects, view and function definitions, columns,
            indexes, constraints, triggers, comments, the pg_dump
            registrations and the seed rows.
- 0.2 data: the rows of every table a 0.2 user fills are there after the
            update, and whale_candidates (made again by the update) is what a
            refresh of those rows makes.
- 0.3 sync: a few hundred blocks synced at 0.3 from a test server are kept
            by the update to 0.4, keyed by the chain id its node reports (or
            SET ethwhale.upgrade_chain_id when the node is down), in
            partitions that are not members of the extension; the cursor
            goes on; the views, refreshed, equal those of 0.3.
- 0.1 data: the seed rows a 0.1 user changed or deleted are the user's after
            the update (not builtin, recorded in ethwhale.builtin_removed).
- dump:     pg_dump of a database whose user edited every table a user edits
            (a token added, a builtin token changed, a builtin category
            deleted and one added, prices, labels, the local chain, ...)
            restored with psql -v ON_ERROR_STOP=1 into a fresh database (with
            or without the extension created already) gives the same rows;
            with 0.3's alert rules, alerts and balance anchors, and their
            sequences go on from where they were (a rule or alert added
            after the restore does not collide).  0.4: the local chain's
            partitions (ordinary tables, not members of the extension) come
            back with their rows, attached, and the sync goes on.
"""

from __future__ import annotations

import difflib
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from conftest import PG_BINDIR, PG_EXEC, REPO_ROOT, SERVER_TMPDIR
from test_chains import assert_views_full



def control_version() -> str:
    text = (REPO_ROOT / "ethwhale_fdw.control").read_text()
    return re.search(r"^default_version\s*=\s*'([^']+)'", text, re.M).group(1)


# CREATE EXTENSION of this tree's version (see test_upgrade_from_0_1_equals_fresh_install)
CREATE_CURRENT = f"CREATE EXTENSION ethwhale_fdw VERSION '{control_version()}'"


def connect(dbname: str) -> psycopg.Connection:
    return psycopg.connect(dbname=dbname, autocommit=True)


@pytest.fixture
def fresh_db(extension_ready):
    """fresh_db() -> name of a new empty database (dropped after the test)."""
    made = []

    def make() -> str:
        name = "ew_up_" + uuid.uuid4().hex[:8]
        with psycopg.connect(autocommit=True) as c:
            c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        made.append(name)
        return name

    yield make
    with psycopg.connect(autocommit=True) as c:
        for name in made:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# --------------------------------------------------------------------------
# what an installed extension consists of

_MEMBERS = """
    SELECT pg_describe_object(d.classid, d.objid, d.objsubid)
    FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
    WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'ethwhale_fdw'
"""
_SCHEMA_RELS = """
    SELECT c.oid, c.relname, c.relkind FROM pg_class c
    WHERE c.relnamespace = 'ethwhale'::regnamespace
"""

# Each entry: a name and a query giving (key, text) rows.
CATALOG_QUERIES = {
    "members": f"SELECT m, '' FROM ({_MEMBERS}) x(m)",
    "views": """
        SELECT c.relname || ' (' || c.relkind::text || ')', pg_get_viewdef(c.oid)
        FROM pg_class c WHERE c.relnamespace = 'ethwhale'::regnamespace AND c.relkind IN ('v', 'm')""",
    "functions": """
        SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid)
        FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
        JOIN pg_extension e ON e.oid = d.refobjid
        WHERE d.deptype = 'e' AND e.extname = 'ethwhale_fdw'""",
    "columns": """
        SELECT c.relname || '.' || lpad(a.attnum::text, 3, '0') || ' ' || a.attname,
               format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
               || coalesce(' DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid), '')
               || coalesce(' COLLATE ' || nullif(a.attcollation, 0)::regcollation::text, '')
        FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
        WHERE c.relnamespace = 'ethwhale'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')""",
    "indexes": """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
        WHERE c.relnamespace = 'ethwhale'::regnamespace""",
    "constraints": """
        SELECT co.conrelid::regclass::text || ' ' || co.conname, pg_get_constraintdef(co.oid)
        FROM pg_constraint co WHERE co.connamespace = 'ethwhale'::regnamespace""",
    "triggers": """
        SELECT t.tgrelid::regclass::text || ' ' || t.tgname, pg_get_triggerdef(t.oid)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = 'ethwhale'::regnamespace AND NOT t.tgisinternal""",
    "comments": f"""
        SELECT pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description
        FROM pg_description d
        WHERE pg_describe_object(d.classoid, d.objoid, d.objsubid) IN (SELECT m FROM ({_MEMBERS}) x(m))
           OR (d.classoid = 'pg_class'::regclass
               AND d.objoid IN (SELECT oid FROM pg_class WHERE relnamespace = 'ethwhale'::regnamespace))""",
    "dump registrations": """
        SELECT cfg::regclass::text, coalesce(cond, '<null>')
        FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(cfg, cond)
        WHERE e.extname = 'ethwhale_fdw'""",
    "extension": """
        SELECT extname, extversion || ' relocatable=' || extrelocatable || ' schema=' || extnamespace::regnamespace
        FROM pg_extension WHERE extname = 'ethwhale_fdw'""",
}

# The tables with rows of their own after CREATE EXTENSION, and every table a
# user edits (for the dump test): name -> ORDER BY.
SEEDED = {"ethwhale.token": "address", "ethwhale.excluded_category": "category",
          "ethwhale.builtin_removed": "table_name, key"}
USER_TABLES = {
    **SEEDED,
    "ethwhale.alert_rule": "id",
    "ethwhale.alert_log": "id",
    "ethwhale.balance_anchor": "address",
    "ethwhale.eth_usd": "day",
    "ethwhale.address_label": "address",
    "ethwhale.blocks": "number",
    "ethwhale.txs": "block, tx_index",
    "ethwhale.token_transfers": "block, log_index",
    "ethwhale.sync_state": "server",
    "ethwhale.address_info": "address",
}
# 0.4: the chain tables are keyed by chain id first
USER_TABLES_0_4 = {**USER_TABLES,
                   "ethwhale.balance_anchor": "chain_id, address",
                   "ethwhale.blocks": "chain_id, number",
                   "ethwhale.txs": "chain_id, block, tx_index",
                   "ethwhale.token_transfers": "chain_id, block, log_index",
                   "ethwhale.sync_state": "chain_id",
                   "ethwhale.address_info": "chain_id, address"}
# The tables whose rows the update to 0.4 keeps, the columns they had
# before it (0.4 adds chain_id, and sync_state's partition_blocks, mode,
# min_usd)
KEPT_0_3 = ("ethwhale.blocks", "ethwhale.txs", "ethwhale.token_transfers", "ethwhale.sync_state",
            "ethwhale.address_info", "ethwhale.alert_log", "ethwhale.balance_anchor")


def describe(dbname: str) -> dict[str, list[str]]:
    """Every catalog fact of CATALOG_QUERIES and the seed rows, as sorted lines."""
    out = {}
    with connect(dbname) as c:
        for name, q in CATALOG_QUERIES.items():
            # one line per line of each definition, prefixed with its object,
            # so that a diff shows the lines that differ
            out[name] = [f"{k} | {line}" if v else k
                         for k, v in sorted(c.execute(q).fetchall())
                         for line in (v.splitlines() or [""])]
        out["seed rows"] = rows(c, SEEDED)
    return out


def rows(c, tables: dict[str, str]) -> list[str]:
    lines = []
    for t, order in tables.items():
        for r in c.execute(f"SELECT * FROM {t} ORDER BY {order}").fetchall():
            lines.append(f"{t} {r!r}")
    return lines


def diff(a: list[str], b: list[str], la: str, lb: str) -> str:
    return "\n".join(difflib.unified_diff(a, b, la, lb, lineterm="", n=1))


# --------------------------------------------------------------------------
# upgrade


@pytest.mark.parametrize("old", ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6"])
def test_upgrade_equals_fresh_install(fresh_db, old):
    want = control_version()
    assert want not in ("0.1", "0.2", "0.3", "0.4", "0.5", "0.6"), "the control file's default_version should be past 0.6"
    up, fresh = fresh_db(), fresh_db()
    # The versions are named: other work trees may `make install` a control
    # file of their own into the same PostgreSQL while this runs.
    with connect(up) as c:
        c.execute(sql.SQL("CREATE EXTENSION ethwhale_fdw VERSION {}").format(sql.Literal(old)))
        c.execute(sql.SQL("ALTER EXTENSION ethwhale_fdw UPDATE TO {}").format(sql.Literal(want)))
        assert c.execute("SELECT extversion FROM pg_extension WHERE extname = 'ethwhale_fdw'").fetchone()[0] == want
    with connect(fresh) as c:
        c.execute(sql.SQL("CREATE EXTENSION ethwhale_fdw VERSION {}").format(sql.Literal(want)))

    a, b = describe(up), describe(fresh)
    counts = {k: len({line.split(" | ")[0] for line in v}) for k, v in b.items()}
    print(f"fresh {want}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    print("members:\n  " + "\n  ".join(b["members"]))
    # Comparing two empty sets would prove nothing.
    assert counts["members"] >= 50 and counts["functions"] >= 30 and counts["views"] >= 4, counts
    assert counts["columns"] >= 60 and counts["indexes"] >= 15 and counts["triggers"] >= 7, counts
    # 10 tables of 0.2; 0.3: alert_rule, alert_log, balance_anchor and the 3
    # sequences of the alerts; 0.4: blocks, txs and token_transfers are
    # partitioned tables, whose rows are in their partitions (ordinary
    # tables, dumped with their rows), so 3 fewer
    assert counts["dump registrations"] == 13 and counts["seed rows"] == 34, counts   # 5 tokens, 29 categories
    assert not any(line.split(" | ")[0] in ("ethwhale.blocks", "ethwhale.txs", "ethwhale.token_transfers")
                   for line in b["dump registrations"]), b["dump registrations"]
    # the partitioned tables' columns are compared too (relkind 'p')
    assert any(line.startswith("blocks.010 chain_id") for line in b["columns"]), b["columns"][:5]
    assert any("function ethwhale.sync_batch(" in m for m in b["members"])
    assert any("function ethwhale.alerts_record(" in m for m in b["members"])
    assert any("view ethwhale.alerts" == m for m in b["members"]), b["members"]
    # 0.5: the candidates' kept state
    assert any("table ethwhale.candidate_edges" == m for m in b["members"]), b["members"]
    assert any("function ethwhale.views_apply(" in m for m in b["members"]), b["members"]
    # 0.6: candidates_among replaces is_candidate
    assert any("function ethwhale.candidates_among(" in m for m in b["members"]), b["members"]
    # 0.7: a bulk sync builds the indexes of a partition after its rows
    assert any("function ethwhale.sync_bulk_begin(" in m for m in b["members"]), b["members"]
    assert any("function ethwhale.index_partitions(" in m for m in b["members"]), b["members"]
    assert not any("function ethwhale.is_candidate(" in m for m in b["members"]), b["members"]
    problems = [diff(a[k], b[k], f"{old} updated to {want}: {k}", f"fresh {want}: {k}")
                for k in b if a[k] != b[k]]
    assert not problems, "the updated extension differs from a fresh install:\n" + "\n\n".join(problems)


def test_upgrade_keeps_0_1_edits_of_seed_rows(fresh_db):
    db = fresh_db()
    with connect(db) as c:
        c.execute("CREATE EXTENSION ethwhale_fdw VERSION '0.1'")
        c.execute("UPDATE ethwhale.token SET usd_peg = 0.99 WHERE symbol = 'BUSD'")
        c.execute("DELETE FROM ethwhale.token WHERE symbol = 'DAI'")
        c.execute("INSERT INTO ethwhale.token VALUES ('0x1111111111111111111111111111111111111111', 'MINE', 8, 2)")
        c.execute("DELETE FROM ethwhale.excluded_category WHERE category = 'mining'")
        c.execute("INSERT INTO ethwhale.excluded_category VALUES ('gambling')")
        c.execute(sql.SQL("ALTER EXTENSION ethwhale_fdw UPDATE TO {}").format(sql.Literal(control_version())))
        tokens = c.execute("SELECT symbol, usd_peg, builtin FROM ethwhale.token ORDER BY symbol").fetchall()
        cats = c.execute("SELECT category, builtin FROM ethwhale.excluded_category ORDER BY 1").fetchall()
        removed = c.execute("SELECT table_name, key FROM ethwhale.builtin_removed ORDER BY 1, 2").fetchall()
    assert [(s, str(p) if p is not None else None, b) for s, p, b in tokens] == [
        ("BUSD", "0.99", False), ("MINE", "2", False), ("USDC", "1", True), ("USDT", "1", True),
        ("WETH", None, True)]
    assert ("gambling", False) in cats and ("mining", True) not in cats
    assert all(b for cat, b in cats if cat != "gambling") and len(cats) == 29   # 28 seeds left + gambling
    assert removed == [("excluded_category", "mining"),
                       ("token", "0x4fabb145d64652a948d72533023f6e7a623c7c53"),   # BUSD, changed
                       ("token", "0x6b175474e89094c44da98b954eedeac495271d0f")]   # DAI, deleted


# --------------------------------------------------------------------------
# dump and restore


def user_edits(c, chain_keyed: bool = True) -> None:
    """A row in every table a user edits, and edits of builtin rows
    (CHAIN_KEYED: the 0.4 tables, with chain_id, else those of 0.1-0.3)."""
    # a token of the user's, a builtin token changed, one deleted, one replaced by an INSERT
    c.execute("INSERT INTO ethwhale.token (address, symbol, decimals, usd_peg) "
              "VALUES ('0x1111111111111111111111111111111111111111', 'MINE', 8, 2)")
    c.execute("UPDATE ethwhale.token SET usd_peg = 0.99 WHERE symbol = 'BUSD'")
    c.execute("DELETE FROM ethwhale.token WHERE symbol = 'DAI'")
    c.execute("INSERT INTO ethwhale.token (address, symbol, decimals, usd_peg) "
              "VALUES ('0xdac17f958d2ee523a2206206994597c13d831ec7', 'USDT', 6, 1.001)")
    # a category added, a builtin one deleted, a builtin one renamed
    c.execute("INSERT INTO ethwhale.excluded_category (category) VALUES ('gambling')")
    c.execute("DELETE FROM ethwhale.excluded_category WHERE category = 'mining'")
    c.execute("UPDATE ethwhale.excluded_category SET category = 'dex-aggregator' WHERE category = 'dex'")
    # setting builtin on a user row does not hide it from pg_dump
    c.execute("UPDATE ethwhale.excluded_category SET builtin = true WHERE category = 'gambling'")
    c.execute("INSERT INTO ethwhale.eth_usd VALUES ('2023-05-01', 1871.25), ('2023-05-02', 1832.5)")
    c.execute("INSERT INTO ethwhale.address_label VALUES "
              "('0x2222222222222222222222222222222222222222', 'my exchange', 'exchange')")
    if not chain_keyed:
        c.execute("""INSERT INTO ethwhale.blocks VALUES
                     (7, '0xb7', '0xb6', '2023-05-01 00:00:07+00', '0xm', 21000, 30000000, 7, 1)""")
        c.execute("""INSERT INTO ethwhale.txs (block, tx_index, hash, from_address, to_address, value, block_time)
                     VALUES (7, 0, '0xt7', '0xa', '0xb', 123456789012345678901234567890, '2023-05-01 00:00:07+00')""")
        c.execute("""INSERT INTO ethwhale.token_transfers VALUES
                     (7, 3, '0xt7', '0xdac17f958d2ee523a2206206994597c13d831ec7', '0xa', '0xb', 5,
                      '2023-05-01 00:00:07+00')""")
        c.execute("INSERT INTO ethwhale.sync_state (server, remote_schema, first_block, next_block, last_hash) "
                  "VALUES ('geth', 'ethwhale_geth', 7, 8, '0xb7')")
        c.execute("INSERT INTO ethwhale.address_info VALUES ('0xb', 0, false, '2023-05-01 00:00:00+00')")
        return
    # 0.4: a cursor row of chain 1, its partitions, then the rows with chain_id
    c.execute("INSERT INTO ethwhale.sync_state (chain_id, server, remote_schema, first_block, next_block, last_hash,"
              " partition_blocks) VALUES (1, 'geth', 'ethwhale_geth', 7, 8, '0xb7', 1000)")
    assert c.execute("SELECT ethwhale.ensure_partitions(1, 7, 7)").fetchone()[0] == 3
    c.execute("""INSERT INTO ethwhale.blocks VALUES
                 (7, '0xb7', '0xb6', '2023-05-01 00:00:07+00', '0xm', 21000, 30000000, 7, 1, 1)""")
    c.execute("""INSERT INTO ethwhale.txs (chain_id, block, tx_index, hash, from_address, to_address, value, block_time)
                 VALUES (1, 7, 0, '0xt7', '0xa', '0xb', 123456789012345678901234567890, '2023-05-01 00:00:07+00')""")
    c.execute("""INSERT INTO ethwhale.token_transfers VALUES
                 (7, 3, '0xt7', '0xdac17f958d2ee523a2206206994597c13d831ec7', '0xa', '0xb', 5,
                  '2023-05-01 00:00:07+00', 1)""")
    c.execute("INSERT INTO ethwhale.address_info VALUES ('0xb', 0, false, '2023-05-01 00:00:00+00', 1)")


def user_edits_0_3(c, chain_keyed: bool = True) -> None:
    """Rows in the tables 0.3 added: two alert rules, an alert in force and a
    retracted one, a balance anchor."""
    c.execute("SELECT ethwhale.add_alert_rule('big ETH', min_usd => 1000000, token => 'ETH')")
    c.execute("SELECT ethwhale.add_alert_rule('into exchanges', min_usd => 50000, "
              "counterparty_category => 'exchange', direction => 'out')")
    for retracted in (None, "2023-05-01 00:10:00+00"):
        c.execute("""INSERT INTO ethwhale.alert_log
                       (rule_id, rule_name, direction, block, block_hash, block_time, tx_hash, log_index, kind,
                        symbol, from_address, to_address, to_label, to_category, amount, value_usd,
                        created_at, retracted_at, retracted_reason)
                     VALUES (1, 'big ETH', 'out', 7, '0xb7', '2023-05-01 00:00:07+00', '0xt7', -1, 'ETH', 'ETH',
                             '0xa', '0xb', 'my exchange', 'exchange', 123456789012.345678901234567890,
                             231018987654321.25, '2023-05-01 00:01:00+00', %s, %s)""",
                  [retracted, retracted and "reorg: the node replaced blocks 7..7"])
    c.execute("INSERT INTO ethwhale.balance_anchor (address, block, block_hash, balance, server, fetched_at"
              + (", chain_id" if chain_keyed else "") + ") VALUES "
              "('0xb', 7, '0xb7', 123456789012345678901234567890, 'geth', '2023-05-01 00:02:00+00'"
              + (", 1" if chain_keyed else "") + ")")
    if chain_keyed:
        c.execute("UPDATE ethwhale.alert_log SET chain_id = 1")


# how many partitions of the chain tables are members of the extension (0:
# pg_dump dumps them with their rows)
MEMBER_PARTITIONS = """
    SELECT count(*) FROM ethwhale.partitions p
    JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = p.partition AND d.deptype = 'e'"""


def run(*args: str, **kw) -> subprocess.CompletedProcess:
    p = subprocess.run(args, capture_output=True, text=True, **kw)
    assert p.returncode == 0, f"{' '.join(args)} failed ({p.returncode}):\n{p.stderr[-3000:]}"
    return p


@pytest.mark.parametrize("target", ["empty", "with extension"])
def test_dump_restore_keeps_user_rows(fresh_db, target):
    src, dst = fresh_db(), fresh_db()
    with connect(src) as c:
        c.execute(CREATE_CURRENT)
        user_edits(c)
        user_edits_0_3(c)
        want = rows(c, USER_TABLES_0_4)
        parts = c.execute("SELECT table_name, partition::text, chain_id, first_block, last_block"
                          " FROM ethwhale.partitions ORDER BY 2").fetchall()
        last = c.execute("SELECT (SELECT max(id) FROM ethwhale.alert_rule), (SELECT max(id) FROM ethwhale.alert_log),"
                         " (SELECT max(event_id) FROM ethwhale.alert_log)").fetchone()
    if target == "with extension":
        with connect(dst) as c:
            c.execute(CREATE_CURRENT)
    else:
        # the dump's CREATE EXTENSION takes the installed default_version
        with connect(dst) as c:
            got = c.execute("SELECT default_version FROM pg_available_extensions "
                            "WHERE name = 'ethwhale_fdw'").fetchone()[0]
        assert got == control_version(), (
            f"the installed ethwhale_fdw.control has default_version {got}, this tree's "
            f"{control_version()}: another tree ran make install meanwhile; run make install again")

    dump = run(*PG_EXEC, str(PG_BINDIR / "pg_dump"), "--no-owner", src).stdout
    assert "COPY ethwhale.token " in dump and "COPY ethwhale.excluded_category " in dump
    p = run(*PG_EXEC, str(PG_BINDIR / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dst, input=dump)
    assert "ERROR" not in p.stderr, p.stderr

    with connect(dst) as c:
        got = rows(c, USER_TABLES_0_4)
        got_parts = c.execute("SELECT table_name, partition::text, chain_id, first_block, last_block"
                              " FROM ethwhale.partitions ORDER BY 2").fetchall()
        members = c.execute(MEMBER_PARTITIONS).fetchone()[0]
        tokens = dict(c.execute("SELECT symbol, builtin FROM ethwhale.token").fetchall())
        n_usdt = c.execute("SELECT count(*) FROM ethwhale.token WHERE symbol = 'USDT'").fetchone()[0]
        cats = dict(c.execute("SELECT category, builtin FROM ethwhale.excluded_category").fetchall())
    assert got == want, "restored rows differ:\n" + diff(want, got, "dumped", "restored")
    # the partitions (ordinary tables) came back attached, with their rows
    assert parts == [("blocks", "ethwhale.blocks_1_0000000000", 1, 0, 999),
                     ("token_transfers", "ethwhale.token_transfers_1_0000000000", 1, 0, 999),
                     ("txs", "ethwhale.txs_1_0000000000", 1, 0, 999)], parts
    assert got_parts == parts and members == 0, (got_parts, members)
    assert any(line.startswith("ethwhale.blocks ") for line in got), got
    assert any(line.startswith("ethwhale.alert_log ") for line in got) and \
        any(line.startswith("ethwhale.balance_anchor ") for line in got), got
    # the sequences of the alert tables were dumped too: what comes next
    # does not collide with the restored rows
    with connect(dst) as c:
        rule = c.execute("SELECT ethwhale.add_alert_rule('after the restore', min_usd => 1)").fetchone()[0]
        alert = c.execute("""INSERT INTO ethwhale.alert_log (rule_id, rule_name, direction, block, block_hash,
                                 block_time, tx_hash, log_index, kind, from_address, to_address, amount)
                             VALUES (%s, 'after the restore', 'in', 8, '0xb8', now(), '0xt8', -1, 'ETH',
                                     '0xa', '0xb', 1)
                             RETURNING id, event_id""", [rule]).fetchone()
    assert rule > last[0] and alert[0] > last[1] and alert[1] > last[2], (rule, alert, last)
    # the user's rows are there, the builtin ones once, the deleted ones not at all
    assert tokens == {"MINE": False, "BUSD": False, "USDT": False, "USDC": True, "WETH": True}, tokens
    assert n_usdt == 1
    exchanges = {"binance", "bitfinex", "bithumb", "bitstamp", "bittrex", "bybit", "coinbase",
                 "coinone", "crypto-com", "ftx", "gate-io", "gemini", "huobi", "kraken", "kucoin",
                 "okex", "okx", "poloniex", "upbit", "hot-wallet", "cold-wallet"}   # seeded by 0.2
    assert cats == {"exchange": True, "bridge": True, "bridged-token": True, "token-contract": True,
                    "old-contract": True, "contract": True, "dex-aggregator": False, "gambling": False,
                    **{n: True for n in exchanges}}, cats


USER_TABLES_0_2 = {k: v for k, v in USER_TABLES.items()
                   if k not in ("ethwhale.alert_rule", "ethwhale.alert_log", "ethwhale.balance_anchor")}


def old_columns(c, tables) -> dict[str, list[str]]:
    """The columns of TABLES now (before an update), in order."""
    return {t: [r[0] for r in c.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped"
        " ORDER BY attnum", [t])] for t in tables}


def rows_of(c, tables: dict[str, str], cols: dict[str, list[str]]) -> list[str]:
    """rows() of the columns COLS of each table (those of an older version)."""
    lines = []
    for t, order in tables.items():
        names = ", ".join(f'"{n}"' for n in cols[t]) if t in cols else "*"
        for r in c.execute(f"SELECT {names} FROM {t} ORDER BY {order}").fetchall():
            lines.append(f"{t} {r!r}")
    return lines


def test_update_from_0_2_keeps_user_rows(fresh_db):
    """A 0.2 database's rows are all there after the update (0.4: keyed by
    the chain id given in ethwhale.upgrade_chain_id, its node being
    unreachable), and the views, refreshed, hold what 0.2's did (whale
    candidates with the new reasons and evidence)."""
    db = fresh_db()
    with connect(db) as c:
        c.execute("CREATE EXTENSION ethwhale_fdw VERSION '0.2'")
        user_edits(c, chain_keyed=False)
        c.execute("REFRESH MATERIALIZED VIEW ethwhale.large_transfers")
        cols = old_columns(c, [t for t in KEPT_0_3 if t in USER_TABLES_0_2])
        want = rows_of(c, USER_TABLES_0_2, cols)
        lt_cols = old_columns(c, ["ethwhale.large_transfers"])["ethwhale.large_transfers"]
        lt_sql = "SELECT " + ", ".join(lt_cols) + " FROM ethwhale.large_transfers ORDER BY tx_hash, log_index"
        lt = c.execute(lt_sql).fetchall()
        assert len(lt) == 1, lt      # the one synced transaction, of 1.2e11 ETH
        # server 'geth' does not exist: the update cannot ask its node
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as ei:
            c.execute(sql.SQL("ALTER EXTENSION ethwhale_fdw UPDATE TO {}").format(sql.Literal(control_version())))
        assert "ethwhale.upgrade_chain_id" in (ei.value.diag.message_hint or ""), ei.value
        assert c.execute("SELECT extversion FROM pg_extension WHERE extname = 'ethwhale_fdw'").fetchone()[0] == "0.2"
        c.execute("SET ethwhale.upgrade_chain_id = 1")
        c.execute(sql.SQL("ALTER EXTENSION ethwhale_fdw UPDATE TO {}").format(sql.Literal(control_version())))
        got = rows_of(c, {t: USER_TABLES_0_4[t] for t in USER_TABLES_0_2}, cols)
        assert got == want, "rows differ after the update:\n" + diff(want, got, "0.2", control_version())
        chains = {t: c.execute(f"SELECT array_agg(DISTINCT chain_id) FROM {t}").fetchone()[0] for t in cols}
        assert chains == {t: [1] for t in cols}, chains
        c.execute("SELECT ethwhale.refresh_views()")
        assert c.execute(lt_sql).fetchall() == lt
        assert c.execute("SELECT DISTINCT chain_id FROM ethwhale.large_transfers").fetchall() == [(1,)]
        made = c.execute("SELECT * FROM ethwhale.whale_candidates ORDER BY address").fetchall()
        full = c.execute("SELECT * FROM ethwhale.whale_candidates_of(1, NULL) ORDER BY address").fetchall()
        rows_now = c.execute("SELECT * FROM ethwhale.whale_candidate_rows ORDER BY address").fetchall()
        reasons = c.execute("SELECT address, reasons -> 'large_transfers', evidence -> 'excluded'"
                            " FROM ethwhale.whale_candidates ORDER BY address").fetchall()
    assert rows_now == full and len(made) == 2, made     # 0xa and 0xb
    assert reasons == [("0xa", 1, False), ("0xb", 1, False)], reasons


def _add_server(c, name: str, endpoint: str) -> None:
    c.execute(sql.SQL("CREATE SERVER {} FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint {})")
              .format(sql.Identifier(name), sql.Literal(endpoint)))
    c.execute(sql.SQL("CREATE USER MAPPING FOR CURRENT_USER SERVER {}").format(sql.Identifier(name)))


@pytest.mark.parametrize("how", ["node", "setting"])
def test_update_from_0_3_keeps_synced_rows(fresh_db, own_server, data_dir, server_files, how):
    """300 blocks synced at 0.3 from a generated chain (chain id 8453), with
    alerts and its views; ALTER EXTENSION UPDATE to 0.4 asks the node for the
    chain id ('node'), or, with the node stopped, takes
    ethwhale.upgrade_chain_id ('setting').  Every row is kept, with chain_id
    8453, in partitions that are not members of the extension; the views,
    refreshed, are 0.3's plus chain_id; the cursor goes on (the node
    restarted on the same chain: blocks 300..399)."""
    srv = own_server("--generate", "400", "--seed", "13", "--chain-id", "8453", "--head", "299",
                     "--txs-per-block", "3-8")
    db = fresh_db()
    prices = server_files / "eth_usd_daily.csv"
    shutil.copyfile(data_dir / "eth_usd_daily.csv", prices)
    prices.chmod(0o644)
    facts = srv.control.chain()
    with connect(db) as c:
        c.execute("CREATE EXTENSION ethwhale_fdw VERSION '0.3'")
        _add_server(c, "geth", srv.endpoint)
        c.execute("SELECT ethwhale.load_prices(%s)", [str(prices)])
        for t in facts["tokens"]:
            if t.get("priced"):
                c.execute("INSERT INTO ethwhale.token (address, symbol, decimals, usd_peg) VALUES (%s, %s, %s, %s)",
                          [t["address"], t["symbol"], t["decimals"], 1 if t["priced"] == "usd" else None])
        c.execute("SELECT ethwhale.add_alert_rule('big ETH', min_usd => 100000, token => 'ETH')")
        c.execute("SET ethwhale.sync_batch_blocks = 100")
        c.execute("CALL ethwhale.refresh('geth')")
        assert c.execute("SELECT last_synced_block FROM ethwhale.sync_status").fetchone()[0] == 299
        cols = old_columns(c, KEPT_0_3)
        order = {t: USER_TABLES[t] for t in KEPT_0_3}
        want = rows_of(c, order, cols)
        counts = {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in KEPT_0_3}
        assert counts["ethwhale.blocks"] == 300 and counts["ethwhale.txs"] > 900, counts
        assert counts["ethwhale.token_transfers"] > 0 and counts["ethwhale.alert_log"] > 0, counts
        assert counts["ethwhale.address_info"] > 0, counts
        lt_cols = old_columns(c, ["ethwhale.large_transfers"])["ethwhale.large_transfers"]
        lt_sql = "SELECT " + ", ".join(lt_cols) + " FROM ethwhale.large_transfers ORDER BY tx_hash, log_index"
        wc_sql = ("SELECT address, large_transfers, volume_usd, excluded_reason, score, rank"
                  " FROM ethwhale.whale_candidates ORDER BY address")
        lt, wc = c.execute(lt_sql).fetchall(), c.execute(wc_sql).fetchall()
        assert len(lt) > 10 and len(wc) > 10, (len(lt), len(wc))

        if how == "setting":
            srv.stop()
            with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
                c.execute("ALTER EXTENSION ethwhale_fdw UPDATE TO '0.4'")
            c.execute("SET ethwhale.upgrade_chain_id = 8453")
        c.execute("ALTER EXTENSION ethwhale_fdw UPDATE TO '0.4'")
        assert c.execute("SELECT extversion FROM pg_extension WHERE extname = 'ethwhale_fdw'").fetchone()[0] == "0.4"
        got = rows_of(c, {t: USER_TABLES_0_4[t] for t in order}, cols)
        assert got == want, "rows differ after the update:\n" + diff(want, got, "0.3", "0.4")
        chains = {t: c.execute(f"SELECT array_agg(DISTINCT chain_id) FROM {t}").fetchone()[0] for t in KEPT_0_3}
        # (no balance anchor: nothing asked eth_account for a balance)
        assert chains == {t: [8453] if counts[t] else None for t in KEPT_0_3}, chains
        st = c.execute("SELECT chain_id, server, first_block, last_synced_block, mode FROM ethwhale.sync_status"
                       ).fetchall()
        assert st == [(8453, "geth", 0, 299, "full")], st
        parts = c.execute("SELECT table_name, chain_id, first_block, last_block FROM ethwhale.partitions"
                          " ORDER BY 1").fetchall()
        assert parts == [("blocks", 8453, 0, 99999), ("token_transfers", 8453, 0, 99999),
                         ("txs", 8453, 0, 99999)], parts
        assert c.execute(MEMBER_PARTITIONS).fetchone()[0] == 0
        if how == "node":
            # an updated database dumps and restores like a fresh one
            dst = fresh_db()
            dump = run(*PG_EXEC, str(PG_BINDIR / "pg_dump"), "--no-owner", db).stdout
            p = run(*PG_EXEC, str(PG_BINDIR / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dst, input=dump)
            assert "ERROR" not in p.stderr, p.stderr
            with connect(dst) as d:
                assert rows_of(d, {t: USER_TABLES_0_4[t] for t in order}, cols) == want
        # the views: 0.4 computes them at the first refresh; then 0.3's rows
        c.execute("SELECT ethwhale.refresh_views()")
        assert c.execute(lt_sql).fetchall() == lt
        assert c.execute(wc_sql).fetchall() == wc
        assert c.execute("SELECT count(*) FROM ethwhale.large_transfers WHERE chain_id <> 8453").fetchone()[0] == 0
        # the cursor goes on, on the same chain (the node back, its head moved)
        if how == "setting":
            srv = own_server("--generate", "400", "--seed", "13", "--chain-id", "8453",
                             "--txs-per-block", "3-8")
            c.execute("ALTER SERVER geth OPTIONS (SET endpoint %s)" % sql.Literal(srv.endpoint).as_string(c))
        else:
            srv.control._req("POST", "/control/head", {"number": 399})
        c.execute("CALL ethwhale.refresh('geth')")
        st = c.execute("SELECT chain_id, first_block, last_synced_block, reorgs FROM ethwhale.sync_status").fetchall()
        assert st == [(8453, 0, 399, 0)], st
        assert c.execute("SELECT count(*), count(DISTINCT number) FROM ethwhale.blocks").fetchone() == (400, 400)
        assert c.execute("SELECT last_full, last_new_blocks FROM ethwhale.view_state").fetchone() == (False, 100)
        assert c.execute("SELECT count(*) FROM (SELECT * FROM ethwhale.large_transfer_rows EXCEPT ALL"
                         " SELECT * FROM ethwhale.large_transfers_of(8453, 0, 399)) x").fetchone()[0] == 0
        assert c.execute("SELECT count(*) FROM ethwhale.large_transfer_rows").fetchone()[0] == \
            c.execute("SELECT count(*) FROM ethwhale.large_transfers_of(8453, 0, 399)").fetchone()[0]
        # on to the current version: the first refresh computes every
        # candidate row again, drawing the candidates' kept state (0.5), and
        # they are the full computation's
        c.execute(sql.SQL("ALTER EXTENSION ethwhale_fdw UPDATE TO {}").format(sql.Literal(control_version())))
        # 0.7: the partitions made at 0.4 have every index by address, token
        # and hash, under the names 0.7 gives them (a bulk sync may drop them)
        assert c.execute("SELECT count(*), count(index), bool_and(own) FROM ethwhale.partition_indexes()"
                         ).fetchone() == (6, 6, True)
        assert c.execute("SELECT ethwhale.indexed_through(8453)").fetchone()[0] is None
        c.execute("SELECT ethwhale.refresh_views()")
        assert c.execute("SELECT last_full FROM ethwhale.view_state").fetchone()[0] is True
        _, wc_rows = assert_views_full(c, 8453, "after the update to " + control_version())
        assert len(wc_rows) > 0
        assert c.execute("SELECT count(*) FROM ethwhale.candidate_kept").fetchone()[0] == len(wc_rows)


def test_dump_restore_keeps_synced_partitions(fresh_db, own_server):
    """2100 blocks synced with ethwhale.partition_blocks = 1000 (three
    partitions of each table), pg_dump, restore into an empty database:
    the same partitions with the same rows, the sync goes on there into a
    new partition, and a refresh computes the views."""
    srv = own_server("--generate", "2500", "--seed", "17", "--txs-per-block", "1-2", "--head", "2099")
    src, dst = fresh_db(), fresh_db()
    with connect(src) as c:
        c.execute(CREATE_CURRENT)
        _add_server(c, "geth", srv.endpoint)
        c.execute("SET ethwhale.partition_blocks = 1000")
        c.execute("SET ethwhale.sync_batch_blocks = 700")
        c.execute("CALL ethwhale.sync('geth')")
        want = rows(c, {t: USER_TABLES_0_4[t] for t in ("ethwhale.blocks", "ethwhale.txs",
                                                         "ethwhale.token_transfers", "ethwhale.sync_state")})
        parts = c.execute("SELECT table_name, partition::text, chain_id, first_block, last_block"
                          " FROM ethwhale.partitions ORDER BY 2").fetchall()
    assert len(parts) == 9 and {p[3] for p in parts} == {0, 1000, 2000}, parts
    dump = run(*PG_EXEC, str(PG_BINDIR / "pg_dump"), "--no-owner", src).stdout
    assert "COPY ethwhale.txs_1337_0000001000 " in dump
    p = run(*PG_EXEC, str(PG_BINDIR / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dst, input=dump)
    assert "ERROR" not in p.stderr, p.stderr
    with connect(dst) as c:
        got = rows(c, {t: USER_TABLES_0_4[t] for t in ("ethwhale.blocks", "ethwhale.txs",
                                                        "ethwhale.token_transfers", "ethwhale.sync_state")})
        assert got == want, "restored rows differ:\n" + diff(want, got, "dumped", "restored")
        assert c.execute("SELECT table_name, partition::text, chain_id, first_block, last_block"
                         " FROM ethwhale.partitions ORDER BY 2").fetchall() == parts
        assert c.execute(MEMBER_PARTITIONS).fetchone()[0] == 0
        srv.control._req("POST", "/control/head", {"number": 2499})
        c.execute("CALL ethwhale.sync('geth')")
        assert c.execute("SELECT last_synced_block FROM ethwhale.sync_status").fetchone()[0] == 2499
        assert c.execute("SELECT count(*), count(DISTINCT number) FROM ethwhale.blocks").fetchone() == (2500, 2500)
        assert c.execute("SELECT count(*) FROM ethwhale.partitions").fetchone()[0] == 9
        assert c.execute("SELECT ethwhale.refresh_views()").fetchone()[0] >= 0
        assert c.execute("SELECT count(*) FROM ethwhale.large_transfer_rows").fetchone()[0] == \
            c.execute("SELECT count(*) FROM ethwhale.large_transfers_of(1337, 0, 2499)").fetchone()[0]


@pytest.fixture
def server_files():
    """A directory the cluster's OS user can read, for COPY FROM a file."""
    d = Path(tempfile.mkdtemp(prefix="ew_up_", dir=SERVER_TMPDIR))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_load_functions_share_one_loader_and_replace_builtin_rows(fresh_db, server_files):
    db = fresh_db()
    d = server_files
    files = {
        "tokens.csv": "address,symbol,decimals,usd_peg\n"
                      "0xDAC17F958D2EE523A2206206994597C13D831EC7,USDT,6,1.002\n"
                      "0x3333333333333333333333333333333333333333,X,0,\n",
        "prices.csv": "day,price\n2023-05-01,1871.25\n2023-05-02,\n",
        "labels.csv": "address,label,category\n 0x4444444444444444444444444444444444444444 ,a,\nnot-an-address,b,c\n",
    }
    for name, text in files.items():
        (d / name).write_text(text)
        (d / name).chmod(0o644)
    with connect(db) as c:
        c.execute(CREATE_CURRENT)
        assert c.execute("SELECT ethwhale.load_tokens(%s)", [str(d / "tokens.csv")]).fetchone()[0] == 2
        assert c.execute("SELECT ethwhale.load_prices(%s)", [str(d / "prices.csv")]).fetchone()[0] == 1
        assert c.execute("SELECT ethwhale.load_labels(%s)", [str(d / "labels.csv")]).fetchone()[0] == 1
        assert c.execute("SELECT usd_peg::text, builtin FROM ethwhale.token WHERE symbol = 'USDT'").fetchall() \
            == [("1.002", False)]
        assert c.execute("SELECT usd_peg FROM ethwhale.token WHERE symbol = 'X'").fetchone()[0] is None
        assert c.execute("SELECT label, category FROM ethwhale.address_label").fetchall() == [("a", None)]
        # one loader, and every SQL function of the extension has a safe search_path
        unsafe = c.execute("""
            SELECT p.oid::regprocedure::text FROM pg_proc p
            JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
            JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'ethwhale_fdw'
            JOIN pg_language l ON l.oid = p.prolang
            WHERE l.lanname <> 'c'
              AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY(p.proconfig), false)
            ORDER BY 1""").fetchall()
        # procedures that COMMIT cannot have SET; require_pg_cron creates pg_cron in the caller's schema
        assert [u[0] for u in unsafe] == [
            "ethwhale.refresh(name)", "ethwhale.refresh_run(name,boolean)", "ethwhale.require_pg_cron()",
            "ethwhale.sync(name,bigint,bigint)", "ethwhale.sync_run(name,bigint,bigint,boolean)"], unsafe
        for f in ("load_prices", "load_tokens", "load_labels"):
            src = c.execute("SELECT prosrc FROM pg_proc WHERE proname = %s", [f]).fetchone()[0]
            assert "ethwhale.load_csv(" in src and "COPY" not in src, f


def test_server_option_reads_options(fresh_db):
    db = fresh_db()
    with connect(db) as c:
        c.execute(CREATE_CURRENT)
        c.execute("CREATE SERVER s1 FOREIGN DATA WRAPPER ethwhale_fdw "
                  "OPTIONS (endpoint 'http://127.0.0.1:1/graphql', confirmations '12', max_retries '3')")
        c.execute("CREATE SERVER s2 FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint 'http://127.0.0.1:1/graphql')")
        q = "SELECT ethwhale.server_option(%s, %s)"
        assert c.execute(q, ["s1", "confirmations"]).fetchone()[0] == "12"
        assert c.execute(q, ["s1", "max_retries"]).fetchone()[0] == "3"
        assert c.execute(q, ["s2", "confirmations"]).fetchone()[0] is None
        assert c.execute(q, ["nope", "confirmations"]).fetchone()[0] is None
        # no SQL of the extension parses srvoptions by hand any more
        assert c.execute("SELECT count(*) FROM pg_proc WHERE pronamespace = 'ethwhale'::regnamespace "
                         "AND prosrc LIKE '%srvoptions%' AND proname <> 'server_option'").fetchone()[0] == 0
