"""The web view's one page: the live MJPEG stream and a table of each face's emotions.

Kept as a Python string rather than a data file so it ships with the package without
packaging rules.  The script builds the table with ``textContent`` only: stream names
come from the network and must never be parsed as HTML.  The emotion columns come from
the model's own list, written into the page once as a JSON data block (inert under the
page's Content-Security-Policy, read by the script), so the page cannot fall out of step
with the scores it shows.
"""

from __future__ import annotations

import json

from fakeblock.common.model_io import EMOTIONS

EMOTIONS_MARKER = "@EMOTIONS_JSON@"
_PAGE_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fakeblock - live emotions</title>
<style>
  body { margin: 0; padding: 12px; background: #161616; color: #eee; font: 14px system-ui, sans-serif; }
  h1 { font-size: 16px; margin: 0 0 8px; }
  #stream { display: block; max-width: 100%; width: 640px; background: #000; }
  #status { color: #aaa; margin: 6px 0; }
  table { border-collapse: collapse; margin-top: 6px; }
  th, td { padding: 3px 8px; border-bottom: 1px solid #333; text-align: right; }
  th:first-child, td:first-child, td.emotion { text-align: left; }
  td.emotion { color: #8fd18f; font-weight: bold; }
</style>
</head>
<body>
<h1>fakeblock - live emotions</h1>
<img id="stream" src="/stream.mjpg" alt="annotated live stream">
<div id="status">waiting for results...</div>
<table>
  <thead><tr id="header"><th>face</th><th>emotion</th></tr></thead>
  <tbody id="faces"></tbody>
</table>
<script id="emotions" type="application/json">@EMOTIONS_JSON@</script>
<script>
const EMOTIONS = JSON.parse(document.getElementById("emotions").textContent);
const header = document.getElementById("header");
for (const name of EMOTIONS) {
  const cell = document.createElement("th");
  cell.textContent = name;
  header.appendChild(cell);
}

function cell(row, text, className) {
  const element = document.createElement("td");
  element.textContent = text;
  if (className) element.className = className;
  row.appendChild(element);
}

function render(record) {
  const status = document.getElementById("status");
  if (record.frame === null) { status.textContent = "waiting for results..."; return; }
  status.textContent = `stream ${record.stream} | frame ${record.frame} | ${record.time_s.toFixed(2)} s | ` +
                       `${record.faces.length} face(s)`;
  const body = document.getElementById("faces");
  body.replaceChildren();
  record.faces.forEach((face, index) => {
    const row = document.createElement("tr");
    cell(row, face.track === undefined ? String(index + 1) : `#${face.track}`);
    cell(row, face.emotion, "emotion");
    for (const name of EMOTIONS) cell(row, `${Math.round(100 * face.scores[name])}%`);
    body.appendChild(row);
  });
}

async function refresh() {
  try {
    const response = await fetch("/emotions.json", {cache: "no-store"});
    render(await response.json());
  } catch (error) {
    document.getElementById("status").textContent = "display stage not reachable";
  }
}
refresh();
setInterval(refresh, 500);
</script>
</body>
</html>
"""


def page_html(emotions: tuple[str, ...] = EMOTIONS) -> str:
    """The page with ``emotions`` as its score columns, in score order."""
    # "<" escaped, so no name could ever close the data block early.
    return _PAGE_TEMPLATE.replace(EMOTIONS_MARKER, json.dumps(list(emotions)).replace("<", "\\u003c"))


PAGE_HTML = page_html()
