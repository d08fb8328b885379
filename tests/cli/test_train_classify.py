"""The CLI story with real training: import, ``train --wait``, ``models``, ``deploy``, and
``classify`` a folder to CSV (and table, JSON), against the local gateway and its worker."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from kestrel.cli.client import KestrelClient
from kestrel.local.worker import LocalWorker
from tests.cli.conftest import LABELS, NOT_AN_IMAGE, PER_LABEL, Cli, one_line_error, task_named
from tests.conftest import RunningServer
from tests.photos import photo

pytestmark = pytest.mark.slow


def _wait_trained(server: RunningServer, task_id: str, version: int) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        models = server.request("GET", "recognition/v2/model/", params={"task": task_id}).json()["results"]
        if any(m["version"] == version and m["train_status"] == "TRAINED" for m in models):
            return
        time.sleep(0.2)
    raise AssertionError(f"version {version} did not finish training")


def _production_row(out: str) -> str:
    rows = [line for line in out.splitlines() if line.startswith("*") and "TRAINED" in line]
    assert len(rows) == 1, out
    return rows[0]


def test_train_wait_models_deploy_and_classify(
    cli: Cli,
    photo_tree: Path,
    tmp_path: Path,
    local_server: RunningServer,
    worker: LocalWorker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, _ = cli("import", str(photo_tree), "--task", "Pets")
    assert code == 1 and "Ready to train" in out
    task = task_named(local_server, "Pets")

    # train --wait: the state while it runs (stderr), then the evaluation (stdout).
    code, out, err = cli("train", "Pets", "--wait", "--interval", "0.2")
    assert code == 0, err
    model = local_server.request("GET", "recognition/v2/model/", params={"task": task["id"]}).json()["results"][0]
    assert model["version"] == 1 and model["train_status"] == "TRAINED"
    assert "Training version 1 of 'Pets' (WAITING)." in out
    assert f"Version 1 of 'Pets': accuracy {100 * model['accuracy']:.1f}% (95 % interval " in out
    # The test part is small (8 images): each label's recall from the cross-validation folds too.
    assert re.search(r"^LABEL +PRECISION +RECALL +F1 +SUPPORT +CV RECALL$", out, flags=re.MULTILINE), out
    for label in LABELS:
        m = model["metrics"]["per_label"][next(x["id"] for x in task["labels"] if x["name"] == label)]
        row = rf"^{label} +{m['precision']:.3f} +{m['recall']:.3f} +{m['f1']:.3f} +{m['support']} +[01]\.\d{{3}}$"
        assert re.search(row, out, flags=re.MULTILINE), (row, out)
    assert "Confusion matrix (rows: true label, columns: predicted)" in out
    rows = model["metrics"]["confusion_matrix"]["rows"]
    assert re.search(rf"^cat +{rows[0][0]} +{rows[0][1]}$", out, flags=re.MULTILINE), out
    assert "Version 1 is in production" in out
    assert "Version 1: IN_TRAINING" in err or "Version 1: WAITING" in err  # the live state
    assert "Version 1: TRAINED" in err

    # A second version without --wait; the first stays in production (auto-deploy is off).
    code, out, _ = cli("train", "Pets")
    assert code == 0 and "Training version 2 of 'Pets'" in out and "kestrel models Pets" in out
    _wait_trained(local_server, task["id"], 2)
    code, out, _ = cli("models", "Pets")
    assert code == 0
    assert re.search(r"^ +VERSION +STATE +ACCURACY +CREATED \(UTC\) +TRAINED \(UTC\)$", out, flags=re.MULTILINE)
    assert re.match(r"^\* +1 +TRAINED +\d+\.\d% +\d{4}-\d\d-\d\d \d\d:\d\d +\d{4}-", _production_row(out))
    assert re.search(r"^ +2 +TRAINED ", out, flags=re.MULTILINE) and "* in production: version 1" in out

    code, out, _ = cli("deploy", "Pets", "2")
    assert code == 0 and "now classifies with version 2" in out and "before: version 1" in out
    assert local_server.request("GET", f"recognition/v2/task/{task['id']}/").json()["production_version"] == 2
    code, out, _ = cli("models", "Pets")
    assert _production_row(out).split()[1] == "2"
    code, _, err = cli("deploy", "Pets", "5")
    one_line_error(code, err, "has no version 5", "versions: 1, 2")
    code, out, _ = cli("models", "Pets", "--version", "1")
    assert code == 0 and "Version 1 of 'Pets': accuracy" in out and "Confusion matrix" in out

    # classify the whole tree to CSV: one row per file, in batches of at most 10 records.
    sizes: list[int] = []
    real_classify = KestrelClient.classify

    def counting(self: KestrelClient, task_id: str, records: Any, version: int | None = None) -> Any:
        sizes.append(len(records))
        return real_classify(self, task_id, records, version)

    monkeypatch.setattr(KestrelClient, "classify", counting)
    code, out, err = cli("classify", "Pets", str(photo_tree), "--format", "csv")
    assert code == 1, err  # the text file is reported on its row; the others are classified
    assert max(sizes) <= 10 and sum(sizes) == PER_LABEL * 2 + 1 and len(sizes) == 5
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["file", "label", "probability", "error"]
    expected = sorted(
        os.path.join(str(photo_tree), f"{label}/{n:02d}.jpg") for label in LABELS for n in range(PER_LABEL)
    )
    assert sorted(row["file"] for row in rows) == sorted([*expected, os.path.join(str(photo_tree), NOT_AN_IMAGE)])
    for row in rows:
        if row["file"].endswith(NOT_AN_IMAGE):
            assert row["label"] == "" and "not a usable image" in row["error"]
            continue
        assert row["label"] == Path(row["file"]).parent.name, row  # the cat photos are 'cat'
        assert 0.5 < float(row["probability"]) <= 1 and row["error"] == ""

    # New photos (not among the training crops): a table, then JSON with an explicit version.
    new = tmp_path / "new"
    new.mkdir()
    (new / "kitty.png").write_bytes(photo("chelsea", 300, "PNG"))
    (new / "espresso.jpg").write_bytes(photo("coffee", 300))
    code, out, _ = cli("classify", "Pets", str(new / "kitty.png"), str(new / "espresso.jpg"))
    assert code == 0
    assert re.search(rf"^{re.escape(str(new / 'kitty.png'))} +cat +0\.\d{{3}}$", out, flags=re.MULTILINE), out
    assert re.search(rf"^{re.escape(str(new / 'espresso.jpg'))} +coffee +", out, flags=re.MULTILINE), out
    assert "2 of 2 classified by 'Pets' version 2." in out
    code, out, _ = cli("classify", task["id"], str(new), "--format", "json", "--version", "1")
    answer = json.loads(out)
    assert code == 0 and [(r["file"], r["label"], r["error"]) for r in answer] == [
        (str(new / "espresso.jpg"), "coffee", None),
        (str(new / "kitty.png"), "cat", None),
    ]
    assert abs(sum(label["prob"] for label in answer[0]["labels"]) - 1) < 1e-3
