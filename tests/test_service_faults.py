"""`picaffect serve` tried as a hostile but fair client would (issue 19): each reproduction, now refused.

Connection-level tries run against a real uvicorn server (``service.server.make_server``)
on a loopback port in a thread, with short limits, and speak raw sockets; request-level
tries go through FastAPI's test client.
"""
from __future__ import annotations

import io
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import SlowPredictor

pytest.importorskip("fastapi", reason="the 'serve' extra (fastapi) is not installed")
pytest.importorskip("uvicorn", reason="the 'serve' extra (uvicorn) is not installed")
with warnings.catch_warnings():  # Starlette's notice that its test client will move to httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

from picaffect import Predictor  # noqa: E402
from picaffect.data.images import ImageProblem, load_square  # noqa: E402
from picaffect.service import Settings, create_app  # noqa: E402
from picaffect.service.server import make_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n"
       b"0 0 moveto 8 8 lineto stroke showpage\n%%EOF\n")


@pytest.fixture(scope="module")
def predictor():
    return Predictor.from_pretrained("default", device="cpu")


def jpeg(size=(64, 48), seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3)).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG")
    return out.getvalue()


def multipart(*parts: tuple[str, bytes], boundary: str = "b0undary", close: bool = True) -> bytes:
    body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
                    f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"
                    for name, data in parts)
    return body + (f"--{boundary}--\r\n".encode() if close else b"")


class LiveServer:
    """``make_server`` on a free loopback port, in a thread, for as long as a ``with`` block."""

    def __init__(self, app, settings: Settings) -> None:
        self.server = make_server(app, settings, "127.0.0.1", 0, log_level="warning")
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                pytest.fail("the server did not start within 60 s")
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)


def until_closed(sock: socket.socket, limit: float, drip: bytes = b"", every: float = 0.05) -> tuple[bytes, float]:
    """Read (sending ``drip`` a byte every ``every`` s meanwhile) until the server closes the connection;
    (what it sent, seconds it took). Fails when the connection is still open after ``limit`` seconds."""
    start = time.monotonic()
    received, pending, next_byte = b"", drip, start
    while time.monotonic() - start < limit:
        now = time.monotonic()
        if pending and now >= next_byte:
            try:
                sock.sendall(pending[:1])
            except OSError:  # reset by the server
                return received, time.monotonic() - start
            pending, next_byte = pending[1:], now + every
        readable, _, _ = select.select([sock], [], [], 0.02)
        if readable:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return received, time.monotonic() - start
            if not chunk:
                return received, time.monotonic() - start
            received += chunk
    pytest.fail(f"the connection was still open after {limit} s (received {received[:80]!r})")


def test_idle_and_dripping_connections_are_closed(predictor):
    """Issue 19.1: a socket that sends nothing, headers a byte at a time, an idle keep-alive, a dripping body."""
    settings = Settings(header_timeout_s=0.6, keep_alive_s=0.6, timeout_s=1.0)
    with LiveServer(create_app(predictor, settings), settings) as live:
        idle = [live.connect() for _ in range(20)]
        for sock in idle:
            received, seconds = until_closed(sock, 6)
            assert received == b""
        # request headers one byte at a time: 408, and closed, though bytes kept coming
        sock = live.connect()
        received, seconds = until_closed(sock, 6, drip=b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 500)
        assert received.startswith(b"HTTP/1.1 408") and b"headers" in received and seconds < 4
        # an idle keep-alive connection after an answered request
        sock = live.connect()
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        received, seconds = until_closed(sock, 6)
        assert received.startswith(b"HTTP/1.1 200") and b'"status":"ok"' in received
        # a body a byte at a time to a route that never reads it, and to one that does (the app answers 408)
        for path, status in (("/v1/health", b"405"), ("/v1/predict", b"408")):
            sock = live.connect()
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=zz\r\n"
                         f"Content-Length: 100000\r\n\r\n".encode())
            received, seconds = until_closed(sock, 8, drip=b"--zz\r\n" + b"x" * 5000, every=0.05)
            assert received.startswith(b"HTTP/1.1 " + status), received[:60]
            assert seconds < 5  # the body deadline: timeout_s plus a second's grace


def test_connections_over_the_cap_are_refused(predictor):
    settings = Settings(max_connections=3, header_timeout_s=30, retry_after_s=4)
    with LiveServer(create_app(predictor, settings), settings) as live:
        held = [live.connect() for _ in range(3)]
        time.sleep(0.2)
        extra = live.connect()
        received, _ = until_closed(extra, 5)
        assert received.startswith(b"HTTP/1.1 503") and b"retry-after: 4" in received.lower()
        for sock in held:
            sock.close()
        time.sleep(0.3)
        sock = live.connect()
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        received, _ = until_closed(sock, 5)
        assert received.startswith(b"HTTP/1.1 200")


def test_a_content_length_shorter_than_the_body_is_a_broken_request(predictor):
    """Issue 19.3 over a real connection: the server reads Content-Length bytes, and they are not a whole body."""
    settings = Settings()
    body = multipart(("a.jpg", jpeg()))
    with LiveServer(create_app(predictor, settings), settings) as live:
        sock = live.connect()
        sock.sendall(f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     f"Content-Type: multipart/form-data; boundary=b0undary\r\n"
                     f"Content-Length: {len(body) - 40}\r\n\r\n".encode() + body)
        received, _ = until_closed(sock, 30)
        assert received.startswith(b"HTTP/1.1 400") and b"broken_request" in received


def test_cut_off_multipart_bodies_are_400(predictor):
    """Issue 19.3: no closing boundary, and a part that stops after its headers."""
    headers = {"content-type": "multipart/form-data; boundary=b0undary"}
    with TestClient(create_app(predictor, Settings())) as c:
        whole = multipart(("a.jpg", jpeg()), ("b.jpg", jpeg(seed=1)))
        assert c.post("/v1/predict", content=whole, headers=headers).status_code == 200
        r = c.post("/v1/predict", content=multipart(("a.jpg", jpeg()), close=False), headers=headers)
        assert r.status_code == 400 and r.json()["code"] == "broken_request" and "closing boundary" in r.json()["error"]
        head_only = multipart(("a.jpg", jpeg()), close=False) + \
            b"--b0undary\r\nContent-Disposition: form-data; name=\"files\"; filename=\"b.jpg\"\r\n\r\n"
        r = c.post("/v1/predict", content=head_only, headers=headers)
        assert r.status_code == 400 and r.json()["code"] == "broken_request"
        r = c.post("/v1/predict", content=whole[: len(whole) // 2], headers=headers)
        assert r.status_code == 400 and r.json()["code"] == "broken_request"
        assert c.get("/v1/health").json()["upload_bytes_held"] == 0


def test_eps_and_other_formats_are_refused_without_being_opened(predictor, tmp_path, monkeypatch):
    """Issue 19.2: Pillow would hand an EPS upload to Ghostscript; now no refused reader is ever asked."""
    from PIL import EpsImagePlugin

    def never(*args, **kwargs):
        raise AssertionError("an upload reached a reader of a format that is not accepted")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", never)
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", never)
    ico = io.BytesIO()
    Image.new("RGB", (16, 16), (9, 9, 9)).save(ico, "ICO")
    with TestClient(create_app(predictor, Settings())) as c:
        r = c.post("/v1/predict", files=[("files", ("x.eps", EPS, "application/postscript")),
                                         ("files", ("y.ico", ico.getvalue(), "image/x-icon")),
                                         ("files", ("ok.jpg", jpeg(), "image/jpeg"))])
    assert r.status_code == 200
    rows = r.json()["predictions"]
    assert rows[0]["error"].startswith("format not accepted: EPS") and "JPEG, PNG" in rows[0]["error"]
    assert rows[1]["error"].startswith("format not accepted: ICO") and rows[2]["error"] is None
    (tmp_path / "x.jpg").write_bytes(EPS)  # the predict path: the same refusal, whatever the name says
    with pytest.raises(ImageProblem, match="format not accepted: EPS"):
        load_square(tmp_path / "x.jpg", 32)
    run = predictor.predict_files([tmp_path / "x.jpg"])
    assert run.rows[0]["error"].startswith("format not accepted: EPS")


@pytest.mark.parametrize("fmt, kwargs", [("JPEG", {}), ("PNG", {}), ("WEBP", {}), ("GIF", {}), ("BMP", {}),
                                         ("TIFF", {"compression": "tiff_lzw"}), ("MPO", {})])
def test_the_accepted_formats_still_decode(tmp_path, fmt, kwargs):
    im = Image.new("RGB", (40, 30), (200, 30, 30))
    path = tmp_path / f"p.{fmt.lower()}"
    if fmt == "MPO":  # a phone's multi-picture JPEG
        im.save(path, "MPO", save_all=True, append_images=[Image.new("RGB", (40, 30), (0, 0, 255))])
    else:
        im.save(path, fmt, **kwargs)
    arr = load_square(path, 16)
    assert arr.shape == (16, 16, 3) and arr[..., 0].mean() > 150 and arr[..., 2].mean() < 80


@pytest.mark.parametrize("scale", ["-1e308,1e308", "0,1e300", "nan,1", "1,inf", "-2e6,0"])
def test_extreme_scales_are_400(predictor, scale):
    """Issue 19.6: ends far outside any rating scale came back as null or as 4e299."""
    with TestClient(create_app(predictor, Settings())) as c:
        r = c.post(f"/v1/predict?scale={scale}", files=[("files", ("a.jpg", jpeg(), "image/jpeg"))])
        assert r.status_code == 400 and r.json()["code"] == "bad_scale", r.json()
        r = c.post("/v1/predict?scale=-100,100", files=[("files", ("a.jpg", jpeg(), "image/jpeg"))])
        assert r.status_code == 200 and -100 <= r.json()["predictions"][0]["valence_scaled"] <= 100


def test_requests_whose_client_left_are_not_scored(predictor):
    """Issue 19.4: clients that gave up after 0.15 s still had their pictures scored."""
    import httpx

    slow = SlowPredictor(predictor, 3.0, {"valence_low": 4.0, "valence_high": 6.0})
    settings = Settings(batch_wait_ms=0)
    with LiveServer(create_app(slow, settings), settings) as live:
        base = f"http://127.0.0.1:{live.port}"
        first: list = []
        keeper = threading.Thread(target=lambda: first.append(httpx.post(
            base + "/v1/predict", files=[("files", ("a.jpg", jpeg(), "image/jpeg"))], timeout=60)))
        keeper.start()
        while not slow.batches:  # the model is busy with the first picture
            time.sleep(0.01)
        gave_up: list = []

        def impatient() -> None:
            files = [("files", (f"p{j}.jpg", jpeg(seed=j), "image/jpeg")) for j in range(8)]
            try:
                httpx.post(base + "/v1/predict", files=files, timeout=0.15)
            except httpx.TimeoutException:
                gave_up.append(True)

        clients = [threading.Thread(target=impatient) for _ in range(6)]
        for t in clients:
            t.start()
        for t in clients:
            t.join(30)
        assert len(gave_up) == 6
        keeper.join(60)
        time.sleep(2 * slow.delay)  # whatever was still queued would be scored by now
        health = httpx.get(base + "/v1/health").json()
    assert first[0].status_code == 200
    row = first[0].json()["predictions"][0]
    assert row["valence_low"] == 4.0 and row["valence_high"] == 6.0  # new keys of the predictor's rows pass through
    assert slow.batches == [1] and health["scored"] == 1
    assert health["abandoned"] == 6 and health["requests_in_progress"] == 0 and health["queue"] == 0


def test_sigterm_drains_and_exits_0(tmp_path):
    """Issue 19.9: uvicorn re-raised SIGTERM after its graceful shutdown: exit status 143."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    server = subprocess.Popen([sys.executable, "-m", "picaffect", "serve", "--port", str(port), "--device", "cpu"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the server did not start: {server.stderr.read().decode()[-2000:]}")
                time.sleep(0.2)
        body = multipart(("a.jpg", jpeg()))
        sock.sendall(f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                     f"boundary=b0undary\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body[:100])
        time.sleep(0.5)
        server.send_signal(signal.SIGTERM)  # a request is half in: it is still answered
        time.sleep(0.5)
        sock.sendall(body[100:])
        received, _ = until_closed(sock, 60)
        assert received.startswith(b"HTTP/1.1 200") and b'"valence":' in received
        assert server.wait(60) == 0
        assert "stopped by SIGTERM" in server.stderr.read().decode()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def resident_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the resident size from /proc (Linux)")
def test_memory_returns_near_idle_after_load(predictor):
    """Issue 19.7: the server stayed at its peak size (onnxruntime's arena, the heap's free pages) after a burst."""
    import httpx

    from picaffect.app.cli import needs_allocator

    assert not needs_allocator(["serve"])  # the launcher's keep-all-freed-memory setting is for torch only
    settings = Settings(batch_wait_ms=300)
    with LiveServer(create_app(predictor, settings), settings) as live:
        url = f"http://127.0.0.1:{live.port}/v1/predict"
        files = [("files", (f"p{j}.jpg", jpeg(seed=j), "image/jpeg")) for j in range(8)]
        assert httpx.post(url, files=files[:1], timeout=120).status_code == 200
        time.sleep(3)
        idle = resident_mb()
        answers: list[int] = []
        burst = [threading.Thread(target=lambda: answers.append(httpx.post(url, files=files, timeout=300).status_code))
                 for _ in range(4)]
        for t in burst:
            t.start()
        for t in burst:
            t.join(300)
        peak = resident_mb()
        deadline = time.monotonic() + 20
        while resident_mb() - idle > 0.25 * (peak - idle) and time.monotonic() < deadline:
            time.sleep(0.25)
        after = resident_mb()
    assert answers == [200] * 4
    assert peak - idle > 100, (idle, peak)  # the burst did take memory: a batch of 32 pictures
    assert after - idle <= 0.25 * (peak - idle), f"idle {idle:.0f} MB, peak {peak:.0f} MB, after {after:.0f} MB"
