"""The folder blob store's own guards (what the shared contract cannot ask of S3 too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kestrel.adapters.folder_blobs import FolderBlobStore
from kestrel.adapters.url_signing import UrlSigner
from kestrel.ports.blobs import BlobNotFound


@pytest.fixture
def store(tmp_path: Path) -> FolderBlobStore:
    return FolderBlobStore(tmp_path / "blobs", UrlSigner(b"k" * 32))


def test_a_key_with_a_nul_byte_names_no_blob(store: FolderBlobStore) -> None:
    # No file name can hold one; before, the OS call raised ValueError (a 500 through upload_id).
    for read in (store.get, store.size):
        with pytest.raises(BlobNotFound):
            read("uploads/owner/\x00abc")


def test_a_key_cannot_leave_the_folder(store: FolderBlobStore) -> None:
    with pytest.raises(ValueError, match="outside the store"):
        store.put("../escaped", b"x")
