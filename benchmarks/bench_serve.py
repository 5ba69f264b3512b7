"""Load test of `picaffect serve` on loopback, beside the in-process Predictor in the same run.

Starts `picaffect serve` in a subprocess on a free loopback port, then runs
``--clients`` concurrent clients (asyncio + httpx), each sending ``--requests``
POST /v1/predict requests of ``--per-request`` pictures, and stops by itself
(every request has a timeout, the whole load a deadline). Pictures: 400x300 JPEG
crops of the photographs that scikit-learn ships. Baseline, measured in this
process on the same pictures (as files) before and after the load:
``Predictor.predict_files`` with batches of 32, as `picaffect predict` scores a folder.
Goal: no errors, and the service's pictures/s at least 80 % of the in-process figure.

Memory: the server's resident size (from /proc) idle before the load, its peak
during the load, and again ``--settle`` seconds after the load ended. The server
hands back what a burst took once it is idle (onnxruntime's arena, the heap's free
pages), so "after" should be near "idle"; the documented cap is the peak, which the
largest batch (the server's ``--batch-size``, 32 pictures) sets, not the number of clients.

    .venv/bin/python benchmarks/bench_serve.py [--clients 200] [--requests 3] [--per-request 1]

Only addresses on this machine are contacted (127.0.0.1).
"""
from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def sample_pictures(n: int, seed: int = 0) -> list[bytes]:
    """``n`` distinct 400x300 JPEGs cut from scikit-learn's sample photographs."""
    import sklearn.datasets

    folder = Path(sklearn.datasets.__file__).parent / "images"
    photos = [Image.open(p).convert("RGB") for p in sorted(folder.glob("*.jpg"))]
    gen = np.random.default_rng(seed)
    out = []
    for i in range(n):
        im = photos[i % len(photos)]
        x, y = gen.integers(0, im.width - 400), gen.integers(0, im.height - 300)
        crop = im.crop((x, y, x + 400, y + 300))
        if i % 2:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        buf = io.BytesIO()
        crop.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def in_process(model: str, folder: Path) -> float:
    """Pictures/s of ``Predictor.predict_files`` on the folder (after one warm-up batch)."""
    from picaffect import Predictor

    predictor = Predictor.from_pretrained(model, device="cpu")
    files = sorted(folder.glob("*.jpg"))
    predictor.predict_files(files[:32], batch_size=32)
    start = time.perf_counter()
    run = predictor.predict_files(files, batch_size=32)
    seconds = time.perf_counter() - start
    assert not run.failed
    return len(files) / seconds


class Resident:
    """The resident size of a process in MB: now, at the start, and the peak seen by a sampling thread."""

    def __init__(self, pid: int, every: float = 0.05) -> None:
        import threading

        self.pid, self.every = pid, every
        self.idle = self.peak = self.now()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def now(self) -> float:
        with open(f"/proc/{self.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, self.now())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def load(url: str, pictures: list[bytes], clients: int, requests: int, per_request: int,
               deadline_s: float) -> tuple[list[float], dict[str, int], float]:
    """Latencies of the answered requests, error counts by kind, wall seconds."""
    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}

    async def client(c: httpx.AsyncClient, k: int) -> None:
        for r in range(requests):
            i = (k * requests + r) * per_request
            files = [("files", (f"p{(i + j) % len(pictures)}.jpg", pictures[(i + j) % len(pictures)], "image/jpeg"))
                     for j in range(per_request)]
            start = time.perf_counter()
            try:
                answer = await c.post(url, files=files)
                body = answer.json()
                if answer.status_code != 200 or any(p["error"] for p in body["predictions"]):
                    errors[str(answer.status_code)] = errors.get(str(answer.status_code), 0) + 1
                    continue
            except (httpx.HTTPError, ValueError, KeyError) as e:
                kind = f"{type(e).__name__}: {e}"[:120]
                errors[kind] = errors.get(kind, 0) + 1
                continue
            latencies.append(time.perf_counter() - start)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(120.0)) as c:
        start = time.perf_counter()
        tasks = [asyncio.create_task(client(c, k)) for k in range(clients)]
        done, pending = await asyncio.wait(tasks, timeout=deadline_s)
        for t in pending:
            t.cancel()
        if pending:
            errors["deadline"] = len(pending)
        wall = time.perf_counter() - start
    return latencies, errors, wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--requests", type=int, default=3, help="requests per client")
    p.add_argument("--per-request", type=int, default=1, help="pictures per request")
    p.add_argument("--pictures", type=int, default=256, help="distinct pictures (also the in-process run's count)")
    p.add_argument("--model", default="default")
    p.add_argument("--deadline", type=float, default=600.0, help="seconds before the load is stopped")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file (for python -m benchmarks)")
    p.add_argument("--settle", type=float, default=5.0, help="seconds idle after the load before memory is read")
    args = p.parse_args()

    # Like the `picaffect` launcher, and for both sides alike: glibc's allocator keeps freed memory, for a
    # model that runs on torch only (on ONNX the launcher leaves the allocator alone).
    from picaffect.app.cli import needs_allocator
    from picaffect.core.runtime import allocator_env

    env = allocator_env() if needs_allocator(["serve", "--model", args.model, "--device", "cpu"]) else None
    if env is not None:
        os.execve(sys.executable, [sys.executable, *sys.argv], env)

    pictures = sample_pictures(args.pictures)
    port = free_port()
    log = tempfile.TemporaryFile()
    server = subprocess.Popen([sys.executable, "-m", "picaffect", "serve", "--model", args.model, "--port", str(port),
                               "--device", "cpu"], stdout=subprocess.DEVNULL, stderr=log)

    def server_log() -> str:
        log.seek(0)
        return log.read().decode(errors="replace")[-3000:]

    try:
        import httpx

        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(base + "/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
            if server.poll() is not None:
                sys.exit(f"the server stopped: {server_log()}")
        else:
            sys.exit("the server did not answer within a minute")
        with tempfile.TemporaryDirectory() as tmp:
            for i, data in enumerate(pictures):
                Path(tmp, f"p{i:04d}.jpg").write_bytes(data)
            before = in_process(args.model, Path(tmp))
            asyncio.run(load(base + "/v1/predict", pictures[:8], 8, 2, 1, 60))  # warm-up of the server
            warm = httpx.get(base + "/v1/health").json()
            time.sleep(args.settle)
            memory = Resident(server.pid)
            latencies, errors, wall = asyncio.run(load(base + "/v1/predict", pictures, args.clients, args.requests,
                                                       args.per_request, args.deadline))
            health = httpx.get(base + "/v1/health").json()
            memory.stop()
            time.sleep(args.settle)
            settled = memory.now()
            after = in_process(args.model, Path(tmp))
    finally:
        server.terminate()
        server.wait(60)
    if errors:
        print("server log (tail):\n" + "\n".join(line for line in server_log().splitlines()
                                                  if "POST /v1/predict" not in line), file=sys.stderr)

    answered = len(latencies)
    sent = args.clients * args.requests
    baseline = (before + after) / 2
    pics = answered * args.per_request / wall
    batches = health["batches"] - warm["batches"]
    scored = health["scored"] - warm["scored"]
    lat = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    print(f"picaffect serve, model {args.model}, {os.cpu_count()} cores, loopback; {args.clients} clients x "
          f"{args.requests} requests x {args.per_request} picture(s) (400x300 JPEG)")
    print(f"  requests           : {answered} of {sent} answered in {wall:.1f} s = {answered / wall:.1f} requests/s")
    print(f"  pictures/s         : {pics:.1f}")
    print(f"  latency            : p50 {np.percentile(lat, 50):.0f} ms, p99 {np.percentile(lat, 99):.0f} ms")
    print(f"  errors             : {sum(errors.values())} {errors if errors else ''}")
    print(f"  server batches     : {batches}, mean {scored / max(batches, 1):.1f} pictures per batch")
    print(f"  in-process Predictor.predict_files, batch 32: {before:.1f} img/s before, {after:.1f} after "
          f"(mean {baseline:.1f})   <- baseline")
    print(f"  service / in-process: {pics / baseline:.0%} (goal: at least 80 %)")
    print(f"  server memory (RSS): idle {memory.idle:.0f} MB, peak {memory.peak:.0f} MB under load, "
          f"{settled:.0f} MB {args.settle:g} s after it (goal: back within a quarter of the rise)")
    if args.json:
        import json

        from picaffect.core.atomic import write_bytes_atomically

        figures = {"clients": args.clients, "requests": args.requests, "per_request": args.per_request,
                   "sent": sent, "answered": answered, "wall_s": wall, "pictures_per_s": pics,
                   "p50_ms": float(np.percentile(lat, 50)) if latencies else None,
                   "p99_ms": float(np.percentile(lat, 99)) if latencies else None, "errors": errors,
                   "in_process_before": before, "in_process_after": after, "service_over_in_process": pics / baseline,
                   "rss_mb": {"idle": memory.idle, "peak": memory.peak, "settled": settled}}
        write_bytes_atomically(args.json, json.dumps(figures, indent=2).encode())


if __name__ == "__main__":
    main()
