"""The page's one script: search, filter (status, cluster, a measure at least) and sort the image
lists, open a list a link leads to, and close an enlarged picture with Escape.

Inline and allowed by its hash in the page's security policy (nothing else may run). The page
shows everything without it: the controls it drives start hidden and it only reveals them.
"""

from __future__ import annotations

import base64
import hashlib

SCRIPT = """
(function () {
  "use strict";
  // A list is aligned text: the header's words mark where each column starts; the file is last.
  function parse(pre) {
    var lines = pre.textContent.split("\\n"), header = lines[0], starts = [0], i;
    for (i = 2; i < header.length; i += 1) {
      if (header[i] !== " " && header[i - 1] === " " && header[i - 2] === " ") { starts.push(i); }
    }
    var names = starts.map(function (s, j) { return header.slice(s, starts[j + 1]).trim(); });
    var rows = lines.slice(1).map(function (text, n) {
      var cells = starts.map(function (s, j) {
        return j === starts.length - 1 ? text.slice(s) : text.slice(s, starts[j + 1]).trim();
      });
      return {text: text, cells: cells, n: n};
    });
    return {header: header, names: names, rows: rows};
  }
  function update(box) {
    var pre = box.querySelector("pre.list"), list = box.__list || (box.__list = parse(pre));
    var get = function (name) { return box.querySelector("[name=" + name + "]"); };
    var q = box.querySelector("input[type=search]").value.toLowerCase();
    var status = get("status").value, cluster = get("cluster").value;
    var column = list.names.indexOf(get("sort").value), down = get("desc").checked;
    var measure = list.names.indexOf(get("measure").value), least = parseFloat(get("least").value);
    var last = list.names.length - 1;
    var shown = list.rows.filter(function (r) {
      return (!q || r.cells[last].toLowerCase().indexOf(q) >= 0) &&
             (!status || r.cells[0].indexOf(status) === 0) && (!cluster || r.cells[1] === cluster) &&
             (isNaN(least) || parseFloat(r.cells[measure]) >= least);
    });
    if (column >= 0) {
      shown.sort(function (a, b) {
        var x = a.cells[column], y = b.cells[column];
        if ((x === "") !== (y === "")) { return x === "" ? 1 : -1; }  // blanks last either way
        var nx = parseFloat(x), ny = parseFloat(y);
        var d = !isNaN(nx) && !isNaN(ny) ? nx - ny : x < y ? -1 : x > y ? 1 : 0;
        return (down ? -d : d) || a.n - b.n;
      });
    }
    pre.textContent = [list.header].concat(shown.map(function (r) { return r.text; })).join("\\n");
    box.querySelector("output").textContent = shown.length + " of " + list.rows.length + " shown";
  }
  [].forEach.call(document.querySelectorAll("details.images"), function (box) {
    var controls = box.querySelector(".controls");
    controls.hidden = false;
    controls.addEventListener("input", function () { update(box); });
    controls.addEventListener("change", function () { update(box); });
  });
  // A map point whose image has no picture links to its group's list: open it, not just scroll.
  function reveal() {
    var target = location.hash.length > 1 && document.getElementById(location.hash.slice(1));
    if (target && target.tagName === "DETAILS") { target.open = true; }
  }
  addEventListener("hashchange", reveal);
  reveal();
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && document.querySelector(".thumb:target")) { location.hash = "_"; }
  });
})();
"""


def script_tag() -> str:
    return f"<script>{SCRIPT}</script>"


def csp_source() -> str:
    """The policy's source that allows exactly this script."""
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
    return f"'sha256-{digest}'"
