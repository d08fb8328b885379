"""Blob store on an S3 bucket: the production adapter.

Keys live under an optional ``prefix`` in the bucket (so several deployments or test runs can
share one), which the store adds on the way in and strips on the way out.

URLs are SigV4-presigned against the bucket, so ``base_url`` is ignored. Two limits to know:

* A presigned URL stops working when the credentials that signed it expire, whichever comes
  first; under a Lambda role that is the role session's end, not only ``expires_in``.
* A presigned PUT cannot carry a size limit (only a presigned POST policy has
  ``content-length-range``, and the port promises a URL for one plain HTTP PUT). So
  ``upload_url`` does not enforce ``max_bytes`` at upload time; the server enforces it when the
  client registers the upload, by checking the object's size (HeadObject ContentLength) and
  deleting an oversized object before accepting it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError, IncompleteReadError, ResponseStreamingError

from kestrel.adapters.aws_clients import aws_client
from kestrel.ports.blobs import BlobNotFound
from kestrel.ports.errors import Unavailable

_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


def make_s3_client(**kwargs: Any) -> Any:
    """An S3 client fit for presigning: SigV4 (botocore still presigns SigV2 by default, which
    newer regions refuse) and virtual-hosted addressing, which works in every region; with the
    retries and timeouts of every Kestrel client (:mod:`kestrel.adapters.aws_clients`)."""
    return aws_client("s3", Config(signature_version="s3v4", s3={"addressing_style": "virtual"}), **kwargs)


class S3BlobStore:
    """BlobStore on ``bucket``. Pass a client from :func:`make_s3_client` (the default) so that
    presigned URLs are SigV4."""

    def __init__(self, bucket: str, client: Any = None, prefix: str = "", *, page_size: int = 1000) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self._client = client or make_s3_client()
        self._page_size = page_size  # keys per ListObjectsV2 page (S3's maximum is 1000)

    def _key(self, key: str) -> str:
        return self.prefix + key

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING:
                raise BlobNotFound(key) from None
            raise
        try:
            body: bytes = response["Body"].read()
        except (IncompleteReadError, ResponseStreamingError) as error:
            # The connection broke while the body streamed in, after botocore's retries ended.
            raise Unavailable("the file store", f"GetObject {key}: {error}") from error
        return body

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            # HEAD has no body, so a missing key shows only as the status code.
            if error.response.get("Error", {}).get("Code") in _MISSING:
                return None
            raise
        return head

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def size(self, key: str) -> int:
        head = self._head(key)
        if head is None:
            raise BlobNotFound(key)
        return int(head["ContentLength"])

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self._key(key))  # S3 ignores missing keys

    def list_keys(self, prefix: str) -> Iterator[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket, Prefix=self._key(prefix), PaginationConfig={"PageSize": self._page_size}
        )
        for page in pages:
            for entry in page.get("Contents", []):
                yield str(entry["Key"])[len(self.prefix) :]

    def download_url(self, key: str, expires_in: int, base_url: str) -> str:
        url: str = self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)}, ExpiresIn=expires_in
        )
        return url

    def upload_url(self, key: str, expires_in: int, base_url: str, max_bytes: int) -> str:
        # max_bytes cannot be signed into a PUT; see the module docstring for where it is enforced.
        url: str = self._client.generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": self._key(key)}, ExpiresIn=expires_in
        )
        return url
