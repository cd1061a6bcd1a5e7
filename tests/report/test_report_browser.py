"""The report in a real browser (Debian's chromium, headless), as a person would open it: the
file alone in another folder, no console error, no broken image, no blocked request, no script run
from a file name, every picture with alt text, every control reachable by keyboard, the page's own
script working (filter, sort), a picture enlarged by its address, no sideways scroll at 400 px,
and screenshots at 1400 and 400 px in artifacts/ (not in git) for a person to look at.

The page under test is a copy of report.html with a probe script put first in <head> (before the
page's security policy, which allows only the page's own script) and with lazy loading off, so
every image has loaded by the time the load event fires. The probe writes its findings into the
DOM, which chromium's --dump-dom prints.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_report import FAST, XSS_NAME, make_dataset

from repsample.cli import cli
from repsample.report.gather import read_run_data

ARTIFACTS = Path(__file__).parent.parent.parent / "artifacts"

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
  document.body.getBoundingClientRect();  // the layout is part of the render
  var loaded = performance.now();
  var imgs = [].slice.call(document.images);
  var controls = [].slice.call(document.querySelectorAll("a, summary, button, input, select"));
  var target = document.querySelector(":target");
  var box = document.querySelector("details.images"), filtered = null, sorted = null, least = null;
  if (box && box.querySelector(".controls")) {  // as a person would: kept only, farthest first
    box.querySelector("[name=status]").value = "kept";
    box.querySelector("[name=sort]").value = "distance";
    box.querySelector("[name=desc]").checked = true;
    box.querySelector("[name=desc]").dispatchEvent(new Event("change", {bubbles: true}));
    filtered = box.querySelector("output").textContent;
    sorted = box.querySelector("pre.list").textContent;
    box.querySelector("[name=measure]").value = "distance";
    box.querySelector("[name=least]").value = "3.5";
    box.querySelector("[name=least]").dispatchEvent(new Event("input", {bubbles: true}));
    least = box.querySelector("output").textContent;
  }
  var seen = target ? [target.id, getComputedStyle(target).position,
                       !target.closest("details:not([open])")] : null;
  var escaped = null;
  if (document.querySelector(".thumb:target")) {  // Escape closes an enlarged picture
    document.dispatchEvent(new KeyboardEvent("keydown", {key: "Escape"}));
    escaped = location.hash + (document.querySelector(".thumb:target") ? " still open" : "");
  }
  var out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({
    images: imgs.length,
    broken: imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                .map(function (i) { return i.getAttribute("src").slice(0, 80); }),
    no_alt: imgs.filter(function (i) { return !i.alt; }).length,
    problems: __problems,
    text: document.body.innerText.indexOf(%s) >= 0,
    controls: controls.length,
    unreachable: controls.filter(function (c) { return c.tabIndex < 0; })
                         .map(function (c) { return c.outerHTML.slice(0, 80); }),
    revealed: document.querySelectorAll(".controls:not([hidden])").length,
    filtered: filtered,
    sorted: sorted,
    least: least,
    escaped: escaped,
    target: seen,
    overflow: document.documentElement.scrollWidth - innerWidth,
    load_ms: loaded
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


def probe(browser: str, report: Path, profile: Path, fragment: str = "", width: int = 1280,
          lazy: bool = False, page_script: bool = True) -> dict[str, Any]:
    """Open a probed copy of report (beside it) and return what the probe found; page_script
    False: the page's own script taken out, as for a reader with scripts off."""
    html = report.read_text(encoding="utf-8")
    if not page_script:
        html = re.sub(r"<script>.*?</script>", "", html, flags=re.S)
    probed = html.replace("<head>", "<head>" + PROBE % json.dumps(XSS_NAME), 1)
    if not lazy:
        probed = probed.replace(' loading="lazy"', "")
    copy = report.with_name("probe.html")
    copy.write_text(probed, encoding="utf-8")
    done = headless(browser, profile, f"--window-size={width},900", "--dump-dom",
                    copy.as_uri() + fragment)
    copy.unlink()
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"no probe output; chromium said: {done.stderr[-2000:]}"
    assert not re.search(r"Uncaught|Refused to|ERR_FILE_NOT_FOUND", done.stderr), done.stderr[-2000:]
    findings: dict[str, Any] = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&")
                                          .replace("&lt;", "<").replace("&gt;", ">"))
    return findings


def screenshot(browser: str, report: Path, profile: Path, name: str, width: int,
               height: int) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / name
    headless(browser, profile, f"--window-size={width},{height}", f"--screenshot={shot}",
             report.as_uri())
    assert shot.is_file() and shot.stat().st_size > 10_000
    return shot


@pytest.mark.slow
def test_report_alone_in_another_folder_in_headless_chromium(tmp_path: Path) -> None:
    browser = chromium()
    data = make_dataset(tmp_path / "data")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["select", str(data), str(out), "--per-class", "5",
                                      "--k-min", "2", "--k-max", "4", "--cache",
                                      str(tmp_path / "c.sqlite"), "-q", *FAST])
    assert result.exit_code == 0, result.output
    cats = read_run_data(out).groups[0].items
    far = sum(i.status == "selected" and (i.distance or 0) >= 3.5 for i in cats)
    alone = tmp_path / "elsewhere" / "report.html"  # mailed or uploaded: no OUTPUT beside it
    alone.parent.mkdir()
    shutil.copy(out / "report.html", alone)
    shutil.rmtree(out)
    profile = tmp_path / "profile"

    findings = probe(browser, alone, profile)
    assert findings["problems"] == []
    assert findings["broken"] == []
    assert findings["images"] >= 24 and findings["no_alt"] == 0  # every valid image, with alt text
    assert findings["text"] is True  # the hostile name is shown, as text
    assert findings["controls"] > 30 and findings["unreachable"] == []
    assert findings["revealed"] == 2  # the script ran and showed its controls
    assert findings["filtered"] == "5 of 16 shown"  # train/cats: its 5 kept images
    header, *lines = findings["sorted"].split("\n")
    at = header.index("distance")
    distances = [float(line[at:].split()[0]) for line in lines]
    assert len(lines) == 5 and all(line.startswith("kept ") for line in lines)
    assert distances == sorted(distances, reverse=True)
    assert findings["least"] == f"{far} of 16 shown"  # and at a distance of 3.5 or more

    enlarged = probe(browser, alone, profile, "#v0")  # the figure itself, fixed over the page
    assert enlarged["target"] == ["v0", "fixed", True] and enlarged["problems"] == []
    assert enlarged["escaped"] == "#_"
    listed = probe(browser, alone, profile, "#g1-list")  # where an unpictured map point leads
    assert listed["target"] == ["g1-list", "static", True]  # opened by the script

    # Without the page's script (the probe alone runs): the same pictures, all loaded, and the
    # lists; no control shown that would do nothing.
    static = probe(browser, alone, profile, page_script=False)
    assert static["images"] == findings["images"] and static["broken"] == []
    assert static["revealed"] == 0 and static["problems"] == []

    narrow = probe(browser, alone, profile, width=400)
    assert narrow["overflow"] <= 0, "the page scrolls sideways at 400 px"
    screenshot(browser, alone, profile, "report-1400.png", 1400, 3000)
    screenshot(browser, alone, profile, "report-400.png", 400, 2400)
