"""The HTML report opens in a real browser (headless Chromium): tables render with their rows,
every embedded image decodes, and the page is not blank. Skipped only where no Chromium binary
can be found (install Debian's `chromium` package)."""

import base64
import io
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from stylegan_eval.html_report import ReportOptions, write_report
from stylegan_eval.report import load_inputs
from tests.eval.test_report import ls_extras, ppl_extras, write_results

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome", "chrome") if shutil.which(b)), None)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(BROWSER is None, reason="no Chromium binary on PATH (apt-get install chromium)"),
]

# Added to a copy of the page only: the report itself needs no JavaScript.
PROBE = """<script>window.addEventListener("load", function () {
  var im = document.images, ok = 0;
  for (var i = 0; i < im.length; i++) { if (im[i].complete && im[i].naturalWidth > 0) ok++; }
  document.body.setAttribute("data-images-decoded", ok + "/" + im.length);
  document.body.setAttribute("data-model-rows", document.querySelectorAll("table#models tbody tr").length);
  document.body.setAttribute("data-table4-rows", document.querySelectorAll("table#table4 tbody tr").length);
});</script>"""


def chromium(tmp_path, *args):
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=5000",
    ]
    res = subprocess.run([BROWSER, *flags, *args], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    np.save(tmp / "d.npy", np.random.default_rng(0).lognormal(3, 1, 200))
    write_results(tmp / "r.jsonl", extras_ppl=ppl_extras("d.npy"), extras_ls=ls_extras({"smile": 0.2, "hat": 0.3}))
    grid = tmp / "grid.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(grid)
    return write_report(load_inputs([tmp / "r.jsonl"]), tmp / "rep", ReportOptions(images=(("sample grid", str(grid)),)))


def test_dom_has_tables_and_decoded_images(report, tmp_path):
    probe = report / "probe.html"
    probe.write_text((report / "report.html").read_text().replace("</body>", PROBE + "</body>"))
    dom = chromium(tmp_path, "--dump-dom", probe.as_uri())
    body = re.search(r"<body[^>]*>", dom).group(0)
    # 2 measured models + 3 published rows (F: paper, official model; B: paper).
    assert 'data-model-rows="5"' in body
    assert 'data-table4-rows="' in body and 'data-table4-rows="0"' not in body
    assert 'data-images-decoded="5/5"' in body  # 2 histograms, 2 entropy bars, 1 grid
    assert "F-cpu32" in dom and "B-cpu32" in dom and "SUBSTITUTE FEATURE NETWORKS" in dom
    # Each data URI is a whole PNG (the browser saw the same bytes the report wrote).
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', dom)
    assert len(uris) == 5
    for u in uris:
        assert Image.open(io.BytesIO(base64.b64decode(u))).size[0] > 0


def test_screenshot_is_not_blank(report, tmp_path):
    shot = tmp_path / "shot.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,1600", (report / "report.html").as_uri())
    img = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert img.shape == (1600, 1200)
    dark = (img < 128).mean()
    assert 0.005 < dark < 0.5, dark  # text and tables drawn on a light page
