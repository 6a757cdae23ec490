"""report.html opens in a real browser (headless Chromium) with its PR curves and thumbnails
loaded: every <img> decodes to a picture (naturalWidth > 0), found beside the page."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Appended to a copy of the page (same folder, so relative image paths resolve as in the report):
# once everything has loaded, write each image's class and decoded width into the DOM.
PROBE = """<script>window.addEventListener('load', () => {
  const p = document.createElement('pre'); p.id = 'probe';
  p.textContent = [...document.images].map(i => i.className + '=' + i.naturalWidth).join(' ');
  document.body.appendChild(p);
});</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it: apt-get install chromium)")
def test_report_opens_in_chromium_with_its_plots(
    eval_app: typer.Typer, subset: Path, devset_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(eval_app, ["eval", str(subset), "--images", str(devset_dir), "--out", str(out),
                                           "--workers", "1"])
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text()
    probe = out / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    assert CHROMIUM is not None
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    found = re.search(r'<pre id="probe">([^<]*)</pre>', dom)
    assert found, dom[-2000:]
    widths = [entry.split("=") for entry in found.group(1).split()]
    curves = [int(w) for cls, w in widths if cls == "curve"]
    thumbs = [int(w) for cls, w in widths if cls == "thumb"]
    assert curves == [500]  # the person PR curve: 5 in x 100 dpi
    assert thumbs and all(w > 0 for w in thumbs), widths
    assert "<h2>person</h2>" in dom and "AP50" in dom
