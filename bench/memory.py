"""Peak memory of one request with the worst images Kestrel accepts, as a Lambda would see it.

Each figure comes from a fresh process that runs the Lambda handler in process (``api`` for an
upload, ``classify`` for a classify), one request at a time like a Lambda execution environment:
a warm-up request first (imports, model, onnxruntime session), then the peak resident memory is
reset (Linux ``clear_refs``) and the measured request runs. Reported: the process's peak during
the request (what the Lambda's memory size must hold) and the growth over the warm process.

The worst accepted images:
* PNG: 7000 x 7000 RGBA (49 MP, ~190 KB) — issue 14's attacker image; a PNG has no reduced
  decode, so one full-size copy (196 MB) is the floor;
* JPEG: 8000 x 6000 (48 MP), 2 MB; decoded at 1/8. Ten of them make a 28 MB classify body, more
  than API Gateway passes (6 MB): the probe calls the handler directly, a worse case than any
  real request.

Run alone: ``.venv/bin/python -m bench.memory [--quick]`` (makes its own trained task)."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.common import say

#: The memory each Lambda is given (infra/functions.py).
LAMBDA_MB = {"api": 1024, "classify": 3008}
RECORDS = 10


def worst_png() -> bytes:
    image = Image.new("RGBA", (7000, 7000), (30, 120, 200, 255))
    image.paste((250, 250, 250, 0), (0, 0, 7000, 3500))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def worst_jpeg() -> bytes:
    """48 MP of photo-like content, small enough in bytes that ten fit one classify body."""
    rng = np.random.default_rng(7)
    small = Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8))
    out = io.BytesIO()
    small.resize((8000, 6000), Image.Resampling.BICUBIC).save(out, "JPEG", quality=70)
    return out.getvalue()


@dataclass
class _Context:
    """What Powertools reads from Lambda's context object."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str = "arn:aws:lambda:local:000000000000:function:bench"
    aws_request_id: str = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def _vm(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _event(method: str, path: str, body: dict[str, Any], owner_id: str) -> dict[str, Any]:
    from kestrel.local.events import event_from_wsgi

    data = json.dumps(body).encode()
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "8000",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.url_scheme": "http",
    }
    event = event_from_wsgi(environ, data)
    event["requestContext"]["authorizer"] = {"owner_id": owner_id, "principalId": owner_id}
    return event


def _probe(kind: str, image_path: str, token: str, task_id: str, out_path: str) -> None:
    """In the fresh process: warm up, reset the peak, run the measured request, write figures."""
    from kestrel.composition import get_ports
    from kestrel.store.accounts import authenticate

    owner = authenticate(get_ports().items, f"Token {token}")
    image = Path(image_path).read_bytes()
    warm = base64.b64encode(_warm_jpeg()).decode()
    payload = base64.b64encode(image).decode()
    if kind == "upload":
        from kestrel.handlers.api import lambda_handler

        path, function = "/recognition/v2/training-image/", "api"
        warm_body: dict[str, Any] = {"base64": warm}
        body: dict[str, Any] = {"base64": payload}
    else:
        from kestrel.handlers.classify import lambda_handler

        path, function = "/recognition/v2/classify/", "classify"
        warm_body = {"task_id": task_id, "records": [{"_base64": warm}]}
        body = {"task_id": task_id, "records": [{"_base64": payload}] * RECORDS}
    context: Any = _Context(function, LAMBDA_MB[function])  # what Powertools reads of a LambdaContext
    warmed = lambda_handler(_event("POST", path, warm_body, owner), context)
    event = _event("POST", path, body, owner)
    del body, payload
    warm_rss = _vm("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False
    answer = lambda_handler(event, context)
    figures = {
        "warm_status": warmed["statusCode"],
        "status": answer["statusCode"],
        "record_codes": _record_codes(answer),
        "warm_rss_mb": round(warm_rss, 1),
        "peak_mb": round(_vm("VmHWM"), 1),
        "peak_reset": reset,
        "after_mb": round(_vm("VmRSS"), 1),
        "lambda_mb": LAMBDA_MB[function],
    }
    figures["growth_mb"] = round(figures["peak_mb"] - warm_rss, 1)
    Path(out_path).write_text(json.dumps(figures))


def _warm_jpeg() -> bytes:
    """A tiny JPEG for the warm-up request."""
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 140, 30)).save(out, "JPEG")
    return out.getvalue()


def _record_codes(answer: dict[str, Any]) -> list[int]:
    try:
        return [int(record["_status"]["code"]) for record in json.loads(answer["body"]).get("records", [])]
    except (ValueError, KeyError, TypeError):
        return []


def measure(
    data_dir: Path, token: str, task_id: str, kind: str, image: bytes, pythonpath: str | None = None
) -> dict[str, Any]:
    """One fresh process, one measured request; ``pythonpath`` measures another checkout's code."""
    with tempfile.TemporaryDirectory(prefix="kestrel-memory-") as tmp:
        image_path, out_path = Path(tmp) / "image", Path(tmp) / "figures.json"
        image_path.write_bytes(image)
        env = {**os.environ, "KESTREL_DATA_DIR": str(data_dir), "KESTREL_RUNTIME": "local"}
        env["POWERTOOLS_METRICS_DISABLED"] = "true"  # no EMF lines on stdout
        if pythonpath:
            env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
        arguments = ", ".join(repr(value) for value in (kind, str(image_path), token, task_id, str(out_path)))
        code = f"from bench.memory import _probe; _probe({arguments})"
        subprocess.run([sys.executable, "-c", code], check=True, env=env, stdout=subprocess.DEVNULL)
        return dict(json.loads(out_path.read_text()))


def peak_memory(data_dir: Path, token: str, task_id: str, pythonpath: str | None = None) -> dict[str, Any]:
    """Every figure of the memory table: upload and 10-record classify, worst PNG and worst JPEG."""
    images = {"png": worst_png(), "jpeg": worst_jpeg()}
    results: dict[str, Any] = {"images": {name: {"bytes": len(data)} for name, data in images.items()}}
    for name, data in images.items():
        with Image.open(io.BytesIO(data)) as opened:
            results["images"][name].update(size=list(opened.size), mode=opened.mode)
        for kind in ("upload", "classify"):
            # Uploaded bytes must be new to the owner (a duplicate answers 409 before any decoding).
            figures = measure(
                data_dir, token, task_id, kind, data if kind == "classify" else _fresh(data, name), pythonpath
            )
            results[f"{kind} {name}"] = figures
            say(
                f"memory: {kind} of the worst {name.upper()} — peak {figures['peak_mb']:.0f} MB "
                f"(+{figures['growth_mb']:.0f} MB over the warm process) of the {figures['lambda_mb']} MB Lambda; "
                f"status {figures['status']} {figures['record_codes'] or ''}"
            )
    return results


def _fresh(data: bytes, name: str) -> bytes:
    """The same image with different bytes (a trailing comment), so it is not a duplicate."""
    nonce = os.urandom(8).hex().encode()
    if name == "jpeg":
        return data[:-2] + b"\xff\xfe\x00\x12" + nonce + b"\xff\xd9"  # a COM segment before EOI
    return data[:-12] + _png_text(nonce) + data[-12:]  # a tEXt chunk before IEND


def _png_text(nonce: bytes) -> bytes:
    import struct
    import zlib

    chunk = b"tEXt" + b"nonce\x00" + nonce
    return struct.pack(">I", len(chunk) - 4) + chunk + struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone: a trained task in a temporary data folder, then the memory table as JSON.
    ``--code DIR`` measures another checkout's ``functions/`` (e.g. main, for a before/after)."""
    import argparse

    parser = argparse.ArgumentParser(description="peak memory of the worst accepted images")
    parser.add_argument("--code", help="a checkout whose functions/ to measure instead of this one")
    args = parser.parse_args(argv)
    pythonpath = str(Path(args.code) / "functions") if args.code else None
    from bench.run import small_task
    from kestrel.config import Limits, Settings
    from kestrel.local.worker import LocalWorker
    from tests.api.http import Api
    from tests.conftest import build_ports, running_server

    with tempfile.TemporaryDirectory(prefix="kestrel-bench-memory-") as tmp:
        data_dir = Path(tmp) / "data"
        ports = build_ports(Settings(runtime="local", data_dir=data_dir, table="", bucket="", limits=Limits()))
        with running_server(ports, "local") as server:
            task_id = small_task(Api(server.url, server.token), LocalWorker(ports, poll_seconds=0.1))
            token = server.token
        print(json.dumps(peak_memory(data_dir, token, task_id, pythonpath), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
