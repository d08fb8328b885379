"""``kestrel review TASK``: the queue as a table (most uncertain first) and ``--export`` as CSV."""

from __future__ import annotations

import csv
from pathlib import Path

from kestrel.domain.review import category_margin
from kestrel.store.accounts import ensure_owner
from kestrel.store.keys import Space
from kestrel.store.tasks import get_task
from kestrel.usecases.classify import Prediction, store_classified
from tests.api.http import Api
from tests.cli.conftest import Cli
from tests.conftest import OWNER_A
from tests.photos import distinct_photos


def _filled(cli: Cli) -> tuple[dict[str, object], list[str]]:
    """A task with three images stored by classify (margins 0.6, 0.1, 0.3) and one unpredicted."""
    server = cli.server
    api = Api(server.url, server.token)
    task = api.create_task("Snacks")
    labels = [api.create_label(name) for name in ("cake", "fruit")]
    for label in labels:
        api.post(f"task/{task['id']}/add-label/", {"label_id": label["id"]})
    space = Space.default_of(ensure_owner(server.ports.items, OWNER_A).id)
    stored = get_task(server.ports.items, space, task["id"])
    photos = distinct_photos(4, "coffee", side=48)
    ids = []
    for data, probs in zip(photos, ([0.8, 0.2], [0.45, 0.55], [0.65, 0.35]), strict=False):
        ranked = sorted(
            ({"id": label["id"], "name": label["name"], "prob": p} for label, p in zip(labels, probs, strict=True)),
            key=lambda label: -label["prob"],
        )
        prediction = Prediction(1, "model-1", ranked, None, category_margin(probs))
        ids.append(store_classified(server.ports, space, stored, data, prediction))
    ids.append(api.upload(photos[3])["id"])
    return task, [ids[1], ids[2], ids[0], ids[3]]


def test_review_prints_the_queue_most_uncertain_first(cli: Cli) -> None:
    task, order = _filled(cli)
    code, out, err = cli("review", "Snacks")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["#", "IMAGE", "ID"]
    table = [line.split() for line in lines[1 : 1 + len(order)]]
    assert [row[1] for row in table] == order
    assert table[0][2:5] == ["0.100", "fruit", "fruit"]
    assert "4 shown" in out and "3 predicted image(s) waiting; 0 reviewed so far" in out
    code, out, _ = cli("review", str(task["id"]), "--limit", "1")
    assert code == 0 and "1 shown" in out and order[1] not in out


def test_review_export_writes_the_whole_queue_as_csv(cli: Cli, tmp_path: Path) -> None:
    _, order = _filled(cli)
    target = tmp_path / "queue.csv"
    code, out, err = cli("review", "Snacks", "--export", str(target))
    assert code == 0, err
    assert f"Wrote 4 queued image(s) of 'Snacks' to {target}" in out
    with target.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["image_id"] for row in rows] == order
    assert [row["uncertainty"] for row in rows] == ["0.100", "0.300", "0.600", ""]
    assert (rows[0]["best_label"], rows[0]["second_label"], rows[0]["second_prob"]) == ("fruit", "cake", "0.450")
    assert rows[-1]["suggestion"] == "" and rows[-1]["version"] == ""


def test_review_refuses_what_it_cannot_do(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli("review", "No such task")
    assert code == 2 and "no task named 'No such task'" in err
    _filled(cli)
    code, _, err = cli("review", "Snacks", "--limit", "0")
    assert code == 2 and "--limit must be at least 1" in err
    code, _, err = cli("review", "Snacks", "--export", str(tmp_path / "missing" / "q.csv"))
    assert code == 2 and "cannot write" in err
