"""Security of options: who may set a server's endpoint, and where a user
mapping's credentials go.

- A non-superuser cannot set or change `endpoint` (CREATE SERVER, ALTER
  SERVER): SQLSTATE 42501 with a hint.
- `bearer_token` and `headers` of a user mapping reach the node (the test
  server's request log records request headers), with the mapping of the role
  that runs the query, and never show up for another role
  (pg_user_mappings), in EXPLAIN, in error messages of failing requests
  (HTTP 401 and 500, including a node that echoes the request back), or in
  the PostgreSQL server log.

Every test runs over GraphQL and JSON-RPC (credentials go with either).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

psycopg = pytest.importorskip("psycopg")
from psycopg import errors, sql  # noqa: E402

from conftest import api_endpoint, remote_line  # noqa: E402


def _secret(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex}"


def _conn():
    return psycopg.connect(autocommit=True)


@pytest.fixture
def roles(pg):
    """Two NOLOGIN roles, dropped with everything they own after the test."""
    tag = uuid.uuid4().hex[:8]
    names = [f"ew_sec_a_{tag}", f"ew_sec_b_{tag}"]
    for n in names:
        pg.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(n)))
    yield names
    pg.execute("RESET ROLE")
    for n in names:
        pg.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(n)))
        pg.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(n)))


def _grant_use(pg, fdw, role):
    """Let role use fdw's server and read its foreign tables."""
    ident = sql.Identifier(role)
    pg.execute(sql.SQL("GRANT USAGE ON FOREIGN SERVER {} TO {}").format(sql.Identifier(fdw.server), ident))
    pg.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(fdw.schema), ident))
    pg.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(sql.Identifier(fdw.schema), ident))


def _map(pg, fdw, role, **options):
    """Give role (a name, CURRENT_USER or PUBLIC) a user mapping with options.

    make_fdw already made one for CURRENT_USER: that one is altered."""
    who = sql.SQL(role) if role in ("CURRENT_USER", "PUBLIC") else sql.Identifier(role)
    if role == "CURRENT_USER":
        stmt, fmt = "ALTER USER MAPPING FOR {} SERVER {} OPTIONS ({})", "ADD {} {}"
    else:
        stmt, fmt = "CREATE USER MAPPING FOR {} SERVER {} OPTIONS ({})", "{} {}"
    opts = sql.SQL(", ").join(sql.SQL(fmt).format(sql.Identifier(k), sql.Literal(v))
                              for k, v in options.items())
    pg.execute(sql.SQL(stmt).format(who, sql.Identifier(fdw.server), opts))


def _error_text(e: psycopg.Error) -> str:
    d = e.diag
    return "\n".join(str(x) for x in (d.message_primary, d.message_detail, d.message_hint,
                                      d.context, d.internal_query, str(e)) if x)


def _server_log_text() -> str:
    """The test cluster's log (test/lib.sh start_cluster: DIR/data + DIR/postgresql.log),
    read by the server itself (pg_read_file, as superuser), so that the
    check works whoever runs pytest; a log that cannot be read fails."""
    with _conn() as c:
        datadir = c.execute("SHOW data_directory").fetchone()[0]
        path = str(Path(datadir).parent / "postgresql.log")
        try:
            text = c.execute("SELECT pg_read_file(%s)", [path]).fetchone()[0]
        except psycopg.Error as e:
            pytest.fail(f"cannot read the server log {path}: {e}")
    assert text, f"the server log {path} is empty"
    return text


# --------------------------------------------------------------------------
# only superusers choose the URL


def test_non_superuser_cannot_set_endpoint(pg, roles, gen_endpoint, api):
    a, _ = roles
    gen_endpoint = api_endpoint(gen_endpoint, api)
    pg.execute(sql.SQL("GRANT USAGE ON FOREIGN DATA WRAPPER ethwhale_fdw TO {}").format(sql.Identifier(a)))
    srv = f"ew_sec_srv_{uuid.uuid4().hex[:8]}"
    pg.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(a)))
    try:
        with pytest.raises(errors.InsufficientPrivilege) as ei:
            pg.execute(sql.SQL("CREATE SERVER {} FOREIGN DATA WRAPPER ethwhale_fdw "
                               "OPTIONS (endpoint 'http://169.254.169.254/latest/meta-data/')")
                       .format(sql.Identifier(srv)))
        assert ei.value.sqlstate == "42501"
        assert 'option "endpoint"' in ei.value.diag.message_primary
        assert ei.value.diag.message_hint and "superuser" in ei.value.diag.message_hint
    finally:
        pg.execute("RESET ROLE")

    # a superuser creates it and hands it over: the owner may tune it ...
    pg.execute(sql.SQL("CREATE SERVER {} FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint {})")
               .format(sql.Identifier(srv), sql.Literal(gen_endpoint)))
    pg.execute(sql.SQL("ALTER SERVER {} OWNER TO {}").format(sql.Identifier(srv), sql.Identifier(a)))
    pg.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(a)))
    try:
        pg.execute(sql.SQL("ALTER SERVER {} OPTIONS (ADD batch_blocks '7')").format(sql.Identifier(srv)))
        # ... but not point it elsewhere
        with pytest.raises(errors.InsufficientPrivilege):
            pg.execute(sql.SQL("ALTER SERVER {} OPTIONS (SET endpoint 'http://127.0.0.1:6379/')")
                       .format(sql.Identifier(srv)))
    finally:
        pg.execute("RESET ROLE")
    row = pg.execute(sql.SQL("SELECT srvoptions FROM pg_foreign_server WHERE srvname = {}")
                     .format(sql.Literal(srv))).fetchone()
    assert row[0] == [f"endpoint={gen_endpoint}", "batch_blocks=7"]
    pg.execute(sql.SQL("DROP SERVER {} CASCADE").format(sql.Identifier(srv)))


# --------------------------------------------------------------------------
# credentials reach the node, per role


def test_credentials_reach_the_node_per_role(pg, roles, make_fdw, gen_endpoint, control):
    a, b = roles
    f = make_fdw(gen_endpoint, batch_blocks=2)
    ctl = control(gen_endpoint)
    tok_me, tok_a, tok_pub = _secret("tok-me"), _secret("tok-a"), _secret("tok-pub")
    key_me = _secret("key-me")
    _map(pg, f, "CURRENT_USER", bearer_token=tok_me, headers=f"X-Api-Key: {key_me}\nX-Trace: 1")
    _map(pg, f, a, bearer_token=tok_a)
    _map(pg, f, "PUBLIC", bearer_token=tok_pub)  # b has no mapping of its own
    for r in (a, b):
        _grant_use(pg, f, r)

    def run_as(role, lo):
        ctl.clear_log()
        if role:
            pg.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        try:
            n = pg.execute(f"SELECT count(*) FROM {f.t('eth_block')} WHERE number BETWEEN {lo} AND {lo + 5}"
                           ).fetchone()[0]
        finally:
            pg.execute("RESET ROLE")
        assert n == 6
        reqs = [e for e in ctl.log() if e.get("path") == ("/graphql" if f.api == "graphql" else "/")]
        assert len(reqs) == 3, reqs  # 6 blocks, batch_blocks 2
        for e in reqs:
            assert "headers" in e, "the test server does not log request headers"
        return reqs

    for e in run_as(None, 100):
        assert e["headers"].get("authorization") == f"Bearer {tok_me}"
        assert e["headers"].get("x-api-key") == key_me
        assert e["headers"].get("x-trace") == "1"
    for e in run_as(a, 200):
        assert e["headers"].get("authorization") == f"Bearer {tok_a}"
        assert "x-api-key" not in e["headers"]
    for e in run_as(b, 300):
        assert e["headers"].get("authorization") == f"Bearer {tok_pub}"
    # the same backend, back to the first role: no token left over from b
    for e in run_as(None, 400):
        assert e["headers"].get("authorization") == f"Bearer {tok_me}"


# --------------------------------------------------------------------------
# credentials show nowhere else


def test_other_roles_do_not_see_credentials(pg, roles, make_fdw, gen_endpoint):
    a, b = roles
    f = make_fdw(gen_endpoint)
    tok_a = _secret("tok-a")
    hdr_a = _secret("hdr-a")
    _map(pg, f, a, bearer_token=tok_a, headers=f"X-Api-Key: {hdr_a}")
    _map(pg, f, b, bearer_token=_secret("tok-b"))
    _grant_use(pg, f, b)
    pg.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(b)))
    try:
        rows = pg.execute("SELECT usename, umoptions::text FROM pg_user_mappings WHERE srvname = %s",
                          (f.server,)).fetchall()
        with pytest.raises(errors.InsufficientPrivilege):
            pg.execute("SELECT umoptions FROM pg_user_mapping")
    finally:
        pg.execute("RESET ROLE")
    seen = dict(rows)
    assert seen[a] is None
    assert seen[b] is not None and "tok-b" in seen[b]
    assert tok_a not in repr(rows) and hdr_a not in repr(rows)


def test_explain_and_errors_never_show_credentials(pg, make_fdw, fault_endpoint, control):
    ctl = control(fault_endpoint)
    ctl.clear_faults()
    f = make_fdw(fault_endpoint, max_retries=0, batch_blocks=10, timeout_ms=10000)
    tok, key = _secret("tok"), _secret("key")
    _map(pg, f, "CURRENT_USER", bearer_token=tok, headers=f"X-Api-Key: {key}")
    q = f"SELECT count(*), sum(value) FROM {f.t('eth_tx')} WHERE block BETWEEN 50 AND 59"

    plan = "\n".join(r[0] for r in pg.execute("EXPLAIN (VERBOSE, ANALYZE) " + q).fetchall())
    assert remote_line(f.api) in plan, plan
    assert tok not in plan and key not in plan

    texts = []
    ctl.clear_log()
    try:
        for status, body in [
            (401, "invalid bearer token"),
            (500, "internal error"),
            (403, "forbidden"),
        ]:
            ctl.set_faults([{"match": {"blocks": [50, 59]}, "fault": "status", "status": status,
                             "body": body}])
            with pytest.raises(psycopg.Error) as ei:
                pg.execute(q)
            t = _error_text(ei.value)
            assert f"HTTP {status}" in t, t
            texts.append(t)
        # the failing requests did carry the credentials
        failed = [e for e in ctl.log() if e.get("fault") == "status"]
        assert len(failed) >= 3
        assert all(e["headers"].get("authorization") == f"Bearer {tok}" for e in failed)
        assert all(e["headers"].get("x-api-key") == key for e in failed)
    finally:
        ctl.clear_faults()
    for t in texts:
        assert tok not in t and key not in t, t

    # the same backend goes on, and the server log holds no credential
    assert pg.execute(q.replace("50 AND 59", "60 AND 61")).fetchone()[0] > 0
    text = _server_log_text()
    # the log does hold this test's failing statements (so it is the right
    # log, and current), but not their credentials
    assert f'from server "{f.server}": HTTP 403' in text, text[-2000:]
    assert tok not in text and key not in text


def test_node_echoing_the_token_is_redacted(pg, make_fdw, fault_endpoint, control):
    ctl = control(fault_endpoint)
    ctl.clear_faults()
    f = make_fdw(fault_endpoint, max_retries=0, batch_blocks=10, timeout_ms=10000)
    tok, key = _secret("tok"), _secret("key")
    _map(pg, f, "CURRENT_USER", bearer_token=tok, headers=f"X-Api-Key: {key}")
    q = f"SELECT count(*) FROM {f.t('eth_tx')} WHERE block BETWEEN 70 AND 79"
    ctl.set_faults([{"match": {"blocks": [70, 79]}, "fault": "status", "status": 401,
                     "body": f"bad credentials: Authorization: Bearer {tok} X-Api-Key: {key}"}])
    try:
        with pytest.raises(psycopg.Error) as ei:
            pg.execute(q)
    finally:
        ctl.clear_faults()
    t = _error_text(ei.value)
    assert "HTTP 401" in t
    assert tok not in t and key not in t, t
    assert "[redacted]" in t, t
