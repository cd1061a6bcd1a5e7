"""The report in a real browser (Debian's chromium, headless): it loads with no console error,
no broken image, no blocked request, no script run from a file name, and every thumbnail.

The page under test is a copy of report.html with a probe script put first in <head> (before
the page's security policy, which forbids scripts) and with lazy loading off, so every image has
loaded by the time the load event fires. The probe writes its findings into the DOM, which
chromium's --dump-dom prints. A screenshot of the real page lands in artifacts/ (not in git).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from repsample.cli import cli
from repsample.report.gather import read_run_data
from test_report import FAST, XSS_NAME, make_dataset

ARTIFACTS = Path(__file__).parent.parent / "artifacts"

PROBE = """<script>
window.__problems = [];
addEventListener("error", function (e) {
  var t = e.target;
  __problems.push(t && t.tagName ? "failed to load " + t.tagName + " " + (t.src || t.href)
                                 : "script error " + e.message);
}, true);
document.addEventListener("securitypolicyviolation", function (e) {
  __problems.push("blocked " + e.blockedURI + " by " + e.violatedDirective);
});
var consoleError = console.error;
console.error = function () { __problems.push("console " + [].join.call(arguments, " "));
                              consoleError.apply(console, arguments); };
window.alert = function (m) { __problems.push("alert " + m); };
addEventListener("load", function () {
  var imgs = [].slice.call(document.images);
  var out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({
    images: imgs.length,
    broken: imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                .map(function (i) { return i.getAttribute("src"); }),
    problems: __problems,
    text: document.body.innerText.indexOf(%s) >= 0
  });
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("REPSAMPLE_REQUIRE_BROWSER"):
            pytest.fail("chromium not found; .ci/run installs it with apt-get install chromium")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return found


def headless(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
               "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_report_in_headless_chromium(tmp_path: Path) -> None:
    browser = chromium()
    data = make_dataset(tmp_path / "data")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["select", str(data), str(out), "--per-class", "5",
                                      "--k-min", "2", "--k-max", "4", "--cache",
                                      str(tmp_path / "c.sqlite"), "-q", *FAST])
    assert result.exit_code == 0, result.output
    report = out / "report.html"
    html = report.read_text(encoding="utf-8")
    probe = PROBE % json.dumps(XSS_NAME)
    probed = html.replace("<head>", "<head>" + probe, 1).replace(' loading="lazy"', "")
    (out / "probe.html").write_text(probed, encoding="utf-8")

    done = headless(browser, tmp_path / "profile", "--dump-dom", (out / "probe.html").as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"no probe output; chromium said: {done.stderr[-2000:]}"
    findings = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&")
                          .replace("&lt;", "<").replace("&gt;", ">"))
    expected = sum(i.status != "error" for g in read_run_data(out).groups for i in g.items)
    assert findings["problems"] == []
    assert findings["broken"] == []
    assert findings["images"] == expected == 24
    assert findings["text"] is True  # the hostile name is shown, as text
    assert not re.search(r"Uncaught|Refused to|ERR_FILE_NOT_FOUND", done.stderr), done.stderr[-2000:]

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report-screenshot.png"
    headless(browser, tmp_path / "profile", "--window-size=1280,3200", f"--screenshot={shot}",
             report.as_uri())
    assert shot.is_file() and shot.stat().st_size > 10_000
