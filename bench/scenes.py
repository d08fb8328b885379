"""Accuracy and training time on the development data set (../shared/datasets/scenes): train
through the API from an empty embedding cache on 90 % of train/, retrain after adding the other
10 %, and classify val/ over HTTP with the final model."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from bench.common import say
from bench.training_scale import train_once
from kestrel.local.worker import LocalWorker
from tests.api.http import Api

ROOT = Path(__file__).resolve().parents[1]
SCENES = ROOT.parent / "shared" / "datasets" / "scenes"


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
        results[step] = {"images": uploaded, **train_once(api, worker, task["id"])}
        figures = results[step]
        say(
            f"scenes: trained on {uploaded} images ({step}) in {figures['seconds']:.1f} s, "
            f"held-out accuracy {figures['test_accuracy']}"
        )
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
