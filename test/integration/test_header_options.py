"""User mapping credentials and extra headers (issue 18): what the option
validator (option.c) refuses, and an https endpoint with a certificate the
backend cannot verify.

Decisions: a CR or LF inside bearer_token, a CR inside a headers line, or a
line without "Name:" could forge or split request headers, and are refused.
Headers the wrapper itself must control (Host, Content-Length, Content-Type,
Transfer-Encoding, ...) are refused too, in any letter case: a user mapping
that sets Content-Length or Transfer-Encoding corrupts every request's
framing, and one that sets Host reaches another virtual host behind the
endpoint.  An https endpoint is verified against the system's CA
certificates, or those of the server option ca_file; never without.
Every test runs over GraphQL and JSON-RPC.
"""

from __future__ import annotations

import http.server
import shutil
import ssl
import subprocess
import threading

import psycopg
import pytest
from psycopg import errors, sql

from conftest import SERVER_TMPDIR, Control


def set_mapping(pg, fdw, **options):
    opts = sql.SQL(", ").join(sql.SQL("ADD {} {}").format(sql.Identifier(k), sql.Literal(v))
                              for k, v in options.items())
    pg.execute(sql.SQL("ALTER USER MAPPING FOR CURRENT_USER SERVER {} OPTIONS ({})")
               .format(sql.Identifier(fdw.server), opts))


@pytest.fixture
def fdw(make_fdw, gen_endpoint):
    return make_fdw(gen_endpoint)


@pytest.mark.parametrize("value", ["tok\r\nX-Injected: 1", "tok\nHost: evil", "tok\r", ""])
def test_bearer_token_with_cr_lf_or_empty_is_refused(pg, fdw, value):
    with pytest.raises(errors.InvalidParameterValue) as ei:
        set_mapping(pg, fdw, bearer_token=value)
    assert 'invalid value for option "bearer_token"' in str(ei.value)


@pytest.mark.parametrize("value,why", [
    ("X-Api-Key: a\r\nX-Injected: 1", "a CR inside a line"),
    ("X-Api-Key: a\r", "a trailing CR"),
    (": no name", "no name"),
    ("X Api Key: a", "a space in the name"),
    ("no colon at all", "no colon"),
])
def test_malformed_header_lines_are_refused(pg, fdw, value, why):
    with pytest.raises(errors.InvalidParameterValue) as ei:
        set_mapping(pg, fdw, headers=value)
    assert 'invalid value for option "headers"' in str(ei.value), why


def test_two_header_lines_are_sent_as_two_headers(pg, fdw, control, gen_endpoint):
    """LF separates lines by design: each line is one header, nothing else."""
    set_mapping(pg, fdw, headers="X-One: 1\nX-Two: 2")
    ctl = control(gen_endpoint)
    ctl.clear_log()
    assert pg.execute(f"SELECT count(*) FROM {fdw.t('eth_block')} WHERE number BETWEEN 1 AND 3").fetchone()[0] == 3
    reqs = [e for e in ctl.log() if e.get("path") == ("/graphql" if fdw.api == "graphql" else "/")]
    assert reqs and all(e["headers"].get("x-one") == "1" and e["headers"].get("x-two") == "2" for e in reqs)


@pytest.mark.parametrize("line", ["Host: evil.example", "Content-Length: 0", "Content-Type: text/plain",
                                  "Transfer-Encoding: chunked", "X-Ok: 1\nhOsT: evil.example"])
def test_reserved_header_names_are_refused(pg, fdw, line):
    with pytest.raises(errors.InvalidParameterValue) as ei:
        set_mapping(pg, fdw, headers=line)
    name = line.split("\n")[-1].split(":")[0]
    assert f'header "{name}" is reserved' in str(ei.value), str(ei.value)


# --------------------------------------------------------------------------
# TLS


class _Handler(http.server.BaseHTTPRequestHandler):
    upstream = ""          # http://127.0.0.1:PORT of the test server behind

    def do_POST(self):
        """Passes the request on to the plain-HTTP test server (same path:
        /graphql or /) and its answer back, so that both APIs are served."""
        import urllib.request
        req = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        up = urllib.request.Request(self.upstream + self.path, data=req,
                                    headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(up, timeout=30) as r:
            status, body = r.status, r.read()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def tls_server(tmp_path, gen_endpoint):
    """An https server on 127.0.0.1 with a self-signed certificate for
    127.0.0.1 made here by openssl, in front of the generated-chain test
    server; yields (its GraphQL url, certificate path)."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed")
    key, crt = tmp_path / "key.pem", tmp_path / "crt.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(crt), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    handler = type("Handler", (_Handler,), {"upstream": Control(gen_endpoint).base})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(crt), str(key))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"https://127.0.0.1:{srv.server_address[1]}/graphql", crt
    finally:
        srv.shutdown()
        srv.server_close()


def test_https_with_an_untrusted_certificate_is_refused(pg, make_fdw, tls_server):
    """The backend verifies the peer (CURLOPT_SSL_VERIFYPEER/HOST): a
    self-signed certificate is a certificate error (HV00N), not data."""
    url, _ = tls_server
    f = make_fdw(url, max_retries=0, connect_timeout_ms=5000, timeout_ms=10000)
    with pytest.raises(psycopg.Error) as ei:
        pg.execute(f"SELECT number FROM {f.t('eth_block')} WHERE number = 1").fetchall()
    text = "\n".join(x for x in (ei.value.diag.message_primary, ei.value.diag.message_detail) if x)
    assert f'"{f.server}"' in text, text
    assert "certificate" in text.lower(), text
    assert ei.value.sqlstate == "HV00N", ei.value.sqlstate
    assert pg.execute("SELECT 1").fetchone()[0] == 1


def test_https_is_accepted_with_its_ca_configured(pg, make_fdw, tls_server, tmp_path_factory, gen_endpoint):
    """ca_file names the CA certificates to verify against: the same server
    now answers, and the answer is the one it sent (the head of the chain
    behind it)."""
    import os
    import tempfile
    url, crt = tls_server
    # the cluster runs as another OS user: a copy it can read
    d = tempfile.mkdtemp(prefix="ethwhale-ca-", dir=SERVER_TMPDIR)
    os.chmod(d, 0o755)
    ca = os.path.join(d, "ca.pem")
    shutil.copy(crt, ca)
    os.chmod(ca, 0o644)
    try:
        f = make_fdw(url, max_retries=0, connect_timeout_ms=5000, timeout_ms=10000, ca_file=ca)
        assert pg.execute(f"SELECT number FROM {f.t('eth_block')} ORDER BY number DESC LIMIT 1"
                          ).fetchone()[0] == Control(gen_endpoint).head()
        # another certificate as the CA: refused again
        other = tmp_path_factory.mktemp("other")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", str(other / "k.pem"), "-out", os.path.join(d, "other.pem"),
                        "-days", "2", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
        os.chmod(os.path.join(d, "other.pem"), 0o644)
        pg.execute(f"ALTER SERVER {f.server} OPTIONS (SET ca_file '{os.path.join(d, 'other.pem')}')")
        with pytest.raises(psycopg.Error) as ei:
            pg.execute(f"SELECT number FROM {f.t('eth_block')} ORDER BY number DESC LIMIT 1").fetchall()
        assert ei.value.sqlstate == "HV00N" and "certificate" in str(ei.value).lower(), str(ei.value)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_ca_file_must_be_an_existing_absolute_path(pg, fdw):
    with pytest.raises(errors.InvalidParameterValue) as ei:
        pg.execute(f"ALTER SERVER {fdw.server} OPTIONS (ADD ca_file 'relative.pem')")
    assert "not an absolute path" in str(ei.value)
    with pytest.raises(errors.InvalidParameterValue) as ei:
        pg.execute(f"ALTER SERVER {fdw.server} OPTIONS (ADD ca_file '/nonexistent/ca.pem')")
    assert "could not find a file" in str(ei.value)
