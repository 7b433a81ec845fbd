"""TensorBoard as a person first sees it: a real server over one logdir of tiny real runs (a
char-RNN run, a linear run, a 2 x 2 sweep: tests/helpers/tensorboard_logdir.py), its Time
Series, Scalars and HParams tabs opened in headless Chromium, each at 1600 x 1200.

Chromium's `--dump-dom` serializes the page after its scripts ran (`--virtual-time-budget`), but
not the shadow roots the Scalars and HParams tabs draw in. So Chromium opens a page of ours
(`SEEN`) that holds the three tabs in frames and, once they have drawn, writes what each shows into
its own DOM as JSON: the groups in order with whether each is expanded and its cards, the HParams
table's header and rows. Reading the frames of another origin takes `--disable-web-security`
(and its own `--user-data-dir`); the page and TensorBoard are served on 127.0.0.1 only.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers.tensorboard_logdir import make_logdir, tensorboard_server

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.slow,  # six runs, a server and a browser: ~40 s on an idle 2-core CPU
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)"),
]

# What the three tabs show, read out of their frames after 20 s of the page's (virtual) time.
SEEN = """<!doctype html><html><body>
<iframe id="timeseries" src="{tensorboard}/#timeseries" width="1600" height="1200"></iframe>
<iframe id="scalars" src="{tensorboard}/#scalars" width="1600" height="1200"></iframe>
<iframe id="hparams" src="{tensorboard}/#hparams" width="1600" height="1200"></iframe>
<pre id="seen"></pre>
<script>
const frame = id => document.getElementById(id).contentDocument;
function deepAll(root, selector, found = []) {{
  found.push(...root.querySelectorAll(selector));
  for (const el of root.querySelectorAll("*")) {{
    if (el.shadowRoot) deepAll(el.shadowRoot, selector, found);
  }}
  return found;
}}
const timeSeries = doc => [...doc.querySelectorAll(".card-group")].map(group => ({{
  title: group.querySelector(".group-title").textContent.trim(),
  expanded: group.querySelector(".card-grid") !== null,
  cards: [...group.querySelectorAll("card-view .tag")].map(tag => tag.getAttribute("title")),
}}));
const scalars = doc => deepAll(doc, "tf-category-paginated-view").map(view => ({{
  title: view.category.name,
  expanded: view.opened,
  cards: [...new Set(view.category.items.map(item => item.tag))],
}}));
function hparams(doc) {{
  const grid = deepAll(doc, "vaadin-grid.session-group-table")[0];
  const cell = slot => grid.querySelector(`vaadin-grid-cell-content[slot="${{slot.name}}"]`);
  const rows = part => [...grid.shadowRoot.querySelectorAll(part + " tr")]
    .map(tr => [...tr.querySelectorAll("slot")].map(slot => (cell(slot)?.innerText ?? "").trim()))
    .filter(cells => cells.some(Boolean));
  return {{header: rows("thead")[0], rows: rows("tbody")}};
}}
setTimeout(() => {{
  const seen = {{
    timeseries: timeSeries(frame("timeseries")),
    scalars: scalars(frame("scalars")),
    hparams: hparams(frame("hparams")),
  }};
  document.getElementById("seen").textContent = JSON.stringify(seen);
}}, 20000);
</script></body></html>"""


@pytest.fixture(scope="module")
def seen(tmp_path_factory, time_machine) -> dict:
    """What the Time Series, Scalars and HParams tabs show (see the module's docstring)."""
    logdir = make_logdir(tmp_path_factory.mktemp("tensorboard"), time_machine.parent)
    log = tmp_path_factory.mktemp("server") / "tensorboard.log"
    with (
        tensorboard_server(logdir, log) as tensorboard,
        serving(SEEN.format(tensorboard=tensorboard)) as page,
    ):
        browser = [
            *(CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic"),
            *("--no-first-run", "--disable-background-networking", "--disable-component-update"),
            *("--disable-sync", "--disable-web-security", "--disable-site-isolation-trials"),
            f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
            *("--virtual-time-budget=30000", "--dump-dom", page),
        ]
        dom = subprocess.run(
            browser, capture_output=True, text=True, timeout=180, check=True
        ).stdout
    match = re.search(r'<pre id="seen">(.+?)</pre>', dom, re.DOTALL)
    assert match, f"the page wrote nothing; tensorboard's log:\n{log.read_text()[-2000:]}"
    return json.loads(html.unescape(match[1]))


@contextmanager
def serving(page: str):
    """`with serving(page) as url:` the HTML `page` at `url`, on a free port of 127.0.0.1."""
    body = page.encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("tab", ["timeseries", "scalars"])
def test_the_two_expanded_groups_are_the_train_and_val_curves(seen, tab):
    groups = [group for group in seen[tab] if group["title"]]  # Scalars' "" is its tag filter
    assert [(group["title"], group["expanded"]) for group in groups] == [
        ("train", True),
        ("val", True),
        ("weights", False),
    ]
    train = groups[0]["cards"]
    assert train[:3] == ["train/loss", "train/lr", "train/ppl"]  # the loss comes first


def test_hparams_columns_are_the_choices_that_differ_and_the_trials_their_own_names(seen):
    table = seen["hparams"]
    header = table["header"]
    assert header[:2] == ["Trial ID", "Show Metrics"]
    assert {"model", "optimizer"} <= set(header)
    assert not [column for column in header if re.search(r"dir|path|_target_|root|url", column)]
    assert not [cell for row in table["rows"] for cell in row if "/" in cell]  # no path anywhere
    trials = sorted(row[0].split(" (")[0] for row in table["rows"])
    assert [trial for trial in trials if "=" in trial] == [
        "0_model=linear,optimizer=sgd",
        "1_model=linear,optimizer=adam",
        "2_model=mlp,optimizer=sgd",
        "3_model=mlp,optimizer=adam",
    ]
    assert len(trials) == 6 and all(not trial.startswith(("multirun", "runs")) for trial in trials)
