"""How the tests find The Time Machine (helpers/corpus.py, conftest.py): as a user's run does,
downloading into an empty cache once, and failing in one line where the text cannot be had."""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading

import pytest

from helpers.corpus import CorpusUnavailable, time_machine_file
from helpers.runs import ROOT

TEXT = b"the time machine, by h. g. wells\n" * 40


@pytest.fixture
def server():
    """A file server on 127.0.0.1 for `/timemachine.txt` (TEXT); `.requests` counts its GETs."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            served.requests += 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(TEXT)))
            self.end_headers()
            self.wfile.write(TEXT)

        def log_message(self, *args):
            pass

    served = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    served.requests = 0
    served.url = f"http://127.0.0.1:{served.server_address[1]}/timemachine.txt"
    thread = threading.Thread(target=served.serve_forever, daemon=True)
    thread.start()
    yield served
    served.shutdown()
    served.server_close()


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/timemachine.txt"  # nobody listens: refused at once


def test_an_empty_cache_downloads_once_through_the_project_download(tmp_path, server, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # HANDGRAD_DATA unset: ~/.cache/handgrad
    sha1 = hashlib.sha1(TEXT).hexdigest()
    path = time_machine_file({}, url=server.url, sha1=sha1)
    assert path == tmp_path / ".cache" / "handgrad" / "timemachine.txt"
    assert path.read_bytes() == TEXT and server.requests == 1
    assert time_machine_file({}, url=server.url, sha1=sha1) == path
    assert server.requests == 1, "a cached text is not downloaded again"


def test_handgrad_data_wins_and_a_file_there_is_read_not_downloaded(tmp_path, server):
    (tmp_path / "timemachine.txt").write_bytes(TEXT)
    environ = {"HANDGRAD_DATA": str(tmp_path)}
    path = time_machine_file(environ, url=server.url, sha1=hashlib.sha1(TEXT).hexdigest())
    assert path == tmp_path / "timemachine.txt" and server.requests == 0


def test_a_wrong_file_in_the_data_dir_is_one_line_naming_it(tmp_path, server):
    (tmp_path / "timemachine.txt").write_bytes(b"not the book")
    with pytest.raises(CorpusUnavailable) as info:
        time_machine_file({"HANDGRAD_DATA": str(tmp_path)}, url=server.url, sha1="0" * 40)
    assert "\n" not in str(info.value) and "has sha1" in str(info.value)


def test_no_file_and_no_network_is_one_line_saying_where_to_put_it(tmp_path):
    with pytest.raises(CorpusUnavailable) as info:
        time_machine_file({"HANDGRAD_DATA": str(tmp_path / "empty")}, url=closed_port_url())
    message = str(info.value)
    assert "\n" not in message
    assert f"put timemachine.txt in {tmp_path / 'empty'}" in message
    assert "HANDGRAD_DATA=<dir holding timemachine.txt>" in message


def test_a_session_without_the_text_fails_its_corpus_tests_in_one_line_and_runs_the_rest(
    tmp_path,
):
    """pytest as a bare clone meets it offline: HANDGRAD_DATA unset, an empty cache, no network
    (a proxy nobody listens on). The corpus tests fail with the line, the others pass."""
    environ = {k: v for k, v in os.environ.items() if k != "HANDGRAD_DATA"}
    offline = closed_port_url().rsplit("/", 1)[0]
    environ |= {"HOME": str(tmp_path), "http_proxy": offline, "HTTP_PROXY": offline}
    module = "tests/data/test_timemachine.py"
    cases = [
        f"{module}::test_book_facts_match_d2l",
        f"{module}::test_chars_tokenizer_keeps_every_character_of_the_book",
    ]
    cases.append(f"{module}::test_vocab_is_d2l_sorted_round_trips_and_maps_unknowns")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-rE", *cases],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout[-3000:]
    assert "1 passed, 2 errors" in result.stdout, result.stdout[-3000:]
    line = f"put timemachine.txt in {tmp_path / '.cache' / 'handgrad'}, or set HANDGRAD_DATA="
    assert result.stdout.count(line) >= 2, result.stdout[-3000:]
    assert not (tmp_path / ".cache" / "handgrad" / "timemachine.txt").exists()
