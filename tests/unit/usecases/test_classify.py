"""The classify use case without HTTP: version choice, the TRAINED check, bad records, thresholds
of nothing but the model, store_images, and how the model runs (the shared backbone, then the
version's head: equal to the fused export, also for a version without a head file; a missing
backbone refused). The model is a real training (the training job's ``train`` on the store's
images), made once for the module."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from kestrel.composition import build_ports
from kestrel.domain.errors import Conflict, InvalidInput, NotFound
from kestrel.store import images, lifecycle
from kestrel.store.version_files import CARD_FILE, HEAD_FILE, MODEL_FILE, model_prefix
from kestrel.store.versions import get_model_by_version
from kestrel.training.job import train
from kestrel.usecases import classify as classify_module
from kestrel.usecases.classify import MAX_RECORDS, PREDICTION_KEY, ClassifyCommand, classify, serving
from kestrel.vision.heads import ServedHead
from kestrel.vision.preprocess import preprocess
from kestrel.vision.session import create_session
from tests.conftest import local_settings
from tests.photos import photo
from tests.unit.usecases.conftest import Owned, trainable

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Owned:
    owned = trainable(build_ports(local_settings(Path(tmp_path_factory.mktemp("usecase")) / "data")))
    items = owned.ports.items
    model = lifecycle.create_version(items, owned.space, owned.task.id)
    ref = lifecycle.JobRef(owned.space, owned.task.id, model.id)
    result = train(lifecycle.build_manifest(items, ref), owned.ports.blobs, say=lambda _: None)
    prefix = model_prefix(owned.owner_id, model.id)
    owned.ports.blobs.put(prefix + MODEL_FILE, result.model)
    owned.ports.blobs.put(prefix + HEAD_FILE, result.head)
    owned.ports.blobs.put(prefix + CARD_FILE, json.dumps(result.card).encode())
    assert lifecycle.mark_trained(items, ref, float(result.card["accuracy"]), result.card)
    return owned


def _record(sample: str, side: int = 90, **extra: object) -> dict[str, object]:
    return {"_base64": base64.b64encode(photo(sample, side)).decode(), **extra}


def _command(owned: Owned, records: list[dict[str, object]], **options: object) -> ClassifyCommand:
    return ClassifyCommand(space=owned.space, task_id=owned.task.id, records=records, **options)  # type: ignore[arg-type]


def test_the_production_version_classifies_and_bad_records_fail_alone(trained: Owned) -> None:
    done = classify(trained.ports, _command(trained, [_record("chelsea", mine=1), {"_base64": "bm90IGFuIGltYWdl"}]))
    assert done.version == 1 and done.task_id == trained.task.id
    good, bad = done.records
    assert (good.code, good.best_label["name"] if good.best_label else None) == (200, "cat")
    assert good.echo == {"mine": 1} and good.descriptor is None and good.stored_image_id is None
    assert [score["prob"] for score in good.labels or []] == sorted(
        (s["prob"] for s in good.labels or []), reverse=True
    )
    assert bad.code == 400 and bad.labels is None and "not a usable image" in bad.text


def test_the_descriptor_comes_only_when_asked(trained: Owned) -> None:
    [record] = classify(trained.ports, _command(trained, [_record("coffee")], descriptor=True)).records
    assert record.descriptor is not None and len(record.descriptor) > 100


def test_an_unknown_or_untrained_version_is_refused(trained: Owned) -> None:
    with pytest.raises(NotFound, match="no model version 9"):
        classify(trained.ports, _command(trained, [_record("chelsea")], version=9))
    waiting = lifecycle.create_version(trained.ports.items, trained.space, trained.task.id)
    try:
        with pytest.raises(InvalidInput, match="version 2 is WAITING, not TRAINED"):
            classify(trained.ports, _command(trained, [_record("chelsea")], version=2))
    finally:
        ref = lifecycle.JobRef(trained.space, trained.task.id, waiting.id)
        lifecycle.mark_failed(trained.ports.items, ref, "test over", mail=False)


def test_records_are_bounded(trained: Owned) -> None:
    with pytest.raises(InvalidInput, match=f"1 to {MAX_RECORDS}"):
        classify(trained.ports, _command(trained, [_record("chelsea", 40)] * (MAX_RECORDS + 1)))
    with pytest.raises(InvalidInput, match=f"1 to {MAX_RECORDS}"):
        classify(trained.ports, _command(trained, []))


def test_store_images_keeps_each_good_record_once_with_its_prediction(trained: Owned) -> None:
    ports, owner = trained.ports, trained.space
    records = [_record("coffee", 101), _record("chelsea", 101), {"_url": ""}]
    done = classify(ports, _command(trained, records, store_images=True))
    coffee, cat, bad = done.records
    assert coffee.stored_image_id and cat.stored_image_id and bad.stored_image_id is None
    kept = images.get_image(ports.items, owner, coffee.stored_image_id)
    assert kept.label_ids == {}
    prediction = kept.meta_data[PREDICTION_KEY]
    assert prediction["version"] == 1 and prediction["best_label"]["name"] == "coffee"
    assert prediction["prob"] == coffee.best_label["prob"] if coffee.best_label else False
    again = classify(ports, _command(trained, [_record("coffee", 101)], store_images=True))
    assert again.records[0].stored_image_id == coffee.stored_image_id


PHOTOS = ("chelsea", "coffee", "rocket", "astronaut")


def _prefix(owned: Owned) -> str:
    version = get_model_by_version(owned.ports.items, owned.space, owned.task.id, 1)
    return model_prefix(owned.owner_id, version.id)


def _served(owned: Owned) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (in the card's label order) and descriptors classify answers for PHOTOS."""
    done = classify(owned.ports, _command(owned, [_record(name, 200) for name in PHOTOS], descriptor=True))
    order = [label["id"] for label in json.loads(owned.ports.blobs.get(_prefix(owned) + CARD_FILE))["labels"]]
    probabilities = [[{s["id"]: s["prob"] for s in r.labels or []}[i] for i in order] for r in done.records]
    return np.array(probabilities), np.array([r.descriptor for r in done.records])


@pytest.fixture
def fresh_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process whose classify has loaded nothing yet (put back after the test)."""
    monkeypatch.setattr(classify_module, "_serving", None)


def test_classify_equals_the_fused_export_to_1e_5(trained: Owned, fresh_serving: None) -> None:
    fused = create_session(trained.ports.blobs.get(_prefix(trained) + MODEL_FILE))
    batch = np.stack([preprocess(photo(name, 200)) for name in PHOTOS])
    probabilities, descriptors = fused.run(["probabilities", "descriptor"], {"image": batch})
    served, served_descriptors = _served(trained)
    assert np.abs(served - probabilities).max() <= 1e-5  # the answers carry 6 decimals
    assert np.abs(served_descriptors - descriptors).max() <= 1e-5
    assert serving(trained.ports).heads.loads == 1 and len(serving(trained.ports).backbones.loaded) == 1


def test_the_head_cache_loads_each_version_once(trained: Owned, fresh_serving: None) -> None:
    for _ in range(3):
        classify(trained.ports, _command(trained, [_record("chelsea", 60)]))
    heads = serving(trained.ports).heads
    assert (heads.loads, len(heads)) == (1, 1) and 0 < heads.bytes < 100_000


def test_a_version_without_a_head_file_is_served_from_its_onnx(trained: Owned, fresh_serving: None) -> None:
    """Versions trained before head files: the head is read out of the fused file, once."""
    with_file = _served(trained)
    key = _prefix(trained) + HEAD_FILE
    head_file = trained.ports.blobs.get(key)
    trained.ports.blobs.delete(key)
    classify_module._serving = None
    try:
        without = _served(trained)
        assert np.abs(without[0] - with_file[0]).max() <= 1e-6
        assert np.abs(without[1] - with_file[1]).max() <= 1e-6
        assert serving(trained.ports).heads.loads == 1
    finally:
        trained.ports.blobs.put(key, head_file)


def test_a_head_whose_backbone_is_missing_is_refused_by_name(trained: Owned, fresh_serving: None) -> None:
    key = _prefix(trained) + HEAD_FILE
    head_file = trained.ports.blobs.get(key)
    missing = "efficientnet-lite0-ffffffffffffffff"
    trained.ports.blobs.put(key, replace(ServedHead.from_bytes(head_file), backbone_id=missing).to_bytes())
    try:
        with pytest.raises(Conflict) as refused:
            classify(trained.ports, _command(trained, [_record("chelsea")]))
        detail = refused.value.detail
        assert f"trained on backbone '{missing}'" in detail and "train the task again" in detail
        assert "version 1 of task 'Cats and coffee'" in detail
    finally:
        trained.ports.blobs.put(key, head_file)
