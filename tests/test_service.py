"""`picaffect serve`: the REST API through FastAPI's test client, every limit and error, auth, the CLI."""
from __future__ import annotations

import asyncio
import io
import json
import re
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import SlowPredictor

pytest.importorskip("fastapi", reason="the 'serve' extra (fastapi) is not installed")
pytest.importorskip("python_multipart", reason="the 'serve' extra (python-multipart) is not installed")
with warnings.catch_warnings():  # Starlette's notice that its test client will move to httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

from picaffect import Predictor  # noqa: E402
from picaffect.app.cli import main  # noqa: E402
from picaffect.core.errors import UsageError  # noqa: E402
from picaffect.service import Settings, create_app  # noqa: E402
from picaffect.service.batching import MicroBatcher, Saturated  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def predictor():
    return Predictor.from_pretrained("default", device="cpu")


def picture_bytes(fmt: str = "JPEG", size=(160, 120), seed: int = 0) -> bytes:
    """A picture with some structure (so different pictures score differently)."""
    gen = np.random.default_rng(seed)
    base = gen.integers(0, 256, 3)
    y, x = np.mgrid[0:size[1], 0:size[0]]
    pixels = np.stack([(base[i] + (x if i == 0 else y) * (i + 1)) % 256 for i in range(3)], -1).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt)
    return out.getvalue()


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uploads")
    files = {}
    for name, fmt, seed in (("a.jpg", "JPEG", 1), ("b.png", "PNG", 2), ("c.gif", "GIF", 3), ("d.jpg", "JPEG", 4)):
        (folder / name).write_bytes(picture_bytes(fmt, seed=seed))
        files[name] = folder / name
    return files


def upload(*items: tuple[str, bytes], field: str = "files"):
    return [(field, (name, data, "application/octet-stream")) for name, data in items]


@pytest.fixture(scope="module")
def client(predictor):
    with TestClient(create_app(predictor, Settings())) as c:
        yield c


def test_mixed_uploads_keep_order_and_equal_the_predictor(client, predictor, pictures):
    good = ["a.jpg", "b.png", "c.gif", "d.jpg"]
    parts = [(n, pictures[n].read_bytes()) for n in good[:2]] + [("notes.txt", b"just words")] + \
            [(good[2], pictures[good[2]].read_bytes()), ("broken.jpg", b"\xff\xd8\xff\xe0 truncated"),
             (good[3], pictures[good[3]].read_bytes()), ("empty.png", b"")]
    r = client.post("/v1/predict", files=upload(*parts))
    assert r.status_code == 200
    body = r.json()
    assert body["scale"] == "1..9" and body["model"] == "default" and body["scaled"] is None
    rows = body["predictions"]
    assert [row["name"] for row in rows] == [n for n, _ in parts]
    # the shipped default is calibrated: its rows carry their 90 % intervals
    assert set(rows[0]) == {"name", "valence", "arousal", "quadrant", "error", "valence_low", "valence_high",
                            "arousal_low", "arousal_high"}
    assert rows[0]["valence_low"] <= rows[0]["valence"] <= rows[0]["valence_high"]
    errors = {row["name"]: row["error"] for row in rows if row["error"]}
    assert set(errors) == {"notes.txt", "broken.jpg", "empty.png"}
    assert "not an image" in errors["notes.txt"] and "truncated" in errors["broken.jpg"]
    assert "empty" in errors["empty.png"]
    expected = predictor.predict([pictures[n] for n in good])
    scored = [row for row in rows if not row["error"]]
    for row, want in zip(scored, expected):
        assert row["valence"] == pytest.approx(want["valence"], abs=2e-3)
        assert row["arousal"] == pytest.approx(want["arousal"], abs=2e-3)
        assert row["quadrant"] == want["quadrant"] and 1 <= row["valence"] <= 9
    json.dumps(body, allow_nan=False)


def test_scale_adds_rescaled_values_and_file_field_alias(client, pictures):
    r = client.post("/v1/predict?scale=1,7", files=upload(("a.jpg", pictures["a.jpg"].read_bytes()), field="file"))
    assert r.status_code == 200
    body = r.json()
    row = body["predictions"][0]
    assert body["scaled"] == "1..7"
    assert row["valence_scaled"] == pytest.approx((row["valence"] - 1) * 6 / 8 + 1, abs=1e-3)
    r = client.post("/v1/predict?scale=seven", files=upload(("a.jpg", pictures["a.jpg"].read_bytes())))
    assert r.status_code == 400 and r.json()["code"] == "bad_scale" and "MIN,MAX" in r.json()["error"]


def test_non_pictures_and_non_multipart_are_415(client):
    r = client.post("/v1/predict", files=upload(("a.jpg", b"GIF89a but not really"), ("x.exe", b"MZ\x90\x00")))
    assert r.status_code == 415
    body = r.json()
    assert body["code"] == "no_picture" and [p["name"] for p in body["predictions"]] == ["a.jpg", "x.exe"]
    assert all("not an image" in p["error"] or "corrupt" in p["error"] for p in body["predictions"])
    r = client.post("/v1/predict", content=picture_bytes(), headers={"content-type": "image/jpeg"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["error"]
    r = client.post("/v1/predict", files=[("other", ("a.jpg", picture_bytes(), "image/jpeg"))])
    assert r.status_code == 400 and r.json()["code"] == "no_pictures"


def test_size_and_count_limits_are_413(predictor):
    settings = Settings(max_file_bytes=20_000, max_request_bytes=60_000, max_files=3, max_pixels=100_000)
    small = picture_bytes("JPEG", size=(64, 64))
    with TestClient(create_app(predictor, settings)) as c:
        big = np.random.default_rng(0).integers(0, 256, (100, 100, 3)).astype(np.uint8)
        out = io.BytesIO()
        Image.fromarray(big).save(out, "PNG")
        assert 20_000 < len(out.getvalue()) < 50_000
        r = c.post("/v1/predict", files=upload(("ok.jpg", small), ("big.png", out.getvalue())))
        assert r.status_code == 413 and r.json()["code"] == "file_too_large" and "big.png" in r.json()["error"]
        r = c.post("/v1/predict", files=upload(*[(f"p{i}.jpg", small) for i in range(4)]))
        assert r.status_code == 413 and r.json()["code"] == "too_many_files" and "3" in r.json()["error"]
        # over the request limit: refused by its Content-Length before reading, or while streaming without one
        parts = upload(*[(f"p{i}.bin", b"x" * 19_900) for i in range(3)])
        r = c.post("/v1/predict", files=parts)
        assert r.status_code == 413 and r.json()["code"] == "request_too_large"
        body = b"".join(b"--zz\r\nContent-Disposition: form-data; name=\"files\"; filename=\"p%d.bin\"\r\n\r\n"
                        % i + b"x" * 19_000 + b"\r\n" for i in range(3)) + b"--zz--\r\n"
        assert len(body) < 60_000
        chunked = iter([body[:30_000], body[30_000:], b"y" * 10_000])
        r = c.post("/v1/predict", content=chunked, headers={"content-type": "multipart/form-data; boundary=zz"})
        assert r.status_code == 413 and r.json()["code"] == "request_too_large"
        r = c.post("/v1/predict", content=iter([body]), headers={"content-type": "multipart/form-data; boundary=zz"})
        assert r.status_code == 415  # within every limit, but none of them is a picture
        r = c.post("/v1/predict", content=b"x" * 70_000,
                   headers={"content-type": "multipart/form-data; boundary=zz"})
        assert r.status_code == 413 and r.json()["code"] == "request_too_large"
        # the decompression-bomb guard: a picture declaring more pixels than allowed is refused before decoding
        r = c.post("/v1/predict", files=upload(("ok.jpg", small), ("wide.png", picture_bytes("PNG", (400, 300)))))
        assert r.status_code == 413 and r.json()["code"] == "too_many_pixels" and "400 x 300" in r.json()["error"]
        assert r.json()["error"].startswith("wide.png:")
        # what remains fine is still fine
        assert c.post("/v1/predict", files=upload(("ok.jpg", small))).status_code == 200
        health = c.get("/v1/health").json()
        assert health["queue"] == 0 and health["upload_bytes_held"] == 0 and health["requests_in_progress"] == 0


def test_pillow_bomb_guard_also_applies(predictor, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with TestClient(create_app(predictor, Settings())) as c:
        r = c.post("/v1/predict", files=upload(("big.png", picture_bytes("PNG", (100, 100)))))
    assert r.status_code == 413 and "decompression-bomb" in r.json()["error"]


def test_a_full_queue_is_503_with_retry_after(predictor):
    with TestClient(create_app(predictor, Settings(max_queue=2, retry_after_s=3))) as c:
        r = c.post("/v1/predict", files=upload(*[(f"p{i}.jpg", picture_bytes()) for i in range(3)]))
        assert r.status_code == 503 and r.headers["retry-after"] == "3" and r.json()["code"] == "busy"
        assert c.post("/v1/predict", files=upload(("p.jpg", picture_bytes()), ("q.jpg", picture_bytes()))
                      ).status_code == 200
    with TestClient(create_app(predictor, Settings(max_memory_bytes=1000))) as c:
        r = c.post("/v1/predict", files=upload(("p.jpg", picture_bytes()),))
        assert r.status_code == 503 and "retry-after" in r.headers


def test_scoring_timeout_is_504(predictor):
    slow = SlowPredictor(predictor, 1.0)
    with TestClient(create_app(slow, Settings(timeout_s=0.2))) as c:
        r = c.post("/v1/predict", files=upload(("p.jpg", picture_bytes())))
        assert r.status_code == 504 and r.json()["code"] == "timeout"
        assert c.get("/v1/health").json()["queue"] == 0


def test_a_slow_upload_is_408(predictor):
    app = create_app(predictor, Settings(timeout_s=0.3))
    boundary = "b0undary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode()

    async def run() -> tuple[int, dict]:
        sent: list[dict] = []
        chunks = [head, b"\xff\xd8" * 10]

        async def receive():
            if chunks:
                return {"type": "http.request", "body": chunks.pop(0), "more_body": True}
            await asyncio.sleep(2)  # the client stalls
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/v1/predict", "raw_path": b"/v1/predict", "query_string": b"",
                 "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
                 "headers": [(b"content-type", f"multipart/form-data; boundary={boundary}".encode())]}
        await app(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return start["status"], json.loads(body)

    with TestClient(app) as c:  # the lifespan starts the batcher
        status, body = asyncio.run(run())
        assert status == 408 and body["code"] == "upload_timeout"
        assert c.get("/v1/health").json()["upload_bytes_held"] == 0  # what it had sent is let go


def test_concurrent_requests_share_batches(predictor):
    slow = SlowPredictor(predictor, 0.05)
    with TestClient(create_app(slow, Settings(batch_wait_ms=300))) as c:
        answers = []

        def one(i):
            answers.append(c.post("/v1/predict", files=upload((f"p{i}.jpg", picture_bytes(seed=i)))).status_code)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert answers == [200] * 6
    assert sum(slow.batches) == 6 and max(slow.batches) > 1  # some pictures of different requests went together


def test_default_bounds_admit_200_concurrent_single_picture_requests(predictor):
    import httpx

    settings = Settings()
    assert settings.max_memory_bytes >= 200 * settings.max_file_bytes  # even 200 pictures of the largest size
    slow = SlowPredictor(predictor, 0.01)
    app = create_app(slow, settings)
    picture = picture_bytes(size=(64, 48))

    async def run() -> list[int]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                answers = await asyncio.gather(*(c.post("/v1/predict", files=upload((f"p{i}.jpg", picture)))
                                                 for i in range(200)))
        return [a.status_code for a in answers]

    assert asyncio.run(run()) == [200] * 200
    assert sum(slow.batches) == 200 and len(slow.batches) < 200  # shared batches


def test_batcher_bounds_its_queue():
    b = MicroBatcher(lambda a: np.zeros((len(a), 2)), batch_size=4, wait_s=0.0, max_pending=3)
    b.reserve(2)
    with pytest.raises(Saturated, match="admits 3"):
        b.reserve(2)
    b.release(2)
    b.reserve(3)
    assert b.pending == 3


def test_token(predictor, pictures):
    with TestClient(create_app(predictor, Settings(token="s3cret"))) as c:
        files = upload(("a.jpg", pictures["a.jpg"].read_bytes()))
        r = c.post("/v1/predict", files=files)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer" and "Bearer" in r.json()["error"]
        assert c.post("/v1/predict", files=files, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/v1/model").status_code == 401
        # every page that shows the model's figures or describes the API asks for it too
        for page in ("/model-card", "/docs", "/openapi.json"):
            r = c.get(page)
            assert r.status_code == 401 and r.json()["code"] == "unauthorized", page
            assert c.get(page, headers={"Authorization": "Bearer wrong"}).status_code == 401, page
            assert c.get(page, headers={"Authorization": "Bearer s3cret"}).status_code == 200, page
        assert c.get("/").status_code == 200  # the page itself asks for the token before it scores
        assert c.post("/v1/predict", files=files, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/v1/model", headers={"Authorization": "bearer s3cret"}).status_code == 200
        # open, for a load balancer, but without the token it says only that the service is up
        assert c.get("/v1/health").json() == {"status": "ok"}
        assert c.get("/v1/health", headers={"Authorization": "Bearer wrong"}).json() == {"status": "ok"}
        health = c.get("/v1/health", headers={"Authorization": "Bearer s3cret"}).json()
        assert health["limits"]["auth"] is True and "token" not in health["limits"] and health["model"] == "default"
    with pytest.raises(UsageError):
        Settings(token=" ")


def test_uploads_never_touch_the_disk(predictor, monkeypatch):
    import tempfile

    def refuse(*args, **kwargs):
        raise AssertionError("an upload was about to be written to a temporary file")

    for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    big = np.random.default_rng(1).integers(0, 256, (900, 900, 3)).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(big).save(out, "PNG")
    assert len(out.getvalue()) > 2 * 1024 * 1024  # over Starlette's 1 MB in-memory spool
    with TestClient(create_app(predictor, Settings())) as c:
        r = c.post("/v1/predict", files=upload(("big.png", out.getvalue())))
    assert r.status_code == 200 and r.json()["predictions"][0]["error"] is None


def test_health_model_page_docs_and_card(client):
    from picaffect.inference.provenance import read_provenance

    health = client.get("/v1/health").json()
    assert health["status"] == "ok" and health["limits"]["max_files"] == 64
    model = client.get("/v1/model").json()
    from picaffect.inference import checkpoint, shipped_path
    spec = checkpoint.read(shipped_path("default"))["spec"]  # the shipped file's own architecture and side
    assert model["input_size"] == [spec["size"]] * 2 and model["architecture"] == spec["architecture"]
    assert model["model_card"] == "/model-card"
    # what the loaded file (the shipped ONNX twin) records, not figures written into the code
    shipped = read_provenance(ROOT / "src" / "picaffect" / "weights" / "default.onnx")
    for key in ("config", "dataset_sha256", "version", "commit", "evaluation", "calibration", "made_by"):
        assert model[key] == shipped.get(key), key
    page = client.get("/")
    assert page.status_code == 200 and "Self-Assessment Manikin" in page.text and "5 neutral" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)  # no external assets: works offline
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert "files" in body["schema"]["properties"]
    card = client.get("/model-card")
    assert card.status_code == 200 and card.text == (ROOT / "MODEL_CARD.md").read_text(encoding="utf-8")


def test_a_custom_model_has_no_card(predictor):
    class Other:
        spec, name = predictor.spec, "/somewhere/private/runs/mine"
        rows_for_arrays = predictor.rows_for_arrays

    with TestClient(create_app(Other(), Settings())) as c:
        model = c.get("/v1/model").json()
        assert model["name"] == "mine" and model["model_card"] is None and model["evaluation"] is None
        assert model["missing"] == ["config", "dataset_sha256", "version", "commit", "evaluation", "calibration"]
        assert c.get("/model-card").status_code == 404


def test_cli_serve_says_where_it_listens(monkeypatch, capsys):
    from picaffect.service import server

    calls = []
    monkeypatch.setattr(server, "serve", lambda app, settings, host, port: calls.append(
        {"host": host, "port": port, "settings": settings}) and False)
    monkeypatch.delenv("PICAFFECT_TOKEN", raising=False)
    assert main(["serve", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert calls[-1]["host"] == "127.0.0.1" and calls[-1]["port"] == 8000
    assert "loopback" in err and "warning" not in err
    assert main(["serve", "--host", "0.0.0.0", "--port", "8123", "--device", "cpu"]) == 0
    assert "warning" in capsys.readouterr().err and calls[-1]["port"] == 8123
    assert main(["serve", "--host", "0.0.0.0", "--token", "t0k", "--device", "cpu"]) == 0
    assert "warning" not in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # checked while parsing, before any model is loaded
        main(["serve", "--port", "70000"])
    assert exit_.value.code == 2 and "--port 70000: give a port between 1 and 65535" in capsys.readouterr().err
    assert main(["serve", "--device", "cpu", "--header-timeout", "3", "--keep-alive", "7", "--max-connections", "9",
                 "--shutdown-timeout", "4"]) == 0
    settings = calls[-1]["settings"]
    assert (settings.header_timeout_s, settings.keep_alive_s, settings.max_connections,
            settings.shutdown_timeout_s) == (3, 7, 9, 4)
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--device", "cpu", "--header-timeout", "0"])
    assert exit_.value.code == 2 and "header timeout must be a positive number" in capsys.readouterr().err
    assert len(calls) == 4  # no server started for a bad option


def test_serve_model_starts_what_the_command_starts(monkeypatch):
    """`picaffect serve` is `settings_from_options` and `serve_model`: the same units, token, checks and lines."""
    from picaffect.service import launch, server
    from picaffect.service.settings import MB

    calls = []
    monkeypatch.setattr(server, "serve", lambda app, settings, host, port: calls.append((settings, host, port)) or True)
    settings = launch.settings_from_options(max_file_mb=2, timeout=5, workers=2, environ={"PICAFFECT_TOKEN": "s3"})
    assert (settings.token, settings.max_file_bytes, settings.timeout_s, settings.decode_workers) == ("s3", 2 * MB, 5, 2)
    assert settings.max_request_bytes == Settings().max_request_bytes  # not given: the Settings default
    assert launch.settings_from_options(token="own", environ={"PICAFFECT_TOKEN": "s3"}).token == "own"
    said: list[str] = []
    assert launch.serve_model("default", settings, "::1", 8001, device="cpu", say=said.append) is True
    assert calls == [(settings, "::1", 8001)]
    assert said[0] == "picaffect serve: model default, http://[::1]:8001/ (page), /v1/predict, /docs"
    assert "loopback ::1 only" in said[1] and len(said) == 2
    assert "warning" in launch.start_lines("default", "example.org", 80, None)[-1]  # a name may reach anyone
    assert len(launch.start_lines("default", "0.0.0.0", 80, "t0k")) == 1  # open, but guarded by a token
    with pytest.raises(UsageError, match="--port 0"):
        launch.serve_model("default", settings, port=0)
    assert len(calls) == 1


def test_missing_pages_and_methods_answer_in_the_documented_shape(client):
    r = client.get("/no/such/page")
    assert r.status_code == 404 and r.json()["code"] == "not_found" and "/no/such/page" in r.json()["error"]
    assert set(r.json()) == {"error", "code"}
    r = client.delete("/v1/model")
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed" and r.headers["allow"] == "GET"
    assert client.get("/v1/predict").json()["code"] == "method_not_allowed"


def test_the_openapi_document_types_every_answer(client):
    schema = client.get("/openapi.json").json()
    parts = schema["components"]["schemas"]

    def answer(path: str, method: str = "get", status: str = "200") -> dict:
        ref = schema["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        return parts[ref.rsplit("/", 1)[1]]

    predict = answer("/v1/predict", "post")
    assert {"model", "scale", "scaled", "interval_level", "predictions"} <= set(predict["properties"])
    row = parts[predict["properties"]["predictions"]["items"]["$ref"].rsplit("/", 1)[1]]
    assert {"name", "valence", "arousal", "valence_low", "valence_scaled", "quadrant", "error"} <= set(row["properties"])
    assert answer("/v1/predict", "post", "413")["title"] == "ErrorAnswer"
    model = answer("/v1/model")
    assert {"evaluation", "calibration", "version", "commit", "dataset_sha256", "config"} <= set(model["properties"])
    evaluation = parts["Evaluation"]["properties"]
    assert list(evaluation) == ["leave_one_source_out", "validation"]  # new-source accuracy first
    assert {"valence_r", "valence_r_ci", "rmse", "rmse_ci", "valence_bias", "n"} <= set(parts["Figure"]["properties"])
    assert {"status", "queue", "limits"} <= set(answer("/v1/health")["properties"])
    assert "auth" in parts["Limits"]["properties"]


def test_answers_keep_only_the_keys_a_row_has(client, pictures):
    body = client.post("/v1/predict", files=upload(("a.jpg", pictures["a.jpg"].read_bytes()))).json()
    row = body["predictions"][0]
    calibrated = body["interval_level"] is not None
    assert ("valence_low" in row) == calibrated and "valence_scaled" not in row  # no ?scale: no scaled keys
    assert set(row) >= {"name", "valence", "arousal", "quadrant", "error"}


@pytest.fixture(scope="module")
def described(tmp_path_factory):
    """A small Emosepar file whose metadata holds an evaluation record and a calibration summary, and its ONNX
    twin: what /v1/model must serve, whatever the model's name."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from picaffect import models
    from picaffect.evaluation import record
    from picaffect.inference import ModelSpec, model_record, save_atomic
    from picaffect.inference.onnx_export import export_onnx

    torch.manual_seed(0)
    g = np.random.default_rng(3)
    y = g.uniform(2, 8, (90, 2))
    yhat = y + g.normal(0, 0.8, (90, 2))
    sources = np.repeat(["one", "two", "three"], 30)
    evaluation = record.evaluation_record(record.leave_one_source_out(y, yhat, sources, "held out by hand"),
                                          record.validation(y[:40], yhat[:40], sources[:40], "some rows"))
    metadata = {"config": {"stages": [{"name": "probe"}]}, "dataset_sha256": "d" * 64, "version": "9.9",
                "commit": "abc123-dirty", "made_by": "by hand", "evaluation": evaluation,
                "calibration": {"scheme": "pooled", "adaptive": False, "protocol": "by hand", "rows": 90,
                                "sources": {"one": 30}, "half_widths": {"0.9": {"valence": 1.5, "arousal": 1.2}},
                                "width_unit": "points on 1..9"}}
    spec = ModelSpec(architecture="emosepar", size=80, output_scale=4.0, output_offset=5.0)
    folder = tmp_path_factory.mktemp("described")
    pt = save_atomic(model_record(models.create("emosepar").eval(), spec, metadata=metadata), folder / "mine.pt")
    return pt, export_onnx(pt, folder / "mine.onnx"), metadata


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_the_model_route_serves_the_loaded_files_own_record(described, backend):
    pt, onnx_file, metadata = described
    served = Predictor.from_pretrained(pt if backend == "torch" else onnx_file, device="cpu", backend=backend)
    with TestClient(create_app(served, Settings())) as c:
        model = c.get("/v1/model").json()
    for key in ("config", "dataset_sha256", "version", "commit", "made_by", "calibration"):
        assert model[key] == metadata[key], key
    assert model["evaluation"] == json.loads(json.dumps(metadata["evaluation"]))
    assert list(model["evaluation"]) == ["leave_one_source_out", "validation"]
    assert model["missing"] == [] and model["name"] == f"mine.{'pt' if backend == 'torch' else 'onnx'}"
    assert model["model_card"] is None  # not a shipped model


def test_a_record_that_does_not_fit_is_named_not_fatal(described, tmp_path):
    from picaffect.inference import read, save_atomic

    pt, _, _ = described
    record = read(pt)
    record["metadata"]["evaluation"] = {"leave_one_source_out": {"sources": "not figures"}}
    odd = save_atomic(record, tmp_path / "odd.pt")
    with TestClient(create_app(Predictor.from_pretrained(odd, device="cpu", backend="torch"), Settings())) as c:
        model = c.get("/v1/model").json()
    assert model["evaluation"] is None and "evaluation (not readable)" in model["missing"]
    assert model["commit"] == "abc123-dirty"


def test_serve_options_make_the_command_line_and_the_settings():
    """`picaffect serve`'s options are ServeOptions' fields: name, type, default, help and check in one place."""
    from dataclasses import fields

    from picaffect.app.commands import parser
    from picaffect.service.settings import MB, ServeOptions

    serve = next(a for a in parser()._actions if hasattr(a, "choices") and isinstance(a.choices, dict)).choices["serve"]
    actions = {a.dest: a for a in serve._actions if a.dest != "help"}
    assert set(actions) == {f.name for f in fields(ServeOptions)}
    for f in fields(ServeOptions):
        assert actions[f.name].default == f.default and actions[f.name].help, f.name
    assert actions["device"].choices == ("auto", "cpu", "cuda")
    defaults = ServeOptions().settings(environ={})
    assert defaults == Settings()  # every limit's default is Settings' own
    options = ServeOptions(max_file_mb=2, timeout=5, workers=3, header_timeout=1.5, max_connections=7)
    settings = options.settings(environ={"PICAFFECT_TOKEN": "env"})
    assert (settings.max_file_bytes, settings.timeout_s, settings.decode_workers, settings.header_timeout_s,
            settings.max_connections, settings.token) == (2 * MB, 5, 3, 1.5, 7, "env")
    for bad in ({"port": 0}, {"max_files": 0}, {"keep_alive": float("nan")}, {"device": "tpu"}):
        with pytest.raises(UsageError):
            ServeOptions(**bad)
    args = parser().parse_args(["serve", "--max-request-mb", "8", "--no-tta", "--device", "cpu"])
    assert (args.max_request_mb, args.tta, args.device, args.port) == (8.0, False, "cpu", 8000)
