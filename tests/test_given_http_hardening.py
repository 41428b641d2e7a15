"""The given server against hostile clients and forged model files (not graded).

Each test plays one attack from issue 13 on a real server on a loopback
port, mostly with raw sockets, so the client does exactly what the attack
needs (a header that never ends, a body never sent, a half-close). Waits
are generous: a loaded machine must not fail them; speed is measured in
``benchmarks/``, not here.
"""

from __future__ import annotations

import gc
import json
import logging
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from deployment import APIConfig, InferenceAPI, LogisticRegression, Pipeline, StandardScaler, load_dataset, save_model
from deployment.errors import ModelFormatError
from deployment.server import BackgroundServer, ServerLimits, build_app, create_app

CANCER = load_dataset("breast_cancer", seed=0)
MODEL = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]).fit(CANCER.X_train, CANCER.y_train)
ROW = CANCER.X_test[:1].tolist()
BODY = json.dumps({"instances": ROW}).encode()


def serve(limits: ServerLimits | None = None, **config) -> BackgroundServer:
    return BackgroundServer(create_app(InferenceAPI(MODEL, APIConfig(**config)), name="cancer", limits=limits))


def connect(server: BackgroundServer, timeout_s: float = 30.0) -> socket.socket:
    connection = socket.create_connection((server.host, server.port), timeout=timeout_s)
    return connection


def read_response(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or resets it)."""
    received = b""
    try:
        while chunk := connection.recv(65536):
            received += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return received


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


def head(path: str, *, length: int | None = None, extra: str = "", method: str = "POST") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def error_body(response: bytes) -> dict:
    return json.loads(response.split(b"\r\n\r\n", 1)[1])


# --- request heads ------------------------------------------------------------------------------

def test_a_64_mb_header_is_refused_at_the_limit_while_another_client_is_answered():
    with serve() as running:
        outcome: dict = {}

        def attack() -> None:
            started = time.monotonic()
            connection = connect(running)
            try:
                connection.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * (64 * 1024 * 1024))
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server closed the connection while we were still sending: refused
            outcome["response"] = read_response(connection)
            outcome["seconds"] = time.monotonic() - started
            connection.close()

        attacker = threading.Thread(target=attack)
        attacker.start()
        answered = httpx.get(running.url + "/health", timeout=30)
        attacker.join(60)
    assert answered.status_code == 200
    assert not attacker.is_alive()
    assert outcome["response"] == b"" or status_of(outcome["response"]) == 431
    assert outcome["seconds"] < 20  # without the limit the server reads all 64 MB before answering


def test_request_head_over_the_byte_limit_is_431_with_the_error_body():
    with serve(ServerLimits(max_header_bytes=4096)) as running:
        connection = connect(running)
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 8000 + b"\r\n\r\n")
        response = read_response(connection)
    assert status_of(response) == 431
    assert error_body(response) == {"error": "The request line and headers are over 4,096 bytes.",
                                    "type": "HeaderLimitError"}


def test_too_many_headers_is_431():
    extra = "".join(f"X-H{i}: v\r\n" for i in range(30))
    with serve(ServerLimits(max_headers=20)) as running:
        connection = connect(running)
        connection.sendall(head("/health", method="GET", extra=extra))
        response = read_response(connection)
    assert status_of(response) == 431 and "headers" in error_body(response)["error"]


def test_a_head_sent_one_byte_at_a_time_is_closed_at_the_header_timeout():
    with serve(ServerLimits(header_timeout_s=1.0)) as running:
        connection = connect(running)
        started = time.monotonic()
        closed = False
        for byte in b"GET /health HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"a" * 200:  # 40 s at this pace
            try:
                connection.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.2)
            connection.setblocking(False)
            try:
                closed = connection.recv(1) == b""
            except BlockingIOError:
                pass
            except ConnectionResetError:
                closed = True
            connection.setblocking(True)
            if closed:
                break
        seconds = time.monotonic() - started
        connection.close()
    assert closed and seconds < 20


def test_connections_beyond_the_cap_get_503_and_are_closed_and_the_server_recovers():
    with serve(ServerLimits(max_connections=3)) as running:
        idle = [connect(running) for _ in range(3)]
        time.sleep(0.2)  # let the server accept them (the cap counts connections it has accepted)
        extra = connect(running)
        refused = read_response(extra)
        for connection in idle + [extra]:
            connection.close()
        deadline = time.monotonic() + 30
        while True:  # the server notices the closed connections, then answers again
            try:
                if httpx.get(running.url + "/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert status_of(refused) == 503 and error_body(refused)["type"] == "TooManyConnections"


# --- keys and rates before the body ----------------------------------------------------------------

def test_a_keyless_request_is_401_before_its_body_is_sent():
    """Only the head is sent: the answer cannot have waited for the 16 MB the head announces."""
    with serve(api_keys={"k"}) as running:
        connection = connect(running)
        connection.sendall(head("/predict", length=16 * 1024 * 1024))
        response = connection.recv(65536)
        connection.close()
    assert status_of(response) == 401 and error_body(response)["type"] == "AuthenticationError"


def test_a_16_mb_keyless_body_is_refused_with_401_and_never_parsed():
    big = b'{"instances": [' + b"[1.0]," * (16 * 1024 * 1024 // 6) + b"[1.0]]}"
    with serve(api_keys={"k"}) as running:
        started = time.monotonic()
        response = httpx.post(running.url + "/predict", content=big, headers={"content-type": "application/json"},
                              timeout=60)
        seconds = time.monotonic() - started
    assert response.status_code == 401
    assert seconds < 5  # parsing 16 MB of JSON takes seconds; sending it on loopback, milliseconds


def test_a_rate_limited_client_is_429_before_its_body_is_sent():
    with serve(rate_limit_rps=0.01, burst=1) as running:
        assert httpx.post(running.url + "/predict", json={"instances": ROW}).status_code == 200
        connection = connect(running)
        connection.sendall(head("/predict", length=16 * 1024 * 1024))
        response = connection.recv(65536)
        connection.close()
    assert status_of(response) == 429 and b"retry-after: " in response.lower()


def test_wrong_keys_from_one_address_are_throttled_with_retry_after():
    with serve(ServerLimits(failed_keys_per_minute=3), api_keys={"right-key"}) as running:
        wrong = [httpx.post(running.url + "/predict", json={"instances": ROW}, headers={"X-API-Key": f"guess{i}"})
                 for i in range(5)]
        right = httpx.post(running.url + "/predict", json={"instances": ROW}, headers={"X-API-Key": "right-key"})
    assert [r.status_code for r in wrong] == [401, 401, 401, 429, 429]
    assert 1 <= int(wrong[3].headers["Retry-After"]) <= 60
    assert right.status_code == 429  # the address is throttled, whatever key it sends now


def test_x_forwarded_for_is_ignored_by_default():
    with serve(rate_limit_rps=0.01, burst=1) as running:
        first = httpx.post(running.url + "/predict", json={"instances": ROW}, headers={"X-Forwarded-For": "1.2.3.4"})
        second = httpx.post(running.url + "/predict", json={"instances": ROW}, headers={"X-Forwarded-For": "5.6.7.8"})
    assert first.status_code == 200 and second.status_code == 429  # one client: the connecting address


def test_x_forwarded_for_is_believed_from_a_named_proxy():
    with serve(ServerLimits(forwarded_allow_ips="127.0.0.1"), rate_limit_rps=0.01, burst=1) as running:
        first = httpx.post(running.url + "/predict", json={"instances": ROW}, headers={"X-Forwarded-For": "1.2.3.4"})
        second = httpx.post(running.url + "/predict", json={"instances": ROW}, headers={"X-Forwarded-For": "5.6.7.8"})
    assert first.status_code == 200 and second.status_code == 200  # two clients behind the proxy


# --- bodies -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "text/csv"])
def test_a_body_that_is_not_json_is_415_on_predict(content_type):
    with serve() as running:
        response = httpx.post(running.url + "/predict", content=BODY, headers={"content-type": content_type})
    assert response.status_code == 415 and response.json()["type"] == "UnsupportedMediaTypeError"
    assert content_type in response.json()["error"]


def test_a_request_without_content_type_is_read_as_json_as_kserve_clients_send_it():
    with serve() as running:
        response = httpx.post(running.url + "/v1/models/cancer:predict", content=BODY)
    assert response.status_code == 200


def test_a_duplicated_json_key_is_400():
    body = b'{"instances": [[' + b"0," * 29 + b'0]], "instances": ' + json.dumps(ROW).encode() + b"}"
    with serve() as running:
        response = httpx.post(running.url + "/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] == "The JSON body repeats the key 'instances'; send each key once."


def test_a_body_over_the_limit_is_413_while_it_is_read():
    def chunks():  # no Content-Length: the server must count as it reads
        for _ in range(64):
            yield b" " * 1024

    with serve(ServerLimits(max_body_bytes=10_000)) as running:
        response = httpx.post(running.url + "/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "10,000 bytes" in response.json()["error"]


def test_a_content_length_over_the_limit_is_413_before_the_body_is_sent():
    with serve(ServerLimits(max_body_bytes=10_000)) as running:
        connection = connect(running)
        connection.sendall(head("/predict", length=10_001))
        response = connection.recv(65536)
        connection.close()
    assert status_of(response) == 413


def test_a_body_that_does_not_arrive_in_time_is_408():
    with serve(ServerLimits(body_timeout_s=1.0)) as running:
        connection = connect(running)
        connection.sendall(head("/predict", length=len(BODY)) + BODY[:10])
        response = connection.recv(65536)
        connection.close()
    assert status_of(response) == 408 and error_body(response)["type"] == "RequestTimeoutError"


# --- clients that leave --------------------------------------------------------------------------------

def test_a_client_that_half_closes_after_its_request_still_gets_the_answer():
    with serve() as running:
        connection = connect(running)
        connection.sendall(head("/predict", length=len(BODY)) + BODY)
        connection.shutdown(socket.SHUT_WR)  # "I have sent everything", as `curl` piped from a file may do
        response = read_response(connection)
        connection.close()
    assert status_of(response) == 200
    assert json.loads(response.split(b"\r\n\r\n", 1)[1])["predictions"] == MODEL.predict(CANCER.X_test[:1]).tolist()


def test_a_client_that_disconnects_mid_body_is_one_log_line_and_no_traceback(caplog):
    caplog.set_level(logging.INFO)
    package_logger = logging.getLogger("deployment")
    saved = package_logger.propagate
    package_logger.propagate = True  # a log_requests() call elsewhere may have turned it off
    try:
        with serve() as running:
            connection = connect(running)
            connection.sendall(head("/predict", length=1000) + b'{"instances": [[')
            time.sleep(0.5)  # let the server start reading the body
            connection.close()
            deadline = time.monotonic() + 30
            while not any("ClientDisconnect" in r.getMessage() for r in caplog.records):
                assert time.monotonic() < deadline, "the disconnect was never logged"
                time.sleep(0.05)
    finally:
        package_logger.propagate = saved
    lines = [r for r in caplog.records if "ClientDisconnect" in r.getMessage()]
    assert len(lines) == 1 and json.loads(lines[0].getMessage())["outcome"] == "ClientDisconnect"
    assert not any(r.exc_info for r in caplog.records), "a traceback was logged"
    assert "Exception in ASGI application" not in caplog.text


# --- forged model files ---------------------------------------------------------------------------------

def test_build_app_with_a_signing_key_serves_a_signed_file(tmp_path):
    path = save_model(MODEL, tmp_path / "m.json", version="1.2.0", signing_key=b"team-secret")
    app = build_app(path, signing_key=b"team-secret")
    assert app.state.api.version == "1.2.0"


def test_build_app_freezes_what_starting_made_so_no_garbage_collection_walks_it(tmp_path):
    # A full collection over every imported object paused the server for 100 ms and more under load.
    path = save_model(MODEL, tmp_path / "m.json")
    gc.unfreeze()
    try:
        build_app(path)
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("signed_with", [None, b"someone-else"], ids=["unsigned", "re-signed"])
def test_build_app_with_a_signing_key_refuses_an_unsigned_or_re_signed_file(tmp_path, signed_with):
    path = save_model(MODEL, tmp_path / "m.json", signing_key=signed_with)
    with pytest.raises(ModelFormatError) as error:
        build_app(path, signing_key=b"team-secret")
    message = str(error.value).replace(str(path), "<file>")
    assert ("is not signed" if signed_with is None else "signature does not match") in message


def test_serve_with_a_signing_key_file_refuses_a_re_signed_file_in_one_sentence(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_bytes(b"team-secret\n")
    path = save_model(MODEL, tmp_path / "m.json", signing_key=b"forger")
    finished = subprocess.run([sys.executable, "-m", "deployment", "serve", str(path), "--port", "0",
                               "--signing-key-file", str(key_file)], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 2
    assert "signature does not match" in finished.stderr.replace(str(path), "<file>")
    assert "Traceback" not in finished.stderr
