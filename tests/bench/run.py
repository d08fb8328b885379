"""`make bench`: Kestrel's performance record, written to docs/benchmarks.md.

In one run, on the same images:
* classify latency: the raw onnxruntime backbone (the floor), the classify handler in process,
  and classify over HTTP on the local gateway, for 1 image and for a batch of 10 (medians, p95,
  ratios to the floor);
* the development data set (../shared/datasets/scenes, when present): train through the API from
  an empty embedding cache on 90 % of train/, retrain after adding the other 10 %, and the
  accuracy of the final model on val/ (classified over HTTP).

Run: `make bench` (or `.venv/bin/python -m tests.bench.run [--quick]`)."""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from kestrel.config import Limits, Settings
from kestrel.local.worker import LocalWorker
from tests.api.http import Api
from tests.conftest import build_ports, running_server
from tests.photos import photo

ROOT = Path(__file__).resolve().parents[2]
SCENES = ROOT.parent / "shared" / "datasets" / "scenes"
REPORT = ROOT / "docs" / "benchmarks.md"


def say(message: str) -> None:
    print(message, flush=True)


def timed(function: Callable[[], Any], repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_ms": 1000 * statistics.median(ordered), "p95_ms": 1000 * p95}


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {memory:.0f} GiB, {platform.machine()}, Python {platform.python_version()}"


# -- the development data set -------------------------------------------------------------------


def scenes_files(split: str) -> dict[str, list[Path]]:
    return {folder.name: sorted(folder.glob("*.jpg")) for folder in sorted((SCENES / split).iterdir())}


def train_scenes(api: Api, worker: LocalWorker, quick: bool) -> dict[str, Any]:
    train = scenes_files("train")
    if quick:
        train = {label: files[:30] for label, files in train.items()}
    task = api.create_task("Scenes")
    labels = {}
    for name in train:
        labels[name] = api.create_label(name)
        api.post(f"task/{task['id']}/add-label/", {"label_id": labels[name]["id"]})
    first = {name: files[: int(len(files) * 0.9)] for name, files in train.items()}
    rest = {name: files[int(len(files) * 0.9) :] for name, files in train.items()}

    def upload(part: dict[str, list[Path]]) -> int:
        count = 0
        for name, files in part.items():
            for path in files:
                api.upload(path.read_bytes(), labels=[labels[name]["id"]])
                count += 1
        return count

    say("scenes: uploading 90 % of train/")
    uploaded = upload(first)
    results: dict[str, Any] = {"task": task["id"]}
    for step, extra in (("empty cache", None), ("after adding 10 %", rest)):
        if extra is not None:
            uploaded += upload(extra)
        model = api.post(f"task/{task['id']}/train/", status=201)
        started = time.perf_counter()
        worker.run_until_idle(timeout=3600)
        seconds = time.perf_counter() - started
        trained = api.get(f"model/{model['id']}")
        assert trained["train_status"] == "Trained", trained
        card = trained["metrics"]
        results[step] = {
            "images": uploaded,
            "seconds": seconds,
            "embedded": card["embedded_images"],
            "cached": card["cached_images"],
            "test_accuracy": card["accuracy"],
            "version": trained["version"],
        }
        say(f"scenes: trained on {uploaded} images ({step}) in {seconds:.1f} s, held-out accuracy {card['accuracy']}")
    api.ok("PATCH", f"task/{task['id']}/", json={"production_version": results["after adding 10 %"]["version"]})
    results["val"] = evaluate_scenes(api, task["id"], quick)
    return results


def evaluate_scenes(api: Api, task_id: str, quick: bool) -> dict[str, Any]:
    val = scenes_files("val")
    if quick:
        val = {label: files[:10] for label, files in val.items()}
    items = [(name, path) for name, files in val.items() for path in files]
    correct = 0
    per_label: dict[str, list[int]] = {name: [0, 0] for name in val}
    for start in range(0, len(items), 10):
        batch = items[start : start + 10]
        records = [{"_base64": base64.b64encode(path.read_bytes()).decode()} for _, path in batch]
        answer = api.post("classify/", {"task_id": task_id, "records": records})
        for (name, _), record in zip(batch, answer["records"], strict=True):
            hit = record["best_label"]["name"] == name
            correct += hit
            per_label[name][0] += hit
            per_label[name][1] += 1
    accuracy = correct / len(items)
    say(f"scenes: val accuracy {accuracy:.4f} on {len(items)} images")
    return {"accuracy": accuracy, "images": len(items), "per_label": {k: v[0] / v[1] for k, v in per_label.items()}}


# -- classify latency -----------------------------------------------------------------------------


def latency(server: Any, api: Api, task_id: str, images: list[bytes], repeats: int) -> dict[str, Any]:
    from kestrel.handlers.classify import lambda_handler
    from kestrel.vision.backbone import ensure_backbone
    from kestrel.vision.preprocess import preprocess
    from kestrel.vision.session import create_session

    backbone = ensure_backbone()
    session = create_session(backbone.path)
    pixels = np.stack([preprocess(data) for data in images])
    owner_id = owner_of(server)
    results: dict[str, Any] = {}
    for batch in (1, 10):
        chosen = images[:batch]
        records = [{"_base64": base64.b64encode(data).decode()} for data in chosen]
        body = json.dumps({"task_id": task_id, "records": records})
        event = {
            "resource": "/{proxy+}",
            "path": "/recognition/v2/classify/",
            "httpMethod": "POST",
            "headers": {"Content-Type": "application/json", "Host": "localhost"},
            "multiValueHeaders": {},
            "queryStringParameters": None,
            "multiValueQueryStringParameters": None,
            "pathParameters": None,
            "requestContext": {"path": "/recognition/v2/classify/", "authorizer": {"owner_id": owner_id}},
            "body": body,
            "isBase64Encoded": False,
        }

        class Context:
            function_name, memory_limit_in_mb = "bench", 3008
            invoked_function_arn, aws_request_id = "arn:aws:lambda:local:0:function:bench", "bench"

        def raw(b: int = batch) -> None:
            session.run([backbone.features_name], {backbone.input_name: pixels[:b]})

        def decode_and_raw(chosen_images: list[bytes] = chosen) -> None:
            session.run(
                [backbone.features_name], {backbone.input_name: np.stack([preprocess(d) for d in chosen_images])}
            )

        def in_process(e: dict[str, Any] = event) -> None:
            answer = lambda_handler(e, Context())  # type: ignore[arg-type]
            assert answer["statusCode"] == 200, answer

        def over_http(b: dict[str, Any] = json.loads(body)) -> None:
            api.post("classify/", b)

        figures = {
            "backbone (onnxruntime, preprocessed input)": summary(timed(raw, repeats)),
            "decode + preprocess + backbone": summary(timed(decode_and_raw, repeats)),
            "classify handler in process": summary(timed(in_process, repeats)),
            "classify over HTTP (local gateway)": summary(timed(over_http, repeats)),
        }
        floor = figures["backbone (onnxruntime, preprocessed input)"]["median_ms"]
        for values in figures.values():
            values["per_image_ms"] = values["median_ms"] / batch
            values["ratio"] = values["median_ms"] / floor
        results[f"batch {batch}"] = figures
        say(f"latency batch {batch}: " + ", ".join(f"{k}: {v['median_ms']:.1f} ms" for k, v in figures.items()))
    return results


def owner_of(server: Any) -> str:
    from kestrel.records.accounts import authenticate

    return authenticate(server.ports.items, f"Token {server.token}")


def small_task(api: Api, worker: LocalWorker) -> str:
    from tests.flow.conftest import make_trainable_task

    trainable = make_trainable_task(api)
    api.post(f"task/{trainable.task['id']}/train/", status=201)
    worker.run_until_idle()
    return str(trainable.task["id"])


# -- report ---------------------------------------------------------------------------------------


def write_report(results: dict[str, Any], command: str) -> None:
    lines = [
        "# Benchmarks",
        "",
        f"Measured {results['date']} on {results['machine']} with `{command}`.",
        "Medians of repeated runs in one process; ratios are to the floor measured in the same run.",
        "",
        "## Classify latency",
        "",
        "The floor is the backbone alone in onnxruntime on already preprocessed input (the least any",
        "classify can cost). Images: real photos (scikit-image samples, JPEG, 300-480 px).",
        "",
    ]
    for batch, figures in results["latency"].items():
        lines += [f"### {batch}", "", "| path | median ms | p95 ms | ms per image | x floor |", "|---|---|---|---|---|"]
        for name, value in figures.items():
            lines.append(
                f"| {name} | {value['median_ms']:.1f} | {value['p95_ms']:.1f} | {value['per_image_ms']:.1f} | "
                f"{value['ratio']:.2f} |"
            )
        lines.append("")
    scenes = results.get("scenes")
    lines += ["## Training and accuracy on the development data set (scenes)", ""]
    if scenes is None:
        lines += [f"Skipped: {SCENES} is not present on this machine.", ""]
    else:
        lines += [
            "Trained through the API (upload, train, local worker), evaluated by classifying `val/` over HTTP.",
            "The reference figure (frozen EfficientNet-Lite0 features + logistic regression, from the data",
            "set's README) is 90.0 %: the floor to beat.",
            "",
            "| step | images | training seconds | embedded | from cache | held-out accuracy |",
            "|---|---|---|---|---|---|",
        ]
        for step in ("empty cache", "after adding 10 %"):
            value = scenes[step]
            lines.append(
                f"| {step} | {value['images']} | {value['seconds']:.1f} | {value['embedded']} | {value['cached']} | "
                f"{100 * value['test_accuracy']:.1f} % |"
            )
        val = scenes["val"]
        lines += [
            "",
            f"**Accuracy on `val/` ({val['images']} images): {100 * val['accuracy']:.1f} %** (floor: 90.0 %).",
            "",
            "| label | val accuracy |",
            "|---|---|",
            *[f"| {name} | {100 * value:.0f} % |" for name, value in val["per_label"].items()],
            "",
        ]
    REPORT.write_text("\n".join(lines) + "\n")
    (ROOT / "docs" / "benchmarks.json").write_text(json.dumps(results, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small subset, to check the benchmark runs")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="kestrel-bench-") as tmp:
        settings = Settings(runtime="local", data_dir=Path(tmp) / "data", table="", bucket="", limits=Limits())
        ports = build_ports(settings)
        with running_server(ports, "local") as server:
            api = Api(server.url, server.token)
            worker = LocalWorker(ports, poll_seconds=0.1)
            if SCENES.is_dir():
                results["scenes"] = train_scenes(api, worker, args.quick)
                task_id = results["scenes"]["task"]
            else:
                say(f"scenes: {SCENES} not found; measuring latency on a small task of sample photos")
                task_id = small_task(api, worker)
            images = [photo(name, 480) for name in ("chelsea", "coffee", "rocket", "astronaut", "motorcycle")] * 2
            results["latency"] = latency(server, api, task_id, images, args.repeats)
    command = "make bench" + (" (--quick)" if args.quick else "")
    write_report(results, command)
    say(f"wrote {REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
