#!/usr/bin/env python3
"""bench/compare.py - the measuring half of bench/compare (which sets things up).

Runs against an already running PostgreSQL (PG* environment) and test server
(--endpoint) and prints the comparison table.  See bench/compare --help and
bench/README.md for what is measured and how.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

MB = 1e6

try:  # only the measuring needs psycopg; the curl-config helper does not
    import psycopg
except ImportError:  # pragma: no cover
    psycopg = None


# --------------------------------------------------------------- helpers

def http_json(url, method="GET", body=None, timeout=60):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


class TestServer:
    """The test server's control API: its request log tells what each client sent."""

    def __init__(self, endpoint):
        self.graphql = endpoint
        self.base = endpoint.rsplit("/graphql", 1)[0]
        self.rpc = self.base + "/"

    def clear_log(self):
        http_json(self.base + "/control/log", "DELETE")

    def log(self):
        return http_json(self.base + "/control/log")


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB
    return 0


def run_child(cmd, env=None, cwd=None):
    """Run cmd; return (seconds, peak RSS of the child in kB, rc, stdout, stderr).

    Peak RSS comes from wait4()'s rusage (ru_maxrss): the child's own
    high-water mark, with no sampling gaps."""
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd)
    _, status, ru = os.wait4(p.pid, 0)
    secs = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    err.seek(0)
    return secs, ru.ru_maxrss, p.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace")


def max_in_flight(entries):
    """Most requests the server was working on at once (request log times)."""
    ev = []
    for e in entries:
        if e.get("ms") is None:
            continue
        t = datetime.datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp() * 1000
        ev += [(t, 1), (t + e["ms"], -1)]
    cur = best = 0
    for _, d in sorted(ev, key=lambda x: (x[0], x[1])):
        cur += d
        best = max(best, cur)
    return best


def log_sizes(entries):
    ok = [e for e in entries if e.get("status") == 200]
    return {
        "requests": len(entries),
        "failed": len(entries) - len(ok),
        "json_bytes": sum(e.get("jsonBytes") or 0 for e in entries),
        "wire_bytes": sum(e.get("bytes") or 0 for e in entries),
        # time the server spent on the requests (arrival to last byte written)
        "server_s": sum(e.get("ms") or 0 for e in entries) / 1000.0,
        # JSON-RPC calls answered with an error object (inside an HTTP 200)
        "rpc_errors": sum(e.get("rpcErrors") or 0 for e in entries),
    }


# --------------------------------------------------------------- the wrapper

class Wrapper:
    """Foreign servers bench_cC (GraphQL at /graphql) and, with rpc_endpoint,
    bench_rpc_cC (api 'jsonrpc' at /) for each concurrency C, on one chain."""

    def __init__(self, endpoint, batch, concurrencies, prices, rpc_endpoint=None):
        self.endpoint = endpoint
        self.batch = batch
        with psycopg.connect(autocommit=True) as c:
            c.execute("CREATE EXTENSION IF NOT EXISTS ethwhale_fdw")
            if prices:
                n = c.execute("SELECT ethwhale.load_prices(%s)", (prices,)).fetchone()[0]
                self.price_days = n
            for conc in concurrencies:
                self.add_server(c, f"bench_c{conc}", endpoint, conc)
                if rpc_endpoint:
                    self.add_server(c, f"bench_rpc_c{conc}", rpc_endpoint, conc, api="jsonrpc")

    def add_server(self, c, name, endpoint, conc, api=None):
        c.execute(f"DROP SERVER IF EXISTS {name} CASCADE")
        c.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        opt_api = f", api '{api}'" if api else ""
        try:
            c.execute(f"CREATE SERVER {name} FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS "
                      f"(endpoint '{endpoint}'{opt_api}, batch_blocks '{self.batch}', concurrency '{conc}', "
                      f"timeout_ms '300000')")
        except psycopg.Error as e:
            if api:
                raise SystemExit(f"bench/compare: the installed ethwhale_fdw refuses the server option api '{api}' "
                                 f"({e.diag.message_primary}): it predates the JSON-RPC API; install a newer build "
                                 "(or leave out --no-build), or run with --skip-rpc")
            raise
        c.execute(f"CREATE USER MAPPING FOR CURRENT_USER SERVER {name}")
        c.execute(f"CREATE SCHEMA {name}")
        c.execute(f"IMPORT FOREIGN SCHEMA ethereum FROM SERVER {name} INTO {name}")

    @staticmethod
    def sql(schema, lo, hi, usd):
        where = f"block BETWEEN {lo} AND {hi}"
        if usd:
            where += " AND value_usd > 100000"
        return f"SELECT count(*), sum(value) FROM {schema}.eth_tx WHERE {where}"

    def explain(self, schema, lo, hi, usd):
        with psycopg.connect(autocommit=True) as c:
            rows = c.execute("EXPLAIN (VERBOSE, COSTS OFF) " + self.sql(schema, lo, hi, usd)).fetchall()
        return [r[0] for r in rows]

    def run(self, schema, lo, hi, usd, server=None):
        """One query on a fresh backend; returns a result dict.

        The backend first runs a one-block query (loads the library, opens the
        curl handle, fills the catalog caches), then VmHWM is reset through
        /proc/PID/clear_refs and the measured query runs; its peak RSS is the
        backend's VmHWM afterwards (the method of bench/scan_memory)."""
        with psycopg.connect(autocommit=True) as c:
            c.execute("SET jit = off")  # LLVM would add ~50 MB that is not the wrapper's
            pid = c.info.backend_pid
            c.execute(self.sql(schema, lo, lo, False)).fetchone()
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
            start_rss = proc_status(pid, "VmRSS")
            if server:
                server.clear_log()
            t0 = time.monotonic()
            count, total = c.execute(self.sql(schema, lo, hi, usd)).fetchone()
            secs = time.monotonic() - t0
            hwm = proc_status(pid, "VmHWM")
        r = {"seconds": secs, "peak_kb": hwm, "start_kb": start_rss, "count": count,
             "sum": int(total or 0)}
        if server:
            entries = server.log()
            r.update(log_sizes(entries))
            r["entries"] = entries
        return r


# --------------------------------------------------------------- the floor

# The test server keeps a JSON-RPC request's raw body in its log entry's
# "query" only up to this many characters (lib/rpc-http.js); "rpc" has every
# call, uncut.
RPC_QUERY_CUT = 10000


def rpc_body(e):
    """The body of a logged JSON-RPC request, and how it was obtained.

    Rebuilt from the entry's calls ("rpc": method, params, id, in the order
    sent) the way the wrapper writes them (jsonrpc.c begin_call: keys
    jsonrpc, id, method, params; no spaces), an array when the request was a
    batch.  When the logged raw body is complete (shorter than the cut), that
    is sent as it is, and the rebuilt body must equal it; when it was cut, the
    rebuilt body must begin with it.  Returns (body, "raw" | "rebuilt", ok)."""
    calls = e.get("rpc") or []
    msgs = []
    for c in calls:
        if c.get("method") is None:
            msgs = None  # not a call object: only the raw body can say what it was
            break
        m = {"jsonrpc": "2.0"}
        if c.get("id") is not None:
            m["id"] = c["id"]
        m["method"] = c["method"]
        if c.get("params") is not None:
            m["params"] = c["params"]
        msgs.append(m)
    raw = e.get("query") or ""
    rebuilt = None
    if msgs is not None and (msgs or e.get("batch")):
        rebuilt = json.dumps(msgs if e.get("batch") else msgs[0], separators=(",", ":"), ensure_ascii=False)
    if len(raw) < RPC_QUERY_CUT:
        return raw, "raw", rebuilt == raw
    if rebuilt is None:
        return raw, "cut", False
    return rebuilt, "rebuilt", rebuilt.startswith(raw)


def request_body(e):
    """(body text, how, ok) of a logged GraphQL or JSON-RPC request."""
    if e.get("path", "").startswith("/graphql"):
        body = {"query": e["query"], "variables": e["variables"]}
        if e.get("operationName"):
            body["operationName"] = e["operationName"]
        return json.dumps(body), "graphql", True
    return rpc_body(e)


def curl_config(entries, url, workdir, stats=None):
    """A curl config (-K) that sends each logged request again, answer to /dev/null.

    stats (a dict), when given, counts the bodies by how they were obtained
    ("graphql", "raw", "rebuilt") and the JSON-RPC ones whose rebuild from
    the logged calls did not match the logged raw body ("mismatch")."""
    os.makedirs(workdir, exist_ok=True)
    lines = []
    for i, e in enumerate(entries):
        body, how, ok = request_body(e)
        if stats is not None:
            stats[how] = stats.get(how, 0) + 1
            if not ok:
                stats["mismatch"] = stats.get("mismatch", 0) + 1
        path = os.path.join(workdir, f"req{i:06d}.json")
        with open(path, "w") as f:
            f.write(body)
        if i:
            lines.append("next")
        lines += [
            f'url = "{url}"',
            f'data-binary = "@{path}"',
            'header = "Content-Type: application/json"',
            'header = "Accept: application/json"',
            "fail",
            'output = "/dev/null"',
        ]
        # gzip only when the logged request asked for it: the wrapper's
        # compression option (auto: none on loopback) decides, and curl's
        # --compressed sends the same Accept-Encoding libcurl gave it
        if "gzip" in (e.get("headers") or {}).get("accept-encoding", ""):
            lines.append("compressed")
    cfg = os.path.join(workdir, "curl.cfg")
    with open(cfg, "w") as f:
        f.write("\n".join(lines) + "\n")
    return cfg


def floor_run(server, entries, workdir, parallel, url=None):
    """Replay entries with one curl process (url: the GraphQL endpoint unless
    given).  The result also has "bodies" (curl_config's stats) and, from the
    replay's own log, "calls" (JSON-RPC calls sent) for the checks."""
    stats = {}
    cfg = curl_config(entries, url or server.graphql, workdir, stats)
    cmd = ["curl", "-sS", "-K", cfg]
    if parallel > 1:
        cmd[1:1] = ["--parallel", "--parallel-max", str(parallel)]
    server.clear_log()
    secs, rss, rc, _, err = run_child(cmd)
    if rc != 0:
        raise SystemExit(f"curl failed (exit {rc}): {err.strip()[:500]}")
    r = {"seconds": secs, "peak_kb": rss, "bodies": stats}
    entries = server.log()
    r.update(log_sizes(entries))
    r["in_flight"] = max_in_flight(entries)
    r["calls"] = rpc_calls(entries)
    return r


def rpc_calls(entries):
    """The JSON-RPC calls of logged requests, as (method, params, id) JSON texts
    in the order sent (a multiset to compare two runs' requests)."""
    return [json.dumps([c.get("method"), c.get("params"), c.get("id")]) for e in entries for c in (e.get("rpc") or [])]


def rpc_blocks(entries):
    """Block numbers the eth_getBlockByNumber(n, true) calls of entries asked
    for, and the other calls as "method(params)" texts."""
    blocks, other = [], []
    for e in entries:
        for c in e.get("rpc") or []:
            p = c.get("params") or []
            if c.get("method") == "eth_getBlockByNumber" and len(p) == 2 and p[1] is True \
                    and isinstance(p[0], str) and p[0].startswith("0x"):
                blocks.append(int(p[0], 16))
            else:
                other.append(f"{c.get('method')}({json.dumps(c.get('params'))})")
    return blocks, other


# --------------------------------------------------------------- the peers

def etl_run(python, server, lo, hi, batch, workers):
    cmd = [python, "-m", "ethereumetl", "export_blocks_and_transactions", "-s", str(lo), "-e", str(hi),
           "-b", str(batch), "-w", str(workers), "-p", server.rpc,
           "--blocks-output", "/dev/null", "--transactions-output", "/dev/null"]
    server.clear_log()
    secs, rss, rc, out, err = run_child(cmd)
    if rc != 0:
        raise SystemExit(f"ethereum-etl failed (exit {rc}):\n{err[-2000:]}")
    m = re.search(r"transaction items exported: (\d+)", err)
    r = {"seconds": secs, "peak_kb": rss, "count": int(m.group(1)) if m else None}
    r.update(log_sizes(server.log()))
    return r


def gql_run(python, root, server, lo, hi, batch, endpoint=None, fields=None):
    cmd = [python, os.path.join(root, "bench", "gql_blocks.py"), endpoint or server.graphql,
           str(lo), str(hi), "--step", str(batch)]
    if fields:
        cmd += ["--fields", fields]
    if server:
        server.clear_log()
    secs, rss, rc, out, err = run_child(cmd)
    if rc != 0:
        raise SystemExit(f"gql script failed (exit {rc}):\n{err[-2000:]}")
    ans = json.loads(out.strip().splitlines()[-1])
    r = {"seconds": secs, "peak_kb": rss, "count": ans["txs"], "sum": int(ans["sum_value"])}
    if server:
        r.update(log_sizes(server.log()))
    return r


# --------------------------------------------------------------- report

def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = proc_meminfo("MemTotal") / 1024 / 1024
    with psycopg.connect(autocommit=True) as c:
        pg = c.execute("SHOW server_version").fetchone()[0]
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    curl = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split()[1]
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(), "cpu": cpu, "ram_gib": round(mem, 1),
        "kernel": platform.release(), "postgres": pg, "node": node, "curl": curl,
        "python": platform.python_version(),
    }


def proc_meminfo(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def fmt_row(name, blocks, r, rows_scanned):
    s = r["seconds"]
    jb = r.get("json_bytes")
    srv = r.get("server_s")
    return "| {:<44} | {:>6} | {:>9} | {:>5} | {:>7.1f} | {:>6} | {:>8.0f} | {:>9.0f} | {:>6} | {:>7.1f} |".format(
        name, blocks, rows_scanned if rows_scanned is not None else "?", r.get("requests", "?"), s,
        f"{srv:.1f}" if srv is not None else "?", blocks / s,
        (rows_scanned or 0) / s, f"{jb / MB / s:.1f}" if jb else "?", r["peak_kb"] / 1024)


HEADER = ("| {:<44} | {:>6} | {:>9} | {:>5} | {:>7} | {:>6} | {:>8} | {:>9} | {:>6} | {:>7} |".format(
    "case", "blocks", "tx rows", "reqs", "seconds", "srv s", "blocks/s", "tx rows/s", "MB/s", "peak MB")
    + "\n|" + "|".join("-" * (w + 2) for w in (44, 6, 9, 5, 7, 6, 8, 9, 6, 7)) + "|")


def verdict(ok):
    return "MET" if ok else "MISSED"


def replay_main(argv):
    """compare.py replay LOG_JSON URL WORKDIR: build the floor's curl config
    from a /control/log dump and print its path (used by the node smoke test).
    A URL ending in /graphql replays the GraphQL entries, any other the
    JSON-RPC ones (path "/"); a JSON-RPC body that cannot be rebuilt exactly
    from its logged calls is an error (exit 1)."""
    log_path, url, workdir = argv
    gql = url.rstrip("/").endswith("/graphql")
    with open(log_path) as f:
        entries = [e for e in json.load(f)
                   if (e.get("path", "").startswith("/graphql") if gql else e.get("path") == "/")]
    stats = {}
    cfg = curl_config(entries, url, workdir, stats)
    if stats.get("mismatch"):
        print(f"compare.py replay: {stats['mismatch']} JSON-RPC bodies could not be rebuilt from their logged calls",
              file=sys.stderr)
        return 1
    print(cfg)
    return 0


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "replay":
        return replay_main(sys.argv[2:])
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--blocks", type=int, required=True)
    ap.add_argument("--peer-blocks", type=int, required=True)
    ap.add_argument("--txs", default="150-250")
    ap.add_argument("--seed", default="1")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--prices")
    ap.add_argument("--tmp", default=tempfile.gettempdir())
    ap.add_argument("--root", required=True)
    ap.add_argument("--etl-python")
    ap.add_argument("--gql-python")
    ap.add_argument("--geth-url")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--skip-rpc", action="store_true", help="leave out the JSON-RPC cases (f) and (g)")
    a = ap.parse_args()

    N, M, B, C = a.blocks, a.peer_blocks, a.batch, a.concurrency
    small = max(1, N // 10)
    srv = TestServer(a.endpoint)
    info = machine()
    load0 = loadavg()
    t_start = time.monotonic()
    rpc = not a.skip_rpc
    w = Wrapper(a.endpoint, B, sorted({1, C}), a.prices, rpc_endpoint=srv.rpc if rpc else None)
    say = lambda msg: print(f"==> {msg}", file=sys.stderr, flush=True)  # noqa: E731

    res = {}
    # The server is a node process: its first requests run before V8 has
    # compiled the hot paths.  One unmeasured pass keeps that out of the
    # first row.
    warm = min(N, 1000)
    say(f"warm-up (not measured): wrapper on blocks 1..{warm}")
    w.run("bench_c1", 1, warm, False, srv)
    if rpc:  # the server's JSON-RPC path is other code: warm it too
        say(f"warm-up (not measured): wrapper over JSON-RPC on blocks 1..{warm}")
        w.run("bench_rpc_c1", 1, warm, False, srv)
    # Each repetition runs the floor and wrapper cases in turn; the fastest
    # run of each case is kept (the machine is shared: other load only ever
    # makes a run slower).
    def keep(key, r):
        if key not in res or r["seconds"] < res[key]["seconds"]:
            res[key] = r

    for rep in range(a.repeat):
        tag = f" [run {rep + 1}/{a.repeat}]" if a.repeat > 1 else ""
        say(f"(b) wrapper, concurrency 1, blocks 1..{N}{tag}")
        b1 = w.run("bench_c1", 1, N, False, srv)
        keep("b1", b1)
        say(f"    {b1['seconds']:.1f} s, {b1['count']} rows")
        say(f"(a) floor: the same {b1['requests']} requests with curl, sequential{tag}")
        keep("a1", floor_run(srv, b1["entries"], os.path.join(a.tmp, "floor-seq"), 1))
        if C > 1:
            say(f"(b) wrapper, concurrency {C}{tag}")
            bC = w.run(f"bench_c{C}", 1, N, False, srv)
            keep("bC", bC)
            say(f"(a) floor with curl --parallel-max {C} ({bC['requests']} requests){tag}")
            keep("aC", floor_run(srv, bC["entries"], os.path.join(a.tmp, "floor-par"), C))
        say(f"(c) wrapper with value_usd > 100000, concurrency 1{tag}")
        keep("c1", w.run("bench_c1", 1, N, True, srv))
        if C > 1:
            say(f"(c) wrapper with value_usd > 100000, concurrency {C}{tag}")
            keep("cC", w.run(f"bench_c{C}", 1, N, True, srv))
        say(f"memory: wrapper, concurrency 1, blocks 1..{small} (1/10 of the range){tag}")
        keep("m", w.run("bench_c1", 1, small, False, srv))
        if rpc:
            # The same scan over JSON-RPC (api 'jsonrpc' at "/", the same
            # chain and server process): batches of eth_getBlockByNumber(n, true).
            say(f"(g) wrapper over JSON-RPC, concurrency 1, blocks 1..{N}{tag}")
            g1 = w.run("bench_rpc_c1", 1, N, False, srv)
            keep("g1", g1)
            say(f"    {g1['seconds']:.1f} s, {g1['count']} rows, {g1['requests']} batches")
            say(f"(f) JSON-RPC floor: the same {g1['requests']} batches with curl, sequential{tag}")
            keep("f1", floor_run(srv, g1["entries"], os.path.join(a.tmp, "floor-rpc-seq"), 1, srv.rpc))
            if C > 1:
                say(f"(g) wrapper over JSON-RPC, concurrency {C}{tag}")
                gC = w.run(f"bench_rpc_c{C}", 1, N, False, srv)
                keep("gC", gC)
                say(f"(f) JSON-RPC floor with curl --parallel-max {C} ({gC['requests']} batches){tag}")
                keep("fC", floor_run(srv, gC["entries"], os.path.join(a.tmp, "floor-rpc-par"), C, srv.rpc))
            say(f"memory: wrapper over JSON-RPC, concurrency 1, blocks 1..{small}{tag}")
            keep("gm", w.run("bench_rpc_c1", 1, small, False, srv))
    if M == small:
        res["ref"] = res["m"]
    else:
        say(f"reference answer for the peers: wrapper on blocks 1..{M}")
        res["ref"] = w.run("bench_c1", 1, M, False, srv)
    if rpc:
        if M == small:
            res["gref"] = res["gm"]
        else:
            say(f"reference answer for the peers: wrapper over JSON-RPC on blocks 1..{M}")
            res["gref"] = w.run("bench_rpc_c1", 1, M, False, srv)
    if a.etl_python:
        say(f"(d) ethereum-etl, 1 worker, blocks 1..{M}")
        res["d1"] = etl_run(a.etl_python, srv, 1, M, B, 1)
        if C > 1:
            say(f"(d) ethereum-etl, {C} workers")
            res["dC"] = etl_run(a.etl_python, srv, 1, M, B, C)
    # The gql script asks for the same selection as the wrapper (apples to
    # apples: the same bytes from the server).
    selection = ""
    if res["b1"]["entries"]:
        m = re.search(r"blocks\(from: \$from, to: \$to\) \{(.*)\} \}\s*$", res["b1"]["entries"][0]["query"])
        selection = m.group(1) if m else ""
    if a.gql_python:
        say(f"(e) gql script, blocks 1..{M}, selection {{{selection}}}")
        res["e"] = gql_run(a.gql_python, a.root, srv, 1, M, B, fields=selection or None)

    # Sanity: the same requests and the same answers everywhere.
    problems = []
    if res["a1"]["json_bytes"] != res["b1"]["json_bytes"]:
        problems.append(f"floor and wrapper received different JSON sizes: {res['a1']['json_bytes']} vs {res['b1']['json_bytes']}")
    for k in ("b1", "bC", "c1", "cC", "a1", "aC", "m"):
        if k in res and res[k].get("failed"):
            problems.append(f"{k}: {res[k]['failed']} requests did not answer 200")
    if "bC" in res and (res["bC"]["count"], res["bC"]["sum"]) != (res["b1"]["count"], res["b1"]["sum"]):
        problems.append("concurrency 1 and C gave different answers")
    if "cC" in res and (res["cC"]["count"], res["cC"]["sum"]) != (res["c1"]["count"], res["c1"]["sum"]):
        problems.append("(c) at concurrency 1 and C gave different answers")
    for k in ("d1", "dC"):
        if k in res and res[k]["count"] != res["ref"]["count"]:
            problems.append(f"{k}: ethereum-etl exported {res[k]['count']} transactions, the wrapper counted {res['ref']['count']}")
    if "e" in res and (res["e"]["count"], res["e"]["sum"]) != (res["ref"]["count"], res["ref"]["sum"]):
        problems.append(f"gql script's answer {res['e']['count']}/{res['e']['sum']} differs from the wrapper's {res['ref']['count']}/{res['ref']['sum']}")

    remote = [l for l in w.explain("bench_c1", 1, N, False) if "Remote GraphQL" in l]
    remote_usd = [l for l in w.explain("bench_c1", 1, N, True) if "Remote GraphQL" in l or "Wrapper Filter" in l]
    logged_query = res["b1"]["entries"][0]["query"] if res["b1"]["entries"] else ""
    if remote and logged_query not in remote[0]:
        problems.append("the logged query is not EXPLAIN VERBOSE's Remote GraphQL")

    # JSON-RPC: the same answers as GraphQL and ethereum-etl, and a floor
    # that sent exactly the wrapper's calls.
    remote_rpc = []
    if rpc:
        gql_ans = (res["b1"]["count"], res["b1"]["sum"])
        for k, what in (("g1", "concurrency 1"), ("gC", f"concurrency {C}")):
            if k in res and (res[k]["count"], res[k]["sum"]) != gql_ans:
                problems.append(f"JSON-RPC wrapper at {what} answered count {res[k]['count']} sum(value) {res[k]['sum']}, "
                                f"GraphQL {gql_ans[0]} / {gql_ans[1]} (blocks 1..{N})")
        if (res["gm"]["count"], res["gm"]["sum"]) != (res["m"]["count"], res["m"]["sum"]):
            problems.append(f"blocks 1..{small}: JSON-RPC wrapper {res['gm']['count']}/{res['gm']['sum']}, "
                            f"GraphQL {res['m']['count']}/{res['m']['sum']}")
        if (res["gref"]["count"], res["gref"]["sum"]) != (res["ref"]["count"], res["ref"]["sum"]):
            problems.append(f"blocks 1..{M}: JSON-RPC wrapper {res['gref']['count']}/{res['gref']['sum']}, "
                            f"GraphQL {res['ref']['count']}/{res['ref']['sum']}")
        for k in ("d1", "dC"):
            if k in res and res[k]["count"] != res["gref"]["count"]:
                problems.append(f"{k}: ethereum-etl exported {res[k]['count']} transactions, "
                                f"the JSON-RPC wrapper counted {res['gref']['count']} (blocks 1..{M})")
        for k in ("g1", "gC", "gm", "f1", "fC"):
            if k in res and res[k].get("failed"):
                problems.append(f"{k}: {res[k]['failed']} requests did not answer 200")
            if k in res and res[k].get("rpc_errors"):
                problems.append(f"{k}: {res[k]['rpc_errors']} JSON-RPC calls were answered with an error")
        for f, g in (("f1", "g1"), ("fC", "gC")):
            if f not in res:
                continue
            if res[f]["json_bytes"] != res[g]["json_bytes"]:
                problems.append(f"JSON-RPC floor {f} and wrapper {g} received different JSON sizes: "
                                f"{res[f]['json_bytes']} vs {res[g]['json_bytes']}")
            if sorted(res[f]["calls"]) != sorted(rpc_calls(res[g]["entries"])):
                problems.append(f"JSON-RPC floor {f} did not send the calls (method, params, id) of {g}")
            if res[f]["bodies"].get("mismatch"):
                problems.append(f"JSON-RPC floor {f}: {res[f]['bodies']['mismatch']} bodies rebuilt from the logged "
                                "calls differ from the logged raw body")
        blocks, other = rpc_blocks(res["g1"]["entries"])
        if sorted(blocks) != list(range(1, N + 1)) or other:
            problems.append(f"the JSON-RPC wrapper's requests are not one eth_getBlockByNumber(n, true) per block 1..{N}: "
                            f"{len(blocks)} block calls, {len(set(blocks))} distinct, other calls {other[:3]}")
        remote_rpc = [l for l in w.explain("bench_rpc_c1", 1, N, False) if "Remote JSON-RPC" in l]
        if not remote_rpc or "eth_getBlockByNumber(full)" not in remote_rpc[0]:
            problems.append(f"EXPLAIN VERBOSE over JSON-RPC does not say eth_getBlockByNumber(full): {remote_rpc}")

    # ---------------------------------------------------------- print
    print()
    print(f"bench/compare, {info['date']}: {info['nproc']} x {info['cpu']}, {info['ram_gib']} GiB RAM, "
          f"Linux {info['kernel']}, PostgreSQL {info['postgres']}, node {info['node']}, curl {info['curl']}")
    print(f"chain: test/geth-server --generate {N + 1} --seed {a.seed} --txs-per-block {a.txs}; "
          f"batch_blocks {B}; fastest of {a.repeat} run(s) per case; load average before/after: {load0} / {loadavg()}")
    print(f"wrapper's request (EXPLAIN VERBOSE): {remote[0].strip() if remote else '?'}")
    for l in remote_usd:
        if "Wrapper Filter" in l:
            print(f"with value_usd: {l.strip()}")
    if rpc:
        print(f"over JSON-RPC (api 'jsonrpc', {srv.rpc}): {remote_rpc[0].strip() if remote_rpc else '?'}")
        sizes = [len(e.get("rpc") or []) for e in res["g1"]["entries"]]
        gjb, bjb = res["g1"]["json_bytes"], res["b1"]["json_bytes"]
        bodies = res["f1"]["bodies"]
        print(f"JSON-RPC batches: {len(sizes)} requests of {min(sizes, default=0)}..{max(sizes, default=0)} calls "
              f"(the chunk aims at 4 MB per answer); JSON per block {gjb / N / 1000:.0f} kB over JSON-RPC, "
              f"{bjb / N / 1000:.1f} kB over GraphQL ({gjb / bjb:.1f}x); floor bodies: {bodies.get('raw', 0)} complete in the log "
              f"(each equal to its rebuild from the logged calls), {bodies.get('rebuilt', 0)} cut in the log and rebuilt")
    print()
    print(HEADER)
    nrows = res["b1"]["count"]
    print(fmt_row("(a) floor: curl, sequential", N, res["a1"], nrows))
    if "aC" in res:
        print(fmt_row(f"(a) floor: curl --parallel-max {C}", N, res["aC"], nrows))
    print(fmt_row("(b) wrapper count/sum, concurrency 1", N, res["b1"], nrows))
    if "bC" in res:
        print(fmt_row(f"(b) wrapper count/sum, concurrency {C}", N, res["bC"], nrows))
    print(fmt_row("(c) (b) + value_usd > 100000, concurrency 1", N, res["c1"], nrows))
    if "cC" in res:
        print(fmt_row(f"(c) (b) + value_usd > 100000, concurrency {C}", N, res["cC"], nrows))
    ref_rows = res["ref"]["count"]
    if "d1" in res:
        print(fmt_row("(d) ethereum-etl, 1 worker", M, res["d1"], ref_rows))
    if "dC" in res:
        print(fmt_row(f"(d) ethereum-etl, {C} workers", M, res["dC"], ref_rows))
    if "e" in res:
        print(fmt_row("(e) gql script, blocks(from,to) per 100", M, res["e"], ref_rows))
    print(fmt_row("(b) wrapper, concurrency 1, 1/10 range", small, res["m"], res["m"]["count"]))
    if rpc:
        print(fmt_row("(f) JSON-RPC floor: curl, sequential", N, res["f1"], nrows))
        if "fC" in res:
            print(fmt_row(f"(f) JSON-RPC floor: curl --parallel-max {C}", N, res["fC"], nrows))
        print(fmt_row("(g) wrapper over JSON-RPC, concurrency 1", N, res["g1"], nrows))
        if "gC" in res:
            print(fmt_row(f"(g) wrapper over JSON-RPC, concurrency {C}", N, res["gC"], nrows))
        print(fmt_row("(g) JSON-RPC, concurrency 1, 1/10 range", small, res["gm"], res["gm"]["count"]))
    print()
    print(f"answers: (b) count {res['b1']['count']} sum(value) {res['b1']['sum']}; "
          f"(c) count {res['c1']['count']}; blocks 1..{M}: wrapper {res['ref']['count']}"
          + (f", ethereum-etl {res['d1']['count']}" if "d1" in res else "")
          + (f", gql {res['e']['count']}" if "e" in res else ""))
    if rpc:
        print(f"JSON-RPC answers: (g) count {res['g1']['count']} sum(value) {res['g1']['sum']}"
              + (f", at concurrency {C} {res['gC']['count']} / {res['gC']['sum']}" if "gC" in res else "")
              + f"; blocks 1..{M}: JSON-RPC wrapper {res['gref']['count']}"
              + (f", ethereum-etl {res['d1']['count']}" if "d1" in res else "")
              + (" (equal to GraphQL's)" if (res["g1"]["count"], res["g1"]["sum"]) == (res["b1"]["count"], res["b1"]["sum"])
                 else " (NOT equal to GraphQL's)"))
    if "bC" in res:
        print(f"requests in flight at the server: wrapper at concurrency {C}: up to {max_in_flight(res['bC']['entries'])}"
              + (f", curl --parallel-max {C}: up to {res['aC']['in_flight']}" if "aC" in res else "")
              + (f"; over JSON-RPC: wrapper up to {max_in_flight(res['gC']['entries'])}" if "gC" in res else "")
              + (f", curl up to {res['fC']['in_flight']}" if "fC" in res else ""))
    print("srv s = the server's own time on those requests (request log: arrival to last byte); "
          "for a sequential client, seconds - srv s is the client's share.")
    print("MB/s = JSON bytes of the answers before gzip (server's request log) per second; "
          "peak MB = VmHWM of the backend for (b)/(c)/(g), ru_maxrss of the client process for (a)/(d)/(e)/(f).")

    # ---------------------------------------------------------- targets
    print()
    print("issue 4 targets")
    t = []
    r1 = res["b1"]["seconds"] / res["a1"]["seconds"]
    t.append((r1 <= 1.3, f"(b) at concurrency 1 within 1.3x of the sequential floor: {r1:.2f}x"))
    if "bC" in res:
        rC = res["bC"]["seconds"] / res["a1"]["seconds"]
        t.append((rC < 1.0, f"(b) at concurrency {C} faster than the sequential floor: {rC:.2f}x of its time"
                  + (f" (parallel floor: {res['bC']['seconds'] / res['aC']['seconds']:.2f}x)" if "aC" in res else "")))
    rc = res["c1"]["seconds"] / res["b1"]["seconds"]
    t.append((rc <= 1.05, f"(c) no slower than (b) (5% noise allowed): {rc:.2f}x at concurrency 1"
              + (f", {res['cC']['seconds'] / res['bC']['seconds']:.2f}x at {C}" if "cC" in res else "")))
    fdw_bps = N / res["b1"]["seconds"]
    for k, name in (("d1", "ethereum-etl, 1 worker"), ("e", "gql script")):
        if k in res:
            x = fdw_bps / (M / res[k]["seconds"])
            t.append((x >= 5, f"wrapper (concurrency 1) >= 5x faster than {name}: {x:.1f}x (blocks/s)"))
    if "dC" in res and "bC" in res:
        x = (N / res["bC"]["seconds"]) / (M / res["dC"]["seconds"])
        t.append((x >= 5, f"wrapper (concurrency {C}) >= 5x faster than ethereum-etl, {C} workers: {x:.1f}x"))
    mr = res["b1"]["peak_kb"] / res["m"]["peak_kb"]
    t.append((mr <= 1.2, f"backend peak memory flat as the range grows 10x: {res['m']['peak_kb'] / 1024:.1f} MB at "
              f"{small} blocks, {res['b1']['peak_kb'] / 1024:.1f} MB at {N} ({mr:.2f}x)"))
    for ok, text in t:
        print(f"  [{verdict(ok)}] {text}")
    if rpc:
        print()
        print("issue 13 targets (JSON-RPC)")
        t = []
        r1 = res["g1"]["seconds"] / res["f1"]["seconds"]
        t.append((r1 <= 1.3, f"(g) at concurrency 1 within 1.3x of the sequential JSON-RPC floor (f): {r1:.2f}x"))
        if "gC" in res:
            rC = res["gC"]["seconds"] / res["f1"]["seconds"]
            t.append((rC < 1.0, f"(g) at concurrency {C} faster than the sequential JSON-RPC floor: {rC:.2f}x of its time"
                      + (f" (parallel floor: {res['gC']['seconds'] / res['fC']['seconds']:.2f}x)" if "fC" in res else "")))
        for g, d, name in (("g1", "d1", "concurrency 1 vs 1 worker"), ("gC", "dC", f"concurrency {C} vs {C} workers")):
            if g in res and d in res:
                x = (N / res[g]["seconds"]) / (M / res[d]["seconds"])
                t.append((x >= 10, f"JSON-RPC wrapper >= 10x ethereum-etl's blocks/s ({name}): {x:.1f}x"))
        mr = res["g1"]["peak_kb"] / res["gm"]["peak_kb"]
        t.append((mr <= 1.2, f"backend peak memory over JSON-RPC flat as the range grows 10x: "
                  f"{res['gm']['peak_kb'] / 1024:.1f} MB at {small} blocks, {res['g1']['peak_kb'] / 1024:.1f} MB at {N} ({mr:.2f}x)"))
        for ok, text in t:
            print(f"  [{verdict(ok)}] {text}")
    if problems:
        print()
        for p in problems:
            print(f"  PROBLEM: {p}")

    if a.geth_url:
        if geth_section(a, w, rpc):
            problems.append("real geth: answers differ (see above)")
    print(f"\n(total {time.monotonic() - t_start:.0f} s)")
    if problems:
        print(f"bench/compare: FAILED: {len(problems)} PROBLEM(s) above (answers or requests that differ)", file=sys.stderr)
    return 1 if problems else 0


def geth_section(a, w, rpc=True):
    """The same clients against a real geth --dev node (a few dozen blocks).
    Returns True when an answer differs."""
    url = a.geth_url.rstrip("/")
    head = int(http_json(url, "POST", {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []})["result"], 16)
    with psycopg.connect(autocommit=True) as c:
        w.add_server(c, "bench_geth", url + "/graphql", 1)
    print(f"\nreal geth --dev ({url}, blocks 1..{head}; a dev chain this small gives no throughput figure, "
          "only proof that the same clients work against the real node):")
    r = w.run("bench_geth", 1, head, False)
    print(f"  (b) wrapper: {r['count']} transactions, sum(value) {r['sum']}, {r['seconds']:.2f} s, "
          f"peak {r['peak_kb'] / 1024:.1f} MB")
    bad = False
    if rpc:
        with psycopg.connect(autocommit=True) as c:
            w.add_server(c, "bench_geth_rpc", url, 1, api="jsonrpc")
        g = w.run("bench_geth_rpc", 1, head, False)
        same = (g["count"], g["sum"]) == (r["count"], r["sum"])
        bad |= not same
        print(f"  (g) wrapper over JSON-RPC: {g['count']} transactions, sum(value) {g['sum']}, {g['seconds']:.2f} s, "
              f"peak {g['peak_kb'] / 1024:.1f} MB" + ("" if same else "  PROBLEM: differs from GraphQL"))
    remote = [l for l in w.explain("bench_geth", 1, head, False) if "Remote GraphQL" in l]
    q = remote[0].split("Remote GraphQL:", 1)[1].strip()
    body = json.dumps({"query": q, "variables": {"from": hex(1), "to": hex(head)}})
    secs, rss, rc, _, err = run_child(["curl", "-sS", "--fail", "--compressed", "-o", "/dev/null",
                                       "-H", "Content-Type: application/json", "--data-binary", body, url + "/graphql"])
    print(f"  (a) curl, the same query for blocks 1..{head}: exit {rc}, {secs:.2f} s")
    if a.etl_python:
        class G:
            rpc = url

            def clear_log(self):
                pass

            def log(self):
                return []
        d = etl_run(a.etl_python, G(), 1, head, a.batch, 1)
        print(f"  (d) ethereum-etl: {d['count']} transactions exported, {d['seconds']:.2f} s"
              + ("" if d["count"] == r["count"] else "  PROBLEM: differs from the wrapper"))
        bad |= d["count"] != r["count"]
    if a.gql_python:
        e = gql_run(a.gql_python, a.root, None, 1, head, a.batch, endpoint=url + "/graphql")
        print(f"  (e) gql script: {e['count']} transactions, sum(value) {e['sum']}, {e['seconds']:.2f} s"
              + ("" if (e["count"], e["sum"]) == (r["count"], r["sum"]) else "  PROBLEM: differs from the wrapper"))
        bad |= (e["count"], e["sum"]) != (r["count"], r["sum"])
    return bad


if __name__ == "__main__":
    sys.exit(main())
