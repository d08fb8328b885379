"""Pieces of the CLI that need no Kestrel: endpoint parsing, retries, batching, tables, and the
exit status of a training that fails."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kestrel.cli.classify import BATCH_RECORDS, batches
from kestrel.cli.client import MAX_INLINE_BODY, ApiError, EndpointError, KestrelClient, api_root
from kestrel.cli.common import quote, render_table
from kestrel.cli.main import main
from kestrel.cli.versions import evaluation_text


@pytest.mark.parametrize(
    ("given", "root"),
    [
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000/recognition/v2/"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/recognition/v2/"),
        ("localhost:8000", "http://localhost:8000/recognition/v2/"),
        ("http://localhost:8000/recognition/v2", "http://localhost:8000/recognition/v2/"),
        (
            "https://abc.execute-api.eu-west-1.amazonaws.com/prod/",
            "https://abc.execute-api.eu-west-1.amazonaws.com/prod/recognition/v2/",
        ),
        (" https://api.example.com/prod/recognition/v2/ ", "https://api.example.com/prod/recognition/v2/"),
    ],
)
def test_api_root_accepts_what_users_type(given: str, root: str) -> None:
    assert api_root(given) == root


@pytest.mark.parametrize("given", ["", "ftp://example.com/", "http://"])
def test_api_root_refuses_what_is_not_an_http_url(given: str) -> None:
    with pytest.raises(EndpointError):
        api_root(given)


class _Flaky(http.server.BaseHTTPRequestHandler):
    """Answers 503 to the first request of each path, then 200 with a JSON body."""

    seen: set[str] = set()
    hits: list[str] = []

    def _answer(self) -> None:
        self.hits.append(f"{self.command} {self.path}")
        first = self.path not in self.seen
        self.seen.add(self.path)
        status, body = (503, {"message": "Service Unavailable"}) if first else (200, {"ok": True})
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[str]:
    _Flaky.seen, _Flaky.hits = set(), []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_busy_answers_are_retried_but_a_train_request_is_not(flaky: str) -> None:
    client = KestrelClient(flaky, "token", backoff=0)
    assert client.call("GET", "task/x/") == {"ok": True}
    assert _Flaky.hits == ["GET /recognition/v2/task/x/"] * 2
    with pytest.raises(ApiError) as caught:
        client.train("t1")  # a second POST could start a second version
    assert caught.value.status == 503 and str(caught.value) == "Service Unavailable"
    assert _Flaky.hits[2:] == ["POST /recognition/v2/task/t1/train/"]


def test_batches_hold_at_most_ten_records_and_fit_one_request(tmp_path: Path) -> None:
    small = []
    for n in range(23):
        path = tmp_path / f"{n:02d}.jpg"
        path.write_bytes(b"x" * 100)
        small.append((path.name, path))
    assert [len(batch) for batch in batches(small)] == [BATCH_RECORDS, BATCH_RECORDS, 3]

    big = []
    for n in range(4):
        path = tmp_path / f"big{n}.jpg"
        path.write_bytes(b"x" * 1_500_000)  # 2 MB in base64: two per request
        big.append((path.name, path))
    grouped = list(batches(big))
    assert [len(batch) for batch in grouped] == [2, 2]
    assert all(sum(encoded for _, _, encoded in batch) <= MAX_INLINE_BODY for batch in grouped)


def test_tables_and_quoting() -> None:
    table = render_table(("NAME", "N"), [("cat", "5"), ("coffee", "120")], right=(1,))
    assert table.splitlines() == ["NAME      N", "cat       5", "coffee  120"]
    assert quote("Pets") == "Pets" and quote("Cats and coffee") == "'Cats and coffee'"
    assert quote("it's") == "'it'\\''s'"


def test_the_evaluation_of_a_multi_label_version_names_labels() -> None:
    task = {"name": "Tags", "labels": [{"id": "a", "name": "sky"}, {"id": "b", "name": "sea"}]}
    model = {
        "version": 3,
        "accuracy": 0.75,
        "metrics": {
            "accuracy": 0.75,
            "micro_f1": 0.8,
            "per_label": {
                "a": {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 4},
                "b": {"precision": 0.8, "recall": 1.0, "f1": 0.8889, "support": 4},
            },
            "misclassified": [{"image_id": "img-1", "labels": ["a"], "predicted": []}],
            "counts": {"images_train": 30, "images_test": 8},
            "training_seconds": 4.25,
        },
    }
    text = evaluation_text(model, task)
    assert (
        text.splitlines()[0] == "Version 3 of 'Tags': accuracy 75.0% on 8 test images (30 trained on), trained in 4.2 s"
    )
    assert "Micro-averaged F1 over all tags: 0.800" in text
    rows = [line.split() for line in text.splitlines()]
    assert ["LABEL", "PRECISION", "RECALL", "F1", "SUPPORT"] in rows
    assert ["sky", "1.000", "0.500", "0.667", "4"] in rows and ["sea", "0.800", "1.000", "0.889", "4"] in rows
    assert "Confusion matrix" not in text  # multi_label has none
    assert "  img-1: sky; predicted no tag" in text


def test_the_evaluation_counts_every_mistake_when_the_summary_keeps_the_first_100() -> None:
    task = {"name": "Pets", "labels": [{"id": "a", "name": "cat"}, {"id": "b", "name": "dog"}]}
    mistakes = [{"image_id": f"img-{n}", "label": "a", "predicted": "b", "prob": 0.6} for n in range(100)]
    model = {
        "version": 1,
        "accuracy": 0.5,
        "metrics": {
            "per_label": {"a": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 9}},
            "misclassified": mistakes,
            "misclassified_total": 5000,
            "truncated": True,
        },
    }
    lines = evaluation_text(model, task).splitlines()
    assert "Misclassified test images: 5000" in lines
    assert "  img-9: cat, taken for dog (0.600)" in lines and "  img-10: cat, taken for dog (0.600)" not in lines
    assert lines[-1] == "  ... and 4990 more (GET model/{id}/card/ and the console have them all)"


def test_a_failed_training_exits_1_with_its_reason(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    task = {"id": "t1", "name": "Pets", "labels": [], "production_version": -1}
    states = iter(["IN_TRAINING", "FAILED"])

    def model(self: KestrelClient, model_id: str) -> dict[str, Any]:
        status = next(states)
        reason = "label 'cat' has only 3 usable images\nafter decoding" if status == "FAILED" else None
        return {"id": model_id, "version": 1, "train_status": status, "failure_reason": reason}

    monkeypatch.setattr(KestrelClient, "tasks", lambda self, search=None: [task])
    monkeypatch.setattr(
        KestrelClient, "train", lambda self, task_id: {"id": "m1", "version": 1, "train_status": "WAITING"}
    )
    monkeypatch.setattr(KestrelClient, "model", model)
    code = main(["train", "Pets", "--wait", "--interval", "0", "--endpoint", "http://kestrel.invalid/", "--token", "t"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == "Training version 1 of 'Pets' (WAITING).\n"
    assert err.splitlines()[-1] == (
        "kestrel: training version 1 failed: label 'cat' has only 3 usable images after decoding"
    )
    assert "Traceback" not in err


def test_the_evaluation_shows_the_interval_the_sentence_and_the_cross_validated_accuracy() -> None:
    task = {"name": "Pets", "labels": [{"id": "a", "name": "cat"}, {"id": "b", "name": "dog"}]}
    sentence = (
        "accuracy measured on 8 test images by a model trained on the other 32; the deployed model was "
        "then trained on all 40"
    )
    model = {
        "version": 2,
        "accuracy": 0.875,
        "accuracy_interval": [0.529, 0.9776],
        "cross_validated_accuracy": 0.925,
        "cross_validated_accuracy_interval": [0.8014, 0.9742],
        "evaluation_method": "holdout+cross_validation",
        "evaluation_summary": sentence,
        "metrics": {
            "per_label": {
                "a": {"precision": 1.0, "recall": 0.75, "f1": 0.8571, "support": 4},
                "b": {"precision": 0.8, "recall": 1.0, "f1": 0.8889, "support": 4},
            },
            "cross_validation": {"folds": 5, "per_label_recall": {"a": 0.9, "b": 0.95}},
            "counts": {"images_train": 32, "images_test": 8},
        },
    }
    lines = evaluation_text(model, task).splitlines()
    assert (
        lines[0] == "Version 2 of 'Pets': accuracy 87.5% (95 % interval 52.9%-97.8%) on 8 test images (32 trained on)"
    )
    assert lines[1] == "A" + sentence[1:] + "."
    assert lines[2] == "Cross-validated accuracy: 92.5% (95 % interval 80.1%-97.4%)"
    rows = [line.split() for line in lines]
    assert ["LABEL", "PRECISION", "RECALL", "F1", "SUPPORT", "CV", "RECALL"] in rows
    assert ["cat", "1.000", "0.750", "0.857", "4", "0.900"] in rows


def test_the_evaluation_lists_the_possibly_mislabelled_images() -> None:
    task = {"name": "Pets", "labels": [{"id": "a", "name": "cat"}, {"id": "b", "name": "dog"}]}
    entry = {"image_id": "img-1", "labels": ["a"], "suggested": ["b"], "probs": {"a": 0.05, "b": 0.95}, "margin": 0.9}
    model = {"version": 1, "accuracy": 1.0, "possibly_mislabelled": [entry], "possibly_mislabelled_total": 1}
    lines = evaluation_text(model, task).splitlines()
    assert lines[-2:] == [
        "Possibly mislabelled training images: 1",
        "  img-1: labelled cat; the model says dog (margin 0.900)",
    ]
    assert "mislabelled" not in evaluation_text({"version": 1, "accuracy": 1.0}, task)  # trained before the finder
