"""The HTML report (issue 17) in headless Chromium (Debian's chromium, which
test/run installs), driven over the DevTools protocol on a pipe.

scripts/report writes the page of a planted whale of a generated chain; the
test opens it and, with its own JavaScript (the page has none), reads what
the browser laid out:

- the page loads nothing but itself (no request in the Network domain, no
  Content-Security-Policy refusal in the console);
- the balance chart has the series balance_eth and eth_usd, the value chart
  balance_usd, token_usd and total_usd, each a rendered polyline (a length,
  a box inside the plot, hit at its vertices) with one vertex per period;
  mapped back through the plot's axes the vertices are the values computed
  here: the generator's own balance at the last block walked back with the
  chain's transactions (read over GraphQL), the ETH/USD of
  eth_usd_daily.csv, the whale's priced tokens;
- the pixels of the screenshot at the balance line's vertices have the
  line's colour; the counterparty bars are the whale's large transfers by
  label, computed here; a top-3 page has the three ranked candidates.
The screenshots are kept in the test results (report-screenshot.png).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import struct
import subprocess
import tempfile
import time
import zlib
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from chain_truth import (Prices, add_server, cents, chain, connect, moves, new_db, readable,  # noqa: F401
                         write_labels)
from conftest import REPO_ROOT
from test_balance import gen_balance, walk

RESULTS = Path(os.environ.get("EW_LOGDIR") or REPO_ROOT / "test" / "results")
STEP = timedelta(minutes=10)


# --------------------------------------------------------------------------
# headless Chromium over --remote-debugging-pipe


class Chromium:
    """Chromium with the DevTools protocol on fds 3 (commands) and 4 (answers)."""

    def __init__(self):
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if exe is None:
            pytest.skip("chromium is not installed (test/run installs Debian's chromium)")
        self.profile = tempfile.mkdtemp(prefix="ew_chromium_")
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        # chromium's ends, above 3 and 4 (which the child makes them) and
        # closed at exec like every descriptor Python opens
        cr = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD_CLOEXEC, 100)
        cw = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD_CLOEXEC, 100)

        def fds():
            os.dup2(cr, 3)
            os.dup2(cw, 4)

        self.log = open(RESULTS / "chromium.log", "w")
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             "--remote-debugging-pipe", f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, close_fds=False, preexec_fn=fds)
        for fd in (to_chrome_r, from_chrome_w, cr, cw):
            os.close(fd)
        self.buf = b""
        self.next_id = 0
        self.events: list[dict] = []

    def _read(self, limit: float) -> dict:
        end = time.monotonic() + limit
        while b"\0" not in self.buf:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.from_chrome], [], [], left)[0]:
                pytest.fail(f"no answer from chromium within {limit} s (see {RESULTS / 'chromium.log'})")
            chunk = os.read(self.from_chrome, 1 << 20)
            if not chunk:
                pytest.fail("chromium closed the DevTools pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None, limit: float = 60):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        while True:
            m = self._read(limit)
            if m.get("id") == self.next_id:
                assert "error" not in m, (method, m["error"])
                return m["result"]
            self.events.append(m)

    def wait_event(self, method: str, limit: float = 60) -> dict:
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        end = time.monotonic() + limit
        while time.monotonic() < end:
            m = self._read(end - time.monotonic())
            if m.get("method") == method:
                return m
            self.events.append(m)
        pytest.fail(f"no {method} within {limit} s")

    def close(self):
        try:
            self.send("Browser.close", limit=10)
        except BaseException:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.to_chrome)
        os.close(self.from_chrome)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture
def browser():
    RESULTS.mkdir(parents=True, exist_ok=True)
    b = Chromium()
    yield b
    b.close()


def open_page(b: Chromium, path: Path):
    target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    s = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Network", "Runtime", "Log"):
        b.send(f"{domain}.enable", session=s)
    b.send("Emulation.setDeviceMetricsOverride", {"width": 1000, "height": 900, "deviceScaleFactor": 1,
                                                  "mobile": False}, session=s)
    b.events.clear()
    b.send("Page.navigate", {"url": path.as_uri()}, session=s)
    b.wait_event("Page.loadEventFired")
    height = b.send("Runtime.evaluate", {"expression": "document.documentElement.scrollHeight",
                                         "returnByValue": True}, session=s)["result"]["value"]
    # the whole page in the viewport: every element can be hit-tested
    b.send("Emulation.setDeviceMetricsOverride", {"width": 1000, "height": height, "deviceScaleFactor": 1,
                                                  "mobile": False}, session=s)
    return s, height


# What the browser laid out: for each chart, the plot's data-* and per series
# the polyline's vertices (user units and page pixels), length, box and
# whether the page is hit at each vertex; the bars.
PROBE = r"""(() => {
  const out = {};
  for (const svg of document.querySelectorAll('svg.chart')) {
    const plot = svg.querySelector('g.plot');
    const c = {plot: plot ? Object.assign({}, plot.dataset) : null, series: {}, bars: []};
    for (const pl of svg.querySelectorAll('polyline.series')) {
      const m = pl.getScreenCTM();
      const pts = [], page = [];
      let hits = 0;
      for (let i = 0; i < pl.points.numberOfItems; i++) {
        const p = pl.points.getItem(i);
        pts.push([p.x, p.y]);
        const x = m.a * p.x + m.c * p.y + m.e, y = m.b * p.x + m.d * p.y + m.f;
        page.push([x + window.scrollX, y + window.scrollY]);
        if (document.elementsFromPoint(x, y).some(e => e === pl || e.parentNode === pl.parentNode)) hits++;
      }
      const bb = pl.getBBox();
      c.series[pl.dataset.series] = {axis: pl.dataset.axis, points: pts, page: page, hits: hits,
        length: pl.getTotalLength(), box: [bb.x, bb.y, bb.width, bb.height],
        stroke: getComputedStyle(pl).stroke, shown: getComputedStyle(pl).visibility === 'visible'};
    }
    for (const r of svg.querySelectorAll('rect.bar')) {
      c.bars.push({label: r.dataset.label, value: r.dataset.value, width: r.getBBox().width});
    }
    const box = svg.getBoundingClientRect();
    c.box = [box.x + window.scrollX, box.y + window.scrollY, box.width, box.height];
    out[svg.id] = c;
  }
  out.sections = [...document.querySelectorAll('section.address')].map(s => s.dataset.address);
  out.transfers = [...document.querySelectorAll('table.transfers tr')].length - 1;
  return out;
})()"""


def png_pixels(data: bytes) -> tuple[int, int, list[bytearray], int]:
    """Decode an 8-bit RGB/RGBA, non-interlaced PNG: (width, height, rows, bytes per pixel)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return w, h, rows, bpp


def back(plot: dict, axis: str, x: float, y: float) -> tuple[float, float]:
    """A vertex (user units) mapped back to (epoch seconds, value) through the plot's data-*."""
    x0, x1, y0, y1 = (float(plot[k]) for k in ("x0", "x1", "y0", "y1"))
    t = float(plot["tMin"]) + (x - x0) / (x1 - x0) * (float(plot["tMax"]) - float(plot["tMin"]))
    lo, hi = float(plot[axis + "Min"]), float(plot[axis + "Max"])
    return t, lo + (y1 - y) / (y1 - y0) * (hi - lo)


def test_report_renders_in_headless_chromium(new_db, own_server, data_dir, readable_dir, browser):
    srv = own_server("--generate", "300", "--seed", "42", "--txs-per-block", "20-40")
    facts = srv.control.chain()
    tokens = {t["address"]: (t["decimals"], Decimal(1) if t["priced"] == "usd" else None)
              for t in facts["tokens"] if t.get("priced")}
    whale = facts["whales"][0]
    labels = {facts["exchange"]["hot"]: ("Synthex Exchange hot wallet", "exchange"),
              facts["exchange"]["cold"]: ("Synthex Exchange cold wallet", "exchange")}
    prices = Prices(data_dir)
    db = new_db()
    with connect(db) as c:
        add_server(c, srv.endpoint)
        c.execute("SELECT ethwhale.load_prices(%s)", [readable(data_dir / "eth_usd_daily.csv", readable_dir)])
        c.execute("SELECT ethwhale.load_labels(%s)",
                  [write_labels(readable_dir, [(a, lab, cat) for a, (lab, cat) in labels.items()])])
        for t in facts["tokens"]:
            if t.get("priced"):
                c.execute("INSERT INTO ethwhale.token (address, symbol, decimals, usd_peg) VALUES (%s, %s, %s, %s)",
                          [t["address"], t["symbol"], t["decimals"], 1 if t["priced"] == "usd" else None])
        c.execute("CALL ethwhale.refresh()")
        top3 = [r[0] for r in c.execute("SELECT address FROM ethwhale.whale_candidates WHERE rank <= 3"
                                        " ORDER BY rank, address")]
    out = Path(tempfile.mkdtemp(prefix="ew_report_"))
    env = {**os.environ, "PGDATABASE": db}
    for args in ([whale], ["--top", "3"]):
        p = subprocess.run([str(REPO_ROOT / "scripts" / "report"), "--out", str(out), "--step", "10 minutes", *args],
                           capture_output=True, text=True, env=env, timeout=300)
        assert p.returncode == 0, p.stderr
    page = out / f"report-{whale}.html"
    assert p.stdout.strip() == str(out / "report-top-3.html") and page.is_file()
    shutil.copyfile(page, RESULTS / "report.html")

    # the truth: the generator's balance at the last block, walked back
    blocks = chain(srv.control, 0, 299)
    want = walk(blocks, whale, 299, gen_balance(srv.control, whale, 299), STEP, prices, tokens)
    large = [m for m in moves(blocks, prices, tokens)
             if (m["kind"] == "ETH" or m["token"] in tokens) and m["usd"] is not None and m["usd"] >= 100000
             and whale in (m["from"], m["to"])]
    by_label = defaultdict(Decimal)
    for m in large:
        cp = m["to"] if m["from"] == whale else m["from"]
        by_label[labels.get(cp, ("unlabelled",))[0]] += cents(m["usd"])
    assert len(large) >= 5

    s, height = open_page(browser, page)
    got = browser.send("Runtime.evaluate", {"expression": PROBE, "returnByValue": True}, session=s)["result"]["value"]
    shot = base64.b64decode(browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                                         session=s)["data"])
    (RESULTS / "report-screenshot.png").write_bytes(shot)
    requests = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
    console = [e["params"]["entry"]["text"] for e in browser.events if e.get("method") == "Log.entryAdded"]
    assert requests == [page.as_uri()], requests          # nothing but the page itself
    assert not [t for t in console if "Content Security Policy" in t or "Refused" in t], console

    assert got["sections"] == [whale] and got["transfers"] == min(10, len(large))
    charts = {"balance": ("balance_eth", "eth_usd"), "usd": ("balance_usd", "token_usd", "total_usd")}
    truth = {"balance_eth": [float(w["balance_eth"]) for w in want], "eth_usd": [float(w["eth_usd"]) for w in want],
             "balance_usd": [float(cents(w["balance_eth"] * w["eth_usd"])) for w in want],
             "token_usd": [float(cents(w["token_usd"])) for w in want],
             "total_usd": [float(cents(w["balance_eth"] * w["eth_usd"] + w["token_usd"])) for w in want]}
    epochs = [w["period_start"].timestamp() for w in want]
    assert len(want) >= 5
    for chart, keys in charts.items():
        c = got[f"{chart}-{whale}"]
        plot = c["plot"]
        assert set(c["series"]) == set(keys), c["series"].keys()
        x0, x1, y0, y1 = (float(plot[k]) for k in ("x0", "x1", "y0", "y1"))
        for k in keys:
            ser = c["series"][k]
            assert ser["shown"] and len(ser["points"]) == len(want), (k, len(ser["points"]))
            assert ser["length"] > 0 and ser["hits"] == len(want), (k, ser["hits"])
            bx, by, bw, bh = ser["box"]
            assert x0 - 0.5 <= bx and bx + bw <= x1 + 0.5 and y0 - 0.5 <= by and by + bh <= y1 + 0.5, (k, ser["box"])
            lo, hi = float(plot[ser["axis"] + "Min"]), float(plot[ser["axis"] + "Max"])
            tol_v = (hi - lo) / (y1 - y0) * 0.01      # coordinates are written to 1/100 pixel
            tol_t = (float(plot["tMax"]) - float(plot["tMin"])) / (x1 - x0) * 0.01
            for (x, y), t_want, v_want in zip(ser["points"], epochs, truth[k]):
                t, v = back(plot, ser["axis"], x, y)
                assert abs(t - t_want) <= tol_t and abs(v - v_want) <= tol_v, (k, t, t_want, v, v_want)
        if chart == "balance":
            # the line is painted: the screenshot's pixels at its vertices have its colour
            w_px, h_px, rows, bpp = png_pixels(shot)
            assert (w_px, h_px) == (1000, height)
            colour = (0x1F, 0x5F, 0xBF)
            painted = 0
            for px, py in c["series"]["balance_eth"]["page"]:
                row = rows[round(py)]
                r, g, b = row[round(px) * bpp:round(px) * bpp + 3]
                painted += abs(r - colour[0]) + abs(g - colour[1]) + abs(b - colour[2]) <= 30
            assert painted == len(want), painted
    bars = got[f"counterparties-{whale}"]["bars"]
    assert {b["label"]: Decimal(b["value"]) for b in bars} == dict(sorted(by_label.items(), key=lambda kv: -kv[1])[:8])
    widths = [b["width"] for b in bars]
    assert widths == sorted(widths, reverse=True) and widths[0] > 0

    s2, _ = open_page(browser, out / "report-top-3.html")
    top = browser.send("Runtime.evaluate", {"expression": PROBE, "returnByValue": True}, session=s2)["result"]["value"]
    assert top["sections"] == top3 and len(top3) == 3
    assert all(f"balance-{a}" in top and "eth_usd" in top[f"balance-{a}"]["series"] for a in top3)
    shutil.rmtree(out, ignore_errors=True)
