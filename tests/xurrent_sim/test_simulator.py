"""The simulator as a program: stand-alone, strict about its options, safe on keep-alive."""

from __future__ import annotations

import ast
import socket
import subprocess
import sys
from pathlib import Path

import xurrent_sim
from xurrent_sim.testing import ROOT

PROJECT_APPS = {"nodes", "connections", "invitations", "xurrent", "sync", "exalate_site", "tests"}


def test_the_simulator_imports_neither_django_nor_the_project():
    imported = set()
    for path in Path(xurrent_sim.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    assert not imported & (PROJECT_APPS | {"django", "rest_framework"})
    outside = imported - set(sys.stdlib_module_names) - {"xurrent_sim"}
    assert outside == {"jwt"}  # PyJWT, only with --webhook-key


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "xurrent_sim", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_data_file_that_is_not_json_stops_the_start_with_a_message(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    result = run(
        "--port", "0", "--account", "a", "--token", "t", "--data", str(tmp_path / "bad.json")
    )
    assert result.returncode == 2
    assert "cannot load" in result.stderr


def test_a_webhook_key_that_is_not_an_rsa_key_stops_the_start(tmp_path):
    (tmp_path / "key.pem").write_text("not a key")
    result = run(
        "--port", "0", "--account", "a", "--token", "t", "--webhook-key", str(tmp_path / "key.pem")
    )
    assert result.returncode == 2
    assert "RSA private key" in result.stderr


def test_the_token_and_account_are_required():
    result = run("--port", "0")
    assert result.returncode == 2
    assert "--account" in result.stderr


def raw_exchange(sim, requests: bytes) -> bytes:
    host, port = sim.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(requests)
        received = b""
        while received.count(b"HTTP/1.1 ") < 2:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def test_a_refused_call_with_a_body_leaves_the_keep_alive_connection_usable(sim):
    body = b'{"subject": "x"}'
    refused = (
        b"POST /v1/requests HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    listed = (
        b"GET /v1/requests HTTP/1.1\r\nHost: sim\r\n"
        b"Authorization: Bearer " + sim.token.encode() + b"\r\n"
        b"X-Xurrent-Account: " + sim.account.encode() + b"\r\n\r\n"
    )
    answers = raw_exchange(sim, refused + listed)
    assert answers.startswith(b"HTTP/1.1 401")
    assert b"HTTP/1.1 200" in answers


def test_an_unencoded_plus_in_a_time_filter_is_read_as_an_offset(api):
    answer = api.get("/requests?updated_at=>=2020-01-01T10:00:00+02:00")
    assert answer.status_code == 200
