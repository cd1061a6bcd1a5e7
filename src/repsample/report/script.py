"""The page's one script: search, filter and sort the image lists, and Escape to close a picture.

Inline and allowed by its hash in the page's security policy (nothing else may run). The page
shows everything without it: the controls it drives start hidden and it only reveals them.
"""

from __future__ import annotations

import base64
import hashlib

SCRIPT = """
(function () {
  "use strict";
  function rows(table) { return [].slice.call(table.tBodies[0].rows); }
  function filter(box) {
    var table = box.querySelector("table.list"), q = box.querySelector("input").value.toLowerCase();
    var picks = box.querySelectorAll(".controls select"), status = picks[0].value, cluster = picks[1].value;
    var shown = 0, all = rows(table);
    all.forEach(function (r) {
      var c = r.cells;
      var ok = (!q || c[0].textContent.toLowerCase().indexOf(q) >= 0) &&
               (!status || c[1].textContent.indexOf(status) === 0) &&
               (!cluster || c[2].textContent === cluster);
      r.hidden = !ok;
      if (ok) { shown += 1; }
    });
    box.querySelector("output").textContent = shown + " of " + all.length + " shown";
  }
  function sortBy(table, th, column) {
    var up = th.getAttribute("aria-sort") !== "ascending";
    [].forEach.call(th.parentNode.cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", up ? "ascending" : "descending");
    var keyed = rows(table).map(function (r) {
      var text = r.cells[column] ? r.cells[column].textContent : "", n = parseFloat(text);
      return [text === "" ? 1 : 0, isNaN(n) ? text.toLowerCase() : n, r];
    });
    keyed.sort(function (a, b) {
      if (a[0] !== b[0]) { return a[0] - b[0]; }
      var d = a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
      return up ? d : -d;
    });
    var body = table.tBodies[0];
    keyed.forEach(function (k) { body.appendChild(k[2]); });
  }
  [].forEach.call(document.querySelectorAll("details.images"), function (box) {
    var controls = box.querySelector(".controls"), table = box.querySelector("table.list");
    controls.hidden = false;
    controls.addEventListener("input", function () { filter(box); });
    controls.addEventListener("change", function () { filter(box); });
    [].forEach.call(table.tHead.rows[0].cells, function (th, column) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = th.textContent;
      button.addEventListener("click", function () { sortBy(table, th, column); });
      th.textContent = "";
      th.appendChild(button);
    });
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && location.hash.indexOf("#v") === 0) { location.hash = "_"; }
  });
})();
"""


def script_tag() -> str:
    return f"<script>{SCRIPT}</script>"


def csp_source() -> str:
    """The policy's source that allows exactly this script."""
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
    return f"'sha256-{digest}'"
