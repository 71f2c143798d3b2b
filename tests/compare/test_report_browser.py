"""The compare report as a browser shows it: Debian's headless Chromium renders report.html, its tables and its plot."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bondflow.compare.flow import compare
from bondflow.compare.report import COLUMNS, METRIC_COLUMNS, write_report
from bondflow.tools import find_tool
from simgraphs import one_layer

pytestmark = [pytest.mark.sim, pytest.mark.synth]
WINDOW = (1000, 800)
PLOT_PX = (600, 400)  # report.py's figure: 6 x 4 inches at 100 dpi
# Copied into a test copy of the page only: the decoded size of every image and the table's row count land in the DOM.
PROBE = ("<script>window.addEventListener('load', () => {"
         "for (const i of document.images) i.setAttribute('data-decoded', i.complete ? i.naturalWidth + 'x' + i.naturalHeight : 'no');"
         "document.body.setAttribute('data-rows', document.querySelectorAll('table#results tr').length);});</script>")


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    exe = find_tool("chromium")
    assert exe
    # --no-sandbox: Chromium refuses to run as root with its sandbox; the profile keeps parallel runs apart.
    cmd = [exe, "--headless", "--disable-gpu", "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}", *args]
    if os.geteuid() == 0:
        cmd.insert(1, "--no-sandbox")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def report(tmp_path, need_tool):
    """A report from a real compare run: two architectures on a one-layer graph, 50 vectors each."""
    for tool in ("chromium", "iverilog", "yosys"):  # before the run: a missing tool skips (or fails) at once
        need_tool(tool)
    out = tmp_path / "report"
    results = compare(one_layer(), {"dataflow": ("dataflow", {}), "reference": ("reference", {})}, "xc7z020", out,
                      vectors=50, progress=lambda _m: None)
    import json
    saved = json.loads((out / "results.json").read_text())
    write_report(results, out, "one_layer", "xc7z020", metrics={r["label"]: r["metrics"] for r in saved["results"]})
    return out, results


def test_report_renders_in_chromium(report, tmp_path) -> None:
    out, results = report
    assert all(r.status == "ok" and r.bit_exact for r in results), [r.error for r in results]

    # The DOM after load: every result row, its cells as measured, and the plot decoded at its full size.
    probe = tmp_path / "probe.html"
    probe.write_text((out / "report.html").read_text().replace("</body>", PROBE + "</body>"))
    r = chromium("--virtual-time-budget=5000", "--dump-dom", probe.as_uri(), profile=tmp_path / "p1")
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    assert f'data-rows="{1 + len(results)}"' in dom, dom[:3000]
    table = dom[dom.index('<table id="results">'):dom.index("</table>")]
    rows = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", tr) for tr in re.findall(r"<tr>(.*?)</tr>", table)]
    cols = list(COLUMNS + METRIC_COLUMNS)
    assert rows[0] == cols
    assert table.count('class="fits-yes"') == len(results)  # both designs fit the Z-7020: marked, not only printed
    for row, res in zip(rows[1:], results):
        cells = dict(zip(cols, row))
        assert cells["fits"] == "✓" and cells["clock_mhz"] == "100"  # no fmax from yosys: the target's clock, assumed
        assert cells["latency_ns"] == f"{1000 * res.latency_cycles / 100:.4g}"
        assert cells["util_lut"] == f"{100 * res.lut / 53200:.1f} %"
        assert cells["arch"] == res.label and cells["status"] == "ok" and cells["bit_exact"] == "True"
        assert (cells["vectors"], cells["latency_cycles"], cells["lut"], cells["dsp"]) == (
            str(res.vectors), f"{res.latency_cycles:.3g}" if isinstance(res.latency_cycles, float) else str(res.latency_cycles),
            str(res.lut), str(res.dsp))
    imgs = re.findall(r"<img [^>]*>", dom)
    assert len(imgs) == 1 and f'data-decoded="{PLOT_PX[0]}x{PLOT_PX[1]}"' in imgs[0], imgs

    # The page itself, unmodified, as pixels.
    shot = tmp_path / "report.png"
    r = chromium(f"--screenshot={shot}", f"--window-size={WINDOW[0]},{WINDOW[1]}", (out / "report.html").as_uri(),
                 profile=tmp_path / "p2")
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    from PIL import Image
    with Image.open(shot) as im:
        assert im.format == "PNG" and im.size == WINDOW
        px = np.asarray(im.convert("RGB"), dtype=np.int16)
    assert px.std() > 10, "screenshot must show the page, not be blank"
    # The scatter markers (matplotlib's tab:red for the Pareto front, tab:blue otherwise) are on screen.
    markers = sum(int((np.abs(px - c).sum(axis=2) < 40).sum()) for c in ((214, 39, 40), (31, 119, 180)))
    assert markers > 50 * len(results), f"only {markers} marker pixels: the plot is not visible"
    # The table's borders (#999) and black text are drawn in the top part of the page.
    top = px[: WINDOW[1] // 4]
    assert (np.abs(top - 153).sum(axis=2) < 10).sum() > 500 and (top.sum(axis=2) < 100).sum() > 500
