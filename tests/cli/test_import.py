"""``kestrel import``: a folder tree into a task, over HTTP against a real local gateway, and a
re-run after an interruption (cut short, Ctrl-C, SIGKILL, the endpoint going away) that uploads
only the rest."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import kestrel.store.images as image_records
from kestrel.cli.client import EndpointError, KestrelClient, Upload
from tests.cli.conftest import (
    KESTREL,
    LABELS,
    NOT_AN_IMAGE,
    PER_LABEL,
    Cli,
    all_images,
    label_counts,
    one_line_error,
    task_named,
)
from tests.conftest import RunningServer

TOTAL = PER_LABEL * len(LABELS)  # images in the tree (plus one text file)
FULL = dict.fromkeys(LABELS, PER_LABEL)


def counts(out: str) -> dict[str, int]:
    """{'uploaded': n, 'skipped': n, 'failed': n} from an import summary."""
    found = dict(re.findall(r"^  (uploaded|skipped|failed) +(\d+)", out, flags=re.MULTILINE))
    assert set(found) == {"uploaded", "skipped", "failed"}, out
    return {key: int(value) for key, value in found.items()}


def assert_imported_once(server: RunningServer, task_name: str = "Pets") -> None:
    """Each photo is on the server once, with exactly its folder's label."""
    task = task_named(server, task_name)
    assert label_counts(server, task) == FULL
    images = all_images(server)
    assert len(images) == TOTAL
    files = sorted(image["meta_data"]["file"] for image in images)
    assert files == sorted(f"{label}/{n:02d}.jpg" for label in LABELS for n in range(PER_LABEL))
    for image in images:
        assert [label["name"] for label in image["labels"]] == [image["meta_data"]["file"].split("/")[0]]


def test_import_a_folder_tree_and_run_it_again(cli: Cli, photo_tree: Path, local_server: RunningServer) -> None:
    code, out, err = cli("import", str(photo_tree), "--task", "Pets")
    assert code == 1, err  # everything imported but one file, which is not an image
    assert counts(out) == {"uploaded": TOTAL, "skipped": 0, "failed": 1}
    assert re.search(rf"^    {NOT_AN_IMAGE}: not a usable image", out, flags=re.MULTILINE), out
    assert "created the task" in out and "created the label 'cat'" in out and "created the label 'coffee'" in out
    assert re.search(r"^cat +22$", out, flags=re.MULTILINE) and "Ready to train: kestrel train Pets --wait" in out
    assert f"{TOTAL + 1}/{TOTAL + 1}" in err  # the progress bar, on stderr
    task = task_named(local_server, "Pets")
    assert task["type"] == "multi_class"
    assert {label["type"] for label in task["labels"]} == {"category"}
    assert_imported_once(local_server)

    code, out, _ = cli("import", str(photo_tree), "--task", "Pets", "--workers", "8")
    assert code == 1
    assert counts(out) == {"uploaded": 0, "skipped": TOTAL, "failed": 1}
    assert "created" not in out
    assert_imported_once(local_server)


def test_import_reuses_labels_and_respects_the_task_type(
    cli: Cli, photo_tree: Path, local_server: RunningServer
) -> None:
    os.remove(photo_tree / NOT_AN_IMAGE)
    existing = local_server.request("POST", "recognition/v2/label/", json={"name": "cat"}).json()
    code, out, _ = cli("import", str(photo_tree), "--task", "Pets")
    assert code == 0
    assert "attached the existing label 'cat'" in out and "created the label 'coffee'" in out
    task = task_named(local_server, "Pets")
    assert existing["id"] in {label["id"] for label in task["labels"]}

    # The task is multi_class; asking for multi_label is refused before anything is sent.
    code, _, err = cli("import", str(photo_tree), "--task", "Pets", "--type", "multi_label")
    one_line_error(code, err, "multi_class, not multi_label")

    # A multi_label task takes tag labels: new ones, since 'cat' and 'coffee' are categories.
    # The photos are already stored: they are skipped, and get the tags.
    code, out, _ = cli("import", str(photo_tree), "--task", "Tags", "--type", "multi_label")
    assert code == 0 and counts(out) == {"uploaded": 0, "skipped": TOTAL, "failed": 0}
    tags = task_named(local_server, "Tags")
    assert tags["type"] == "multi_label"
    assert {label["type"] for label in tags["labels"] if not label["negative_for_task"]} == {"tag"}
    negative = {label["name"] for label in tags["labels"] if label["negative_for_task"]}
    assert {name: n for name, n in label_counts(local_server, tags).items() if name not in negative} == FULL


def test_an_import_cut_short_then_the_whole_tree(
    cli: Cli, photo_tree: Path, tmp_path: Path, local_server: RunningServer
) -> None:
    partial = tmp_path / "partial"
    for label, keep in (("cat", 9), ("coffee", 5)):
        (partial / label).mkdir(parents=True)
        for n in range(keep):
            shutil.copy(photo_tree / label / f"{n:02d}.jpg", partial / label)
    code, out, _ = cli("import", str(partial), "--task", "Pets")
    assert code == 0 and counts(out) == {"uploaded": 14, "skipped": 0, "failed": 0}
    assert "Not ready to train" in out and "'cat' needs 11 more" in out

    code, out, _ = cli("import", str(photo_tree), "--task", "Pets")
    assert code == 1 and counts(out) == {"uploaded": TOTAL - 14, "skipped": 14, "failed": 1}
    assert_imported_once(local_server)


def test_the_endpoint_going_away_mid_import_stops_it_and_a_rerun_finishes(
    cli: Cli, photo_tree: Path, local_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_upload = KestrelClient.upload_image
    calls = {"n": 0}

    def failing_after_ten(self: KestrelClient, *args: Any, **kwargs: Any) -> Upload:
        calls["n"] += 1
        if calls["n"] > 10:
            raise EndpointError(f"cannot reach the Kestrel API at {self.endpoint}: connection reset")
        return real_upload(self, *args, **kwargs)

    monkeypatch.setattr(KestrelClient, "upload_image", failing_after_ten)
    code, out, err = cli("import", str(photo_tree), "--task", "Pets", "--workers", "1")
    assert code == 2
    assert (
        err.strip().splitlines()[-1]
        == f"kestrel: error: cannot reach the Kestrel API at {local_server.url}: connection reset"
    )
    assert "Traceback" not in err
    assert counts(out) == {"uploaded": 10, "skipped": 0, "failed": 0}  # the summary of what was done
    assert calls["n"] == 11  # the rest were not even tried

    monkeypatch.setattr(KestrelClient, "upload_image", real_upload)
    code, out, _ = cli("import", str(photo_tree), "--task", "Pets")
    assert code == 1 and counts(out) == {"uploaded": TOTAL - 10, "skipped": 10, "failed": 1}
    assert_imported_once(local_server)


def _settled_count(server: RunningServer) -> int:
    """The number of stored images once uploads still under way on the server have ended."""
    previous = -1
    while True:
        count = len(all_images(server))
        if count == previous:
            return count
        previous = count
        time.sleep(0.5)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "sigkill"])
def test_an_import_interrupted_midway_then_run_again(
    signum: int,
    cli: Cli,
    photo_tree: Path,
    local_server: RunningServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Slow the server down (it runs in this process) so the import is surely caught midway.
    real_add = image_records.add_image

    def slow_add(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.05)
        return real_add(*args, **kwargs)

    monkeypatch.setattr(image_records, "add_image", slow_add)
    env = {**os.environ, "KESTREL_ENDPOINT": local_server.url, "KESTREL_TOKEN": local_server.token}
    process = subprocess.Popen(
        [KESTREL, "import", str(photo_tree), "--task", "Pets", "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while len(all_images(local_server)) < 5:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the import did not start"
            time.sleep(0.02)
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    before = _settled_count(local_server)
    assert 5 <= before < TOTAL
    if signum == signal.SIGINT:
        assert process.returncode == 130, err
        assert "Traceback" not in err
        assert "interrupted after" in err and "run the same command again" in err
        assert counts(out)["uploaded"] == before  # in-flight uploads were waited for and counted
    else:
        assert process.returncode == -signal.SIGKILL

    monkeypatch.setattr(image_records, "add_image", real_add)
    code, out, _ = cli("import", str(photo_tree), "--task", "Pets")
    assert code == 1
    assert counts(out) == {"uploaded": TOTAL - before, "skipped": before, "failed": 1}
    assert_imported_once(local_server)


def _noise_png(seed: int, height: int = 1250) -> bytes:
    """A PNG that does not compress: about 5 MB, 7 MB in base64, over one request's limit."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 255, (height, 1400, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def test_large_images_go_through_upload_urls(
    cli: Cli, tmp_path: Path, local_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kestrel.cli.client as client_module

    root = tmp_path / "large"
    for label, seed in (("cat", 1), ("coffee", 2)):
        (root / label).mkdir(parents=True)
        (root / label / "big.png").write_bytes(_noise_png(seed))
    puts: list[int] = []
    real_put = KestrelClient._put_upload

    def counting_put(self: KestrelClient, data: bytes) -> str:
        puts.append(len(data))
        return real_put(self, data)

    monkeypatch.setattr(KestrelClient, "_put_upload", counting_put)
    code, out, err = cli("import", str(root / ".." / "large"), "--task", "Big", "--workers", "1")
    assert code == 0, out + err
    assert counts(out) == {"uploaded": 2, "skipped": 0, "failed": 0} and len(puts) == 2

    # A client that thinks it may send them inline meets the server's 413 and falls back.
    (root / "cat" / "bigger.png").write_bytes(_noise_png(3))
    monkeypatch.setattr(client_module, "MAX_INLINE_BODY", 10**9)
    code, out, err = cli("import", str(root), "--task", "Big")
    assert code == 0, out + err
    assert counts(out) == {"uploaded": 1, "skipped": 2, "failed": 0} and len(puts) == 5
    task = task_named(local_server, "Big")
    assert label_counts(local_server, task) == {"cat": 2, "coffee": 1}
    assert len(all_images(local_server)) == 3
