"""report.html v2: samples, schema, per-split distributions, requested vs delivered, timings,
environment, folded long tails; self-contained (checked in headless Chromium)."""

from __future__ import annotations

import base64
import html as htmlmod
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import attrs
import pytest
from datacore import ShardTask, Telemetry, build_dataset, load_manifest
from datacore.report import fold_histogram, render_report
from toygen import ToyGenerator

ROOT = Path(__file__).resolve().parents[3]


@attrs.frozen
class NastyGenerator:
    """Records with markup, a long field, an optional field and a categorical one."""

    name: str = "nasty"
    version: str = "0.1"

    def config_dict(self) -> dict[str, Any]:
        return {}

    def generate_shard(self, task: ShardTask, telemetry: Telemetry):
        for i in range(task.count):
            g = task.start + i
            telemetry.observe("kind", f"k{g % 97}")  # 97 categories: a long tail
            rec = {
                "text": f"<script>alert({g})</script> & </td>",
                "long": "x" * 500 + str(g),
                "n": g,
                "kind": "ab"[g % 2],
                "meta": {"g": g},
            }
            if g % 2:
                rec["opt"] = 1.5
            yield rec

    def split_key(self, record: dict[str, Any]) -> str:
        return str(record["n"])


@pytest.fixture(scope="module")
def nasty(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "ds"
    build_dataset(NastyGenerator(), out, 200, 0, workers=1, executor="inline", shard_size=50, progress=False)
    return out


def _report(out: Path) -> str:
    return (out / "report.html").read_text()


def test_report_does_not_change_matplotlib_backend_or_rcparams(tmp_path) -> None:
    import matplotlib

    matplotlib.use("pdf")
    matplotlib.rcParams["font.size"] = 13.0
    before = dict(matplotlib.rcParams)
    out = tmp_path / "ds"
    build_dataset(ToyGenerator(), out, 20, 0, workers=1, executor="inline", shard_size=10, progress=False)
    assert matplotlib.get_backend() == "pdf"
    after = dict(matplotlib.rcParams)
    assert {k for k in before if before[k] != after[k]} == set()
    matplotlib.rcParams.update(matplotlib.rcParamsDefault)


def test_long_tail_is_folded_into_other_never_cut() -> None:
    cat = {f"c{i}": i + 1 for i in range(100)}
    keys, counts, note = fold_histogram(cat)
    assert len(keys) == 60 and keys[-1] == "other (41 buckets)"
    assert sum(counts) == sum(cat.values())
    assert counts[-1] == sum(range(1, 42))  # the 41 smallest: counts 1..41
    assert "other = " in note
    num = {str(i): 1 for i in range(500)}
    keys, counts, _ = fold_histogram(num)
    assert len(keys) <= 60 and sum(counts) == 500 and keys[0] == "0-8"


def test_report_histogram_table_lists_every_bucket(nasty) -> None:
    page = _report(nasty)
    assert "kind (top 59 of 97; other = " in page
    assert "kind: all 97 buckets" in page
    for i in range(97):
        assert f"<td>k{i}</td>" in page


def test_samples_are_escaped_and_long_fields_folded(nasty) -> None:
    page = _report(nasty)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(" in page
    assert "&amp; &lt;/td&gt;" in page
    # the 503-char field is folded under <details> with its length
    assert re.search(r"<details><summary><code>x{160}</code>… \(50[0-9] chars\)</summary>", page)
    for split in ("train", "val", "test"):
        assert f"<h3>{split} (" in page


def test_schema_table(nasty) -> None:
    page = _report(nasty)
    schema = page[page.index("<h2>Schema</h2>") : page.index("</table>", page.index("<h2>Schema</h2>"))]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"<tr><td><code>([^<]+)</code></td>(.*?)</tr>", schema)}
    cells = {k: re.findall(r"<td>(.*?)</td>", v) for k, v in rows.items()}
    assert cells["opt"][:2] == ["number", "50.0%"]
    assert cells["n"][:5] == ["integer", "100.0%", "0", "199", "200"]
    assert cells["kind"][0] == "string" and cells["kind"][4] == "2"
    assert cells["long"][5] == "501 / 502.5 / 503"  # 10 x 501, 90 x 502, 100 x 503
    assert cells["meta.g"][0] == "integer"


def test_per_split_distributions_side_by_side(nasty) -> None:
    page = _report(nasty)
    sec = page[page.index("<h2>Per-split distributions</h2>") :]
    assert "kind: value share per split" in sec and "n: value (binned) share per split" in sec
    assert "text: length share per split" in sec and "id: length share per split" in sec


def test_requested_vs_delivered_and_timings_and_environment(nasty) -> None:
    m = load_manifest(nasty)
    m["delivery"] = {
        "requested": 200,
        "delivered": 200,
        "ok": False,
        "shortfall_allowed": True,
        "strata": [
            {
                "stratum": "kind=a",
                "share": 0.7,
                "tolerance": 0.02,
                "requested": 140,
                "delivered": 100,
                "delivered_share": 0.5,
                "ok": False,
            }
        ],
    }
    for i, sh in enumerate(m["shards"]):
        sh["seconds"] = 0.5 + i
    tel = Telemetry.from_json((nasty / "telemetry.json").read_bytes())
    page = render_report(m, tel, root=nasty)
    sec = page[page.index("<h2>Requested vs delivered</h2>") :]
    assert "SHORTFALL (kept: --allow-shortfall)" in sec
    assert "<code>kind=a</code></td><td>70.0% (140)</td><td>±2.0%</td><td>50.0% (100)</td><td>-20.0 pp</td>" in sec
    assert "<h2>Shard timings</h2><p>4 shards, 8.00 worker-seconds" in page
    env = page[page.index("<h2>Environment</h2>") :]
    assert f"<td>{sys.version.split()[0]}</td>" in env
    assert re.search(r"<td>git commit</td><td>[0-9a-f]{12}", env)  # this test runs from a checkout


def test_report_renders_from_the_directory_alone(nasty, tmp_path) -> None:
    """No generator code: the generator's module cannot even be imported in the rendering process."""
    code = (
        "import sys; sys.modules['test_report_v2'] = None; sys.modules['toygen'] = None\n"
        "from datacore import load_manifest, Telemetry\nfrom datacore.report import render_report\n"
        f"d = {str(nasty)!r}\n"
        "page = render_report(load_manifest(d), Telemetry.from_json(open(d + '/telemetry.json','rb').read()), root=d)\n"
        "assert '<h2>Sample records</h2>' in page and '<h2>Schema</h2>' in page\nprint('ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


# -- headless Chromium ---------------------------------------------------------------------------


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if exe := shutil.which(name):
            return exe
    pytest.skip("no chromium binary on PATH (Debian: apt-get install -y chromium); the browser check did not run")


def visit(page: Path, screenshot: Path, width: int = 1200, timeout: float = 120.0) -> dict[str, list[str]]:
    """Open ``page`` in headless Chromium over the DevTools protocol; save a full-page PNG.

    Returns the console errors / exceptions and every request other than the page itself and
    inline ``data:`` content (another file:// path counts too: the page must stand alone).
    """
    websocket = pytest.importorskip("websocket", reason="the browser check needs websocket-client")
    exe = _chromium()
    profile = screenshot.parent / f"chromium-profile-{os.getpid()}"
    proc = subprocess.Popen(
        [
            exe,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30).read())
        ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True)
        msg_id = 0
        events: list[dict] = []

        def call(method: str, **params: Any) -> dict:
            nonlocal msg_id
            msg_id += 1
            ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
            while True:
                m = json.loads(ws.recv())
                if m.get("id") == msg_id:
                    if "error" in m:
                        raise RuntimeError(f"{method}: {m['error']}")
                    return m.get("result", {})
                events.append(m)

        for domain in ("Runtime", "Log", "Network", "Page"):
            call(f"{domain}.enable")
        call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=False)
        url = page.resolve().as_uri()
        call("Page.navigate", url=url)
        while not any(e.get("method") == "Page.loadEventFired" for e in events):
            events.append(json.loads(ws.recv()))
        call("Runtime.evaluate", expression="1")  # drain what the load queued
        shot = call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)
    errors, requests = [], []
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert", "warning"):
            errors.append(f"console.{p['type']}: {p.get('args')}")
        elif method == "Runtime.exceptionThrown":
            errors.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
            errors.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        elif method == "Network.requestWillBeSent":
            req = p.get("request", {}).get("url", "")
            # data: URLs are inline content (matplotlib embeds imshow images so), not fetches
            if req != url and not req.startswith("data:"):
                requests.append(req)
    return {"errors": errors, "requests": requests}


def test_report_in_headless_chromium(nasty, tmp_path) -> None:
    shot = tmp_path / "report.png"
    # with a generator section holding a heatmap
    from datacore import ReportSection, heatmap_svg

    m = load_manifest(nasty)
    tel = Telemetry.from_json((nasty / "telemetry.json").read_bytes())
    section = ReportSection("heat", heatmap_svg([[1, 2], [3, 4]], ["a", "b"], ["x", "y"], "heat"))
    page = tmp_path / "report.html"
    page.write_text(render_report(m, tel, [section], root=nasty))
    seen = visit(page, shot)
    assert seen["errors"] == []
    assert seen["requests"] == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_browser_check_can_fail(tmp_path) -> None:
    """The check sees a network request and a console error when a page has them."""
    bad = tmp_path / "bad.html"
    (tmp_path / "side.css").write_text("body{}")
    bad.write_text(
        "<!doctype html><html><head><link rel='stylesheet' href='side.css'></head><body>"
        "<img src='http://127.0.0.1:9/x.png'><script>console.error('boom')</script></body></html>"
    )
    seen = visit(bad, tmp_path / "bad.png")
    assert any("127.0.0.1:9" in r for r in seen["requests"])
    assert any(r.endswith("/side.css") for r in seen["requests"])
    assert any("boom" in e for e in seen["errors"])
    assert htmlmod.escape("<") == "&lt;"


def test_heatmap_is_plain_svg_with_one_cell_per_value() -> None:
    import xml.etree.ElementTree as ET

    from datacore import heatmap_svg

    svg = heatmap_svg([[0, 5, 10], [2.5, 7.5, 1]], ["r<0>", "r1"], ["a", "b", "c"], "t & u", "hits")
    root = ET.fromstring(svg)  # well-formed (labels escaped)
    ns = "{http://www.w3.org/2000/svg}"
    cells = [r for r in root.iter(f"{ns}rect") if r.find(f"{ns}title") is not None]
    assert len(cells) == 6
    tips = {c.find(f"{ns}title").text: c.get("fill") for c in cells}
    # viridis ends: the least value is dark purple, the largest yellow; the tooltip names row, column, value
    assert tips["r<0>, a: 0"] == "#440154" and tips["r<0>, c: 10"] == "#fde725"
    assert "r1, b: 7.5" in tips
    assert "matplotlib" not in svg and "t &amp; u" in svg
    with pytest.raises(ValueError, match="2-D"):
        heatmap_svg([1, 2], ["a"], ["b"], "x")


def test_scan_takes_records_from_every_shard(tmp_path) -> None:
    # the schema tables must see the whole run, not only its first shards
    from datacore.report import scan_dataset

    out = tmp_path / "d"
    build_dataset(ToyGenerator(), out, 4000, 3, shard_size=500, progress=False)
    m = load_manifest(out)
    scans = scan_dataset(out, m, limit=160)
    train = scans["train"]
    assert train.scanned == 160
    seen_shards = set(train.fields["meta.shard"].value_counts)
    assert seen_shards == {str(i) for i in range(8)}
    # a limit above a split's size reads all of it
    whole = scan_dataset(out, m, limit=10**6)
    assert {s: sc.scanned for s, sc in whole.items()} == m["splits"]
