"""Free-form values: single-line names, bounded meta_data, depth-bomb bodies, safe mail headers,
failure reasons without internals."""

from __future__ import annotations

import email
import json
from email import policy
from pathlib import Path

import pytest

from kestrel.adapters.outbox_mail import OutboxMailer
from kestrel.api.body import normalise_body
from kestrel.config import MailSettings
from kestrel.domain.entities import Model, TrainStatus
from kestrel.domain.errors import InvalidInput
from kestrel.domain.free_form import (
    MAX_META_BYTES,
    json_text_depth,
    meta_data_problem,
    nesting_depth,
    one_line,
    single_line_problem,
)
from kestrel.domain.training_rules import UNEXPECTED_FAILURE
from kestrel.flow import mails
from kestrel.flow.reasons import for_people
from kestrel.ports.blobs import BlobNotFound
from kestrel.ports.mail import Mail
from kestrel.training.failures import IMAGE_DELETED, reason_for
from kestrel.training.job import TrainingError
from kestrel.vision.imagefile import ImageRejected

EVIL = "evil\r\nBcc: x"


def nested(levels: int) -> dict[str, object]:
    value: dict[str, object] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def test_names_must_be_single_lines() -> None:
    assert single_line_problem("Cats and coffee ☕") is None
    for bad in (EVIL, "a\nb", "tab\there", "nul\x00", "del\x7f", "line\u2028sep", "c1\x85"):
        problem = single_line_problem(bad)
        assert problem is not None and "single line" in problem and "U+" in problem, bad


def test_one_line_makes_any_stored_value_header_safe() -> None:
    assert one_line(EVIL) == "evil Bcc: x"
    assert one_line("x" * 500, 10) == "x" * 9 + "…"
    assert "\n" not in one_line("\n".join(["a"] * 100))


def test_depth_is_counted_without_recursion() -> None:
    assert nesting_depth({}, 8) == 1
    assert nesting_depth({"a": [1, {"b": 2}]}, 8) == 3
    assert nesting_depth("text", 8) == 0
    bomb = nested(200_000)  # would exhaust the stack of any recursive walk
    assert nesting_depth(bomb, 8) == 9  # stops counting once over the limit


def test_json_text_depth_reads_brackets_outside_strings_only() -> None:
    assert json_text_depth("[" * 40 + "]" * 40, 32) == 33  # stops once past the limit
    assert json_text_depth(json.dumps({"s": "[" * 100 + '\\"' + "{" * 100}), 32) == 1
    flat = "[" + ",".join(["1"] * 100_000) + "]"
    assert json_text_depth(flat, 32) <= 32
    nested_records = json.dumps({"records": [{"_url": "x"}] * 50})  # many brackets, shallow
    assert json_text_depth(nested_records, 32) == 3


def test_meta_data_bounds() -> None:
    assert meta_data_problem(None) is None
    assert meta_data_problem(nested(8)) is None
    deep = meta_data_problem(nested(9))
    assert deep is not None and "8 levels" in deep
    assert meta_data_problem({"x": "y" * (MAX_META_BYTES - 10)}) is None
    big = meta_data_problem({"x": "y" * MAX_META_BYTES})
    assert big is not None and "16,384 bytes" in big
    assert meta_data_problem({"x": float("nan")}) is not None  # not JSON: cannot be stored as such


def _event(content_type: str, body: str) -> dict[str, object]:
    return {"httpMethod": "POST", "headers": {"Content-Type": content_type}, "body": body, "isBase64Encoded": False}


@pytest.mark.parametrize("levels", [40, 100_000])
def test_depth_bomb_bodies_are_refused_as_input(levels: int) -> None:
    text = "[" * levels + "]" * levels
    with pytest.raises(InvalidInput, match="nested more than 32 levels"):
        normalise_body(_event("application/json", json.dumps({"name": "x"})[:-1] + f', "z": {text}}}'))
    with pytest.raises(InvalidInput, match="form field 'meta_data'"):
        normalise_body(_event("application/x-www-form-urlencoded", f"meta_data={text}"))
    boundary = "b0undary"
    multipart = f'--{boundary}\r\nContent-Disposition: form-data; name="meta_data"\r\n\r\n{text}\r\n--{boundary}--\r\n'
    with pytest.raises(InvalidInput, match="form field 'meta_data'"):
        normalise_body(_event(f"multipart/form-data; boundary={boundary}", multipart))


def test_a_shallow_json_body_passes_unchanged() -> None:
    event = _event("application/json", json.dumps({"meta_data": nested(8)}))
    assert normalise_body(event) is event


def _model(name: str) -> Model:
    return Model(
        id="m",
        owner_id="o",
        task_id="t",
        task_name=name,
        version=2,
        train_status=TrainStatus.FAILED,
        created="2026-11-26T00:00:00Z",
    )


def test_a_stored_bad_name_cannot_break_a_mail(tmp_path: Path) -> None:
    mailer = OutboxMailer(tmp_path, MailSettings())
    for mail in (
        mails.started("owner@example.com", _model(EVIL), 40, "http://localhost:8000/"),
        mails.failed("owner@example.com", _model(EVIL), "an image was deleted", "http://localhost:8000/"),
        Mail(to="owner@example.com\r\nBcc: victim@example.com", subject=EVIL, body="b"),
    ):
        mailer.send(mail)
    written = sorted(tmp_path.glob("*.eml"))
    assert len(written) == 3
    for path in written:
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert message["Bcc"] is None  # no header was smuggled in
        assert "\n" not in str(message["Subject"]) and "\r" not in str(message["Subject"])
        assert "\n" not in str(message["To"])


def test_training_failures_are_told_for_people() -> None:
    assert reason_for(BlobNotFound("images/owner-1/image-2/original")) == IMAGE_DELETED
    assert "train again" in IMAGE_DELETED
    assert reason_for(TrainingError("need images in both parts")) == "need images in both parts"
    unreadable = reason_for(ImageRejected("the image data is damaged or truncated"))
    assert "damaged" in unreadable and "train again" in unreadable
    assert reason_for(KeyError("labels")) == UNEXPECTED_FAILURE
    assert reason_for(MemoryError()) != UNEXPECTED_FAILURE


@pytest.mark.parametrize(
    "raw",
    [
        "BlobNotFound: images/0b1c/9f8e/original",
        'Traceback (most recent call last):\n  File "/x/job.py", line 3, in train\nKeyError: 1',
        'the training process exited with code 1: File "/opt/x.py", line 9, in <module>',
        "the job's model archive is missing: s3://kestrel-local/jobs/abc/output/model.tar.gz",
    ],
)
def test_failure_reasons_never_carry_internals(raw: str) -> None:
    told = for_people(raw)
    assert told == UNEXPECTED_FAILURE
    assert "Traceback" not in told and "s3://" not in told and "Error" not in told


def test_plain_reasons_pass_and_class_prefixes_go() -> None:
    assert for_people("an image was deleted while the model trained; train again") == (
        "an image was deleted while the model trained; train again"
    )
    assert for_people("CapacityError: Unable to provision requested ML compute capacity") == (
        "Unable to provision requested ML compute capacity"
    )
    assert "\n" not in for_people("line one\nline two")
