"""Routes: training-image/ — upload (JSON, multipart, presigned), list with filters, labels, delete."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from kestrel.api.context import RequestScope
from kestrel.api.docs import responses
from kestrel.api.responses import BatchUpdateOut, ImageOut, ImagePage, UploadUrlOut
from kestrel.api.schemas import ImageBatchUpdate, ImageUpdate, ImageUpload, LabelRef, UploadUrlRequest
from kestrel.api.views import image_out, images_out
from kestrel.domain.encoded import decode_base64_image
from kestrel.domain.entities import new_id
from kestrel.domain.errors import InvalidInput, TooLarge
from kestrel.ports.blobs import BlobNotFound
from kestrel.store import images, keys
from kestrel.store.images import ImageFilter
from kestrel.usecases.uploads import UploadLimits
from kestrel.usecases.uploads import upload_image as check_and_store

router = APIGatewayRouter()
BASE = "/recognition/v2/training-image"
_UPLOAD_URL_TTL = 900


def _ids(scope: RequestScope, name: str) -> tuple[str, ...]:
    """A list filter given as repeated parameters and/or comma-separated values."""
    values = [v for k, v in scope.query_pairs() if k == name]
    return tuple(dict.fromkeys(part.strip() for value in values for part in value.split(",") if part.strip()))


@router.get(BASE, summary="List training images", tags=["training images"], responses=responses())
def list_images(
    page: Annotated[int, Query(ge=1, description="1-based page number")] = 1,
    page_size: Annotated[int, Query(ge=1, description="items per page (max 1000)")] = 50,
    labels: Annotated[str | None, Query(description="label id(s), comma-separated: images that have all")] = None,
    not_labels: Annotated[str | None, Query(description="label id(s): images that have none of them")] = None,
    test: Annotated[bool | None, Query(description="true: only test images; false: only training images")] = None,
    cursor: Annotated[str | None, Query(description="opaque position from a 'next' link")] = None,
) -> ImagePage:
    scope = RequestScope(router)
    flt = ImageFilter(labels=_ids(scope, "labels"), not_labels=_ids(scope, "not_labels"), test=test)
    found = images.list_images(scope.ports.items, scope.space, scope.page_request(page, page_size, cursor), flt)
    results = images_out(scope, [images.image_from_item(item) for item in found.items])
    return ImagePage(**scope.page_links(found), results=results)


@router.post(
    BASE,
    summary="Upload a training image",
    tags=["training images"],
    status_code=201,
    responses=responses(201, (400, 401, 404, 409, 413)),
)
def upload_image(body: ImageUpload) -> ImageOut:
    scope = RequestScope(router)
    sources = [name for name in ("base64", "img_path", "upload_id") if getattr(body, name)]
    if len(sources) != 1:
        raise InvalidInput(
            "send exactly one image: 'base64' (JSON), 'img_path' (a multipart file field) or 'upload_id' "
            f"(from training-image/upload-url/); got {', '.join(sources) or 'none'}"
        )
    limits = scope.ports.settings.limits
    upload_key = None
    if body.upload_id:
        upload_key = keys.upload_blob(scope.owner_id, body.upload_id)
        data = _read_upload(scope, upload_key, body.upload_id, limits.max_image_bytes)
    else:
        data = decode_base64_image(body.base64 or body.img_path or "")
    image = check_and_store(
        scope.ports.items,
        scope.ports.blobs,
        scope.space,
        data,
        UploadLimits.from_settings(limits),
        label_ids=body.labels,
        meta_data=body.meta_data,
        test_image=body.test_image,
        noresize=body.noresize,
    )
    if upload_key:
        scope.ports.blobs.delete(upload_key)
    return image_out(scope, image)


def _read_upload(scope: RequestScope, key: str, upload_id: str, max_bytes: int) -> bytes:
    """The bytes PUT to an upload URL; its size is checked before anything is read."""
    blobs = scope.ports.blobs
    try:
        size = blobs.size(key)
        if size > max_bytes:
            blobs.delete(key)
            raise TooLarge(f"the upload is {size:,} bytes, over the limit of {max_bytes:,} bytes")
        return blobs.get(key)
    except BlobNotFound:
        raise InvalidInput(f"no upload with id {upload_id}: PUT the bytes to the URL from upload-url/ first") from None


@router.post(
    f"{BASE}/upload-url",
    summary="Get a URL to PUT a large image to, then register it with upload_id",
    tags=["training images"],
    status_code=201,
    responses=responses(201),
)
def upload_url(body: UploadUrlRequest) -> UploadUrlOut:
    scope = RequestScope(router)
    max_bytes = scope.ports.settings.limits.max_image_bytes
    if body.size is not None and body.size > max_bytes:
        raise TooLarge(f"the image is {body.size:,} bytes, over the limit of {max_bytes:,} bytes")
    upload_id = new_id()
    url = scope.ports.blobs.upload_url(
        keys.upload_blob(scope.owner_id, upload_id), _UPLOAD_URL_TTL, scope.root_url, max_bytes
    )
    return UploadUrlOut(upload_id=upload_id, url=url, method="PUT", max_bytes=max_bytes, expires_in=_UPLOAD_URL_TTL)


@router.post(
    f"{BASE}/update",
    summary="Change labels and test marks of many images at once",
    tags=["training images"],
    responses=responses(),
)
def batch_update(body: ImageBatchUpdate) -> BatchUpdateOut:
    scope = RequestScope(router)
    store, owner = scope.ports.items, scope.space
    if not body.images and not body.labels:
        raise InvalidInput("give 'images' (ids) or 'labels' (select the images that have them)")
    if body.mark_test and body.unmark_test:
        raise InvalidInput("'mark-test' and 'unmark-test' cannot both be true")
    targets = list(dict.fromkeys([*body.images, *images.image_ids_with_labels(store, owner, body.labels)]))
    for image_id in targets:
        images.get_image(store, owner, image_id)  # every id must exist before anything changes
    for image_id in targets:
        for label_id in body.labels_add:
            images.add_label_to_image(store, owner, image_id, label_id)
        for label_id in body.labels_remove:
            image = images.get_image(store, owner, image_id)
            if label_id in image.label_ids:
                images.remove_label_from_image(store, owner, image_id, label_id)
        if body.mark_test or body.unmark_test:
            images.update_image(store, owner, image_id, {"test_image": body.mark_test})
    return BatchUpdateOut(status="OK", updated=len(targets))


@router.get(
    f"{BASE}/<image_id>",
    summary="Get a training image",
    tags=["training images"],
    responses=responses(),
)
def get_image(image_id: str) -> ImageOut:
    scope = RequestScope(router)
    return image_out(scope, images.get_image(scope.ports.items, scope.space, image_id))


def _change(image_id: str, body: ImageUpdate) -> ImageOut:
    scope = RequestScope(router)
    changes: dict[str, Any] = {}
    if "meta_data" in body.model_fields_set:
        changes["meta_data"] = body.meta_data or {}
    if body.test_image is not None:
        changes["test_image"] = body.test_image
    if not changes:
        image = images.get_image(scope.ports.items, scope.space, image_id)
    else:
        image = images.update_image(scope.ports.items, scope.space, image_id, changes)
    return image_out(scope, image)


@router.put(
    f"{BASE}/<image_id>",
    summary="Replace an image's meta_data / test mark",
    tags=["training images"],
    responses=responses(),
)
def put_image(image_id: str, body: ImageUpdate) -> ImageOut:
    return _change(image_id, body)


@router.patch(
    f"{BASE}/<image_id>",
    summary="Change an image's meta_data / test mark",
    tags=["training images"],
    responses=responses(),
)
def patch_image(image_id: str, body: ImageUpdate) -> ImageOut:
    return _change(image_id, body)


@router.delete(
    f"{BASE}/<image_id>",
    summary="Delete a training image",
    tags=["training images"],
    status_code=204,
    responses=responses(204),
)
def delete_image(image_id: str) -> Response[None]:
    scope = RequestScope(router)
    images.delete_image(scope.ports.items, scope.ports.blobs, scope.space, image_id)
    return Response(status_code=204)


@router.post(
    f"{BASE}/<image_id>/add-label",
    summary="Put a label on an image",
    tags=["training images"],
    responses=responses(),
)
def add_label(image_id: str, body: LabelRef) -> ImageOut:
    scope = RequestScope(router)
    image = images.add_label_to_image(scope.ports.items, scope.space, image_id, body.label_id)
    return image_out(scope, image)


@router.post(
    f"{BASE}/<image_id>/remove-label",
    summary="Take a label off an image",
    tags=["training images"],
    responses=responses(),
)
def remove_label(image_id: str, body: LabelRef) -> ImageOut:
    scope = RequestScope(router)
    image = images.remove_label_from_image(scope.ports.items, scope.space, image_id, body.label_id)
    return image_out(scope, image)
