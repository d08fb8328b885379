"""The BlobStore contract: every test runs against the folder adapter and S3 (under moto)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
import requests

from kestrel.adapters.s3_blobs import S3BlobStore
from kestrel.adapters.url_signing import BLOB_ROUTE
from kestrel.ports.blobs import BlobNotFound, BlobStore

if TYPE_CHECKING:
    from tests.contract.conftest import BlobBackend

BLOB_PREFIX = "run-1/"  # the prefix the s3 fixture gives its store
BASE_URL = "http://127.0.0.1:8000/"


def test_put_and_get_round_trip(blobs: BlobStore) -> None:
    blobs.put("images/a.jpg", b"\xff\xd8\xff\x00binary\x00", "image/jpeg")
    blobs.put("empty", b"")
    assert blobs.get("images/a.jpg") == b"\xff\xd8\xff\x00binary\x00"
    assert blobs.get("empty") == b""


def test_put_replaces(blobs: BlobStore) -> None:
    blobs.put("k", b"one")
    blobs.put("k", b"two")
    assert blobs.get("k") == b"two"


def test_large_blob(blobs: BlobStore) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB
    blobs.put("models/big.onnx", data)
    assert blobs.get("models/big.onnx") == data


def test_get_of_a_missing_key_raises_blob_not_found(blobs: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        blobs.get("missing/key")
    blobs.put("dir/file", b"x")
    with pytest.raises(BlobNotFound):
        blobs.get("dir")  # a "folder" is not a blob


def test_exists_and_delete(blobs: BlobStore) -> None:
    assert not blobs.exists("a/b")
    blobs.put("a/b", b"x")
    assert blobs.exists("a/b")
    assert not blobs.exists("a")
    blobs.delete("a/b")
    assert not blobs.exists("a/b")
    with pytest.raises(BlobNotFound):
        blobs.get("a/b")
    blobs.delete("a/b")  # deleting a missing key is not an error
    blobs.delete("never/there")


KEYS = [
    "images/u1/a.jpg",
    "images/u1/b.jpg",
    "images/u2/c.jpg",
    "images-old/d.jpg",
    "imagesX",
    "models/t1/v1.onnx",
    "embeddings/lite0/ab/abcdef.npy",
]


@pytest.fixture
def stored(blobs: BlobStore) -> BlobStore:
    for key in KEYS:
        blobs.put(key, key.encode())
    return blobs


def test_list_keys_by_prefix(stored: BlobStore) -> None:
    # The port promises no order, so compare as sorted lists (which still catches duplicates).
    assert sorted(stored.list_keys("images/")) == ["images/u1/a.jpg", "images/u1/b.jpg", "images/u2/c.jpg"]
    assert sorted(stored.list_keys("images/u1/")) == ["images/u1/a.jpg", "images/u1/b.jpg"]
    assert sorted(stored.list_keys("images")) == sorted(k for k in KEYS if k.startswith("images"))
    assert sorted(stored.list_keys("")) == sorted(KEYS)
    assert sorted(stored.list_keys("nothing/")) == []
    assert sorted(stored.list_keys("models/t1/v1.onnx")) == ["models/t1/v1.onnx"]


def test_list_keys_after_delete(stored: BlobStore) -> None:
    stored.delete("images/u1/a.jpg")
    assert sorted(stored.list_keys("images/u1/")) == ["images/u1/b.jpg"]


def test_keys_with_odd_characters(blobs: BlobStore) -> None:
    key = "images/u 1/ä+b=c&d?.jpg"
    blobs.put(key, b"odd")
    assert blobs.get(key) == b"odd"
    assert blobs.exists(key)
    assert list(blobs.list_keys("images/u 1/")) == [key]


# -- URLs ------------------------------------------------------------------------------------


def _query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def _folder_parts(url: str) -> tuple[str, dict[str, str]]:
    """The blob key and query of a folder-adapter URL."""
    path = urlsplit(url).path
    assert path.startswith(BLOB_ROUTE)
    return unquote(path[len(BLOB_ROUTE) :]), _query(url)


def test_download_url(blob_backend: BlobBackend) -> None:
    store = blob_backend.store
    key = "images/u 1/a.jpg"
    store.put(key, b"pixels", "image/jpeg")
    url = store.download_url(key, 300, BASE_URL)
    if blob_backend.kind == "folder":
        signer = blob_backend.signer
        assert signer is not None
        assert url.startswith("http://127.0.0.1:8000/blobs/")
        got_key, query = _folder_parts(url)
        assert got_key == key
        assert signer.verify("GET", got_key, query["expires"], query["sig"])
        assert not signer.verify("GET", "images/u 1/b.jpg", query["expires"], query["sig"])  # other key
        assert not signer.verify("PUT", got_key, query["expires"], query["sig"])  # other method
        tampered = query["sig"][:-1] + ("1" if query["sig"].endswith("0") else "0")
        assert not signer.verify("GET", got_key, query["expires"], tampered)
        assert not signer.verify("GET", got_key, str(int(query["expires"]) + 1), query["sig"])  # longer life
        expired_key, expired = _folder_parts(store.download_url(key, -1, BASE_URL))
        assert not signer.verify("GET", expired_key, expired["expires"], expired["sig"])
    else:
        parts = urlsplit(url)
        assert parts.scheme == "https"
        assert parts.hostname is not None
        assert parts.hostname.split(".")[0] == blob_backend.bucket
        assert parts.hostname.endswith(".amazonaws.com")
        assert parts.path == "/" + quote(BLOB_PREFIX + key)
        query = _query(url)
        assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
        assert query["X-Amz-Expires"] == "300"
        assert query["X-Amz-SignedHeaders"] == "host"
        assert len(query["X-Amz-Signature"]) == 64
        assert "127.0.0.1" not in url  # base_url is for the local gateway only
        # moto serves presigned URLs to ``requests``, so fetch it for real.
        response = requests.get(url, timeout=10)
        assert response.status_code == 200
        assert response.content == b"pixels"


def test_upload_url(blob_backend: BlobBackend) -> None:
    store = blob_backend.store
    key = "uploads/u1/new.jpg"
    url = store.upload_url(key, 600, BASE_URL, max_bytes=1_000_000)
    if blob_backend.kind == "folder":
        signer = blob_backend.signer
        assert signer is not None
        got_key, query = _folder_parts(url)
        assert got_key == key
        assert query["max_bytes"] == "1000000"
        assert signer.verify("PUT", key, query["expires"], query["sig"], query["max_bytes"])
        assert not signer.verify("PUT", key, query["expires"], query["sig"], "2000000")  # limit raised
        assert not signer.verify("GET", key, query["expires"], query["sig"], query["max_bytes"])
    else:
        query = _query(url)
        assert urlsplit(url).path == "/" + quote(BLOB_PREFIX + key)
        assert query["X-Amz-Expires"] == "600"
        assert query["X-Amz-Signature"] != _query(store.download_url(key, 600, BASE_URL))["X-Amz-Signature"]
        response = requests.put(url, data=b"uploaded", timeout=10)
        assert response.status_code == 200
        assert store.get(key) == b"uploaded"


@pytest.mark.aws
def test_s3_keys_live_under_the_store_prefix(s3_client: Any) -> None:
    s3_client.create_bucket(Bucket="kestrel-prefix-test")
    store = S3BlobStore("kestrel-prefix-test", s3_client, prefix="env-a/")
    s3_client.put_object(Bucket="kestrel-prefix-test", Key="env-b/images/x", Body=b"other")
    store.put("images/y", b"mine", "image/png")
    head = s3_client.head_object(Bucket="kestrel-prefix-test", Key="env-a/images/y")
    assert head["ContentType"] == "image/png"
    assert list(store.list_keys("images/")) == ["images/y"]
    assert not store.exists("images/x")
    with pytest.raises(BlobNotFound):
        store.get("images/x")


def test_size_without_reading(blobs: BlobStore) -> None:
    blobs.put("sized/a.bin", b"x" * 1234)
    assert blobs.size("sized/a.bin") == 1234
    with pytest.raises(BlobNotFound):
        blobs.size("sized/missing.bin")
