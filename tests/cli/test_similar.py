"""``kestrel similar``: each file's nearest training images of a trained task, as a table or
JSON; a file the API cannot read gets its own row; an untrained task is one line, status 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kestrel.local.worker import LocalWorker
from tests.cli.conftest import NOT_AN_IMAGE, Cli, one_line_error, task_named
from tests.conftest import RunningServer
from tests.photos import photo

pytestmark = pytest.mark.slow


def test_similar_prints_each_files_nearest_training_images(
    cli: Cli, photo_tree: Path, tmp_path: Path, local_server: RunningServer, worker: LocalWorker
) -> None:
    cli("import", str(photo_tree), "--task", "Pets")
    code, _, err = cli("similar", "Pets", str(photo_tree / "cat" / "00.jpg"))
    one_line_error(code, err, "has no version in production yet")
    code, _, err = cli("train", "Pets", "--wait", "--interval", "0.2")
    assert code == 0, err
    images = local_server.request("GET", "recognition/v2/training-image/?page_size=100").json()["results"]
    ids = {image["id"]: [label["name"] for label in image["labels"]] for image in images}

    new = tmp_path / "new"
    new.mkdir()
    (new / "kitty.jpg").write_bytes(photo("chelsea", 300))
    (new / "espresso.jpg").write_bytes(photo("coffee", 300))
    code, out, _ = cli("similar", "Pets", str(new), "-k", "3")
    assert code == 0
    for name, label in (("espresso.jpg", "coffee"), ("kitty.jpg", "cat")):
        rows = re.findall(rf"^{re.escape(str(new / name))} +(\d) +(0\.\d{{3}}) +(\S+) +(\w+)$", out, re.MULTILINE)
        assert [row[0] for row in rows] == ["1", "2", "3"], out
        assert all(row[3] == label and ids[row[2]] == [label] for row in rows), out  # real ids, their labels

    # A training image finds itself first; a text file gets its reason on its own row.
    own = photo_tree / "cat" / "00.jpg"
    code, out, _ = cli(
        "similar",
        task_named(local_server, "Pets")["id"],
        str(own),
        str(photo_tree / NOT_AN_IMAGE),
        "--format",
        "json",
        "-k",
        "2",
        "--version",
        "1",
    )
    assert code == 1
    found, text = json.loads(out)
    assert found["file"] == str(own) and found["error"] is None and len(found["similar"]) == 2
    assert found["similar"][0]["similarity"] > 0.999 and found["similar"][0]["labels"] == ["cat"]
    assert text["similar"] == [] and "not a usable image" in text["error"]
    code, _, err = cli("similar", "Pets", str(own), "-k", "101")
    one_line_error(code, err, "-k must be 1 to 100")
