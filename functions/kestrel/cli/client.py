"""A small HTTP client of Kestrel's public API (recognition v2), as the ``kestrel`` CLI uses it.

It speaks only the documented API, so it works the same against ``kestrel serve`` and the
deployed API Gateway. Problems come out as ``ClientError`` subclasses whose message is one
readable sentence: ``EndpointError`` when the endpoint cannot be reached or is not a Kestrel
API, ``ApiError`` when the API answered with an error (its ``detail``).

One ``KestrelClient`` may be shared by threads: each thread gets its own ``requests.Session``
(sessions are not documented as thread-safe).
"""

from __future__ import annotations

import base64
import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

API_PATH = "recognition/v2/"
#: Largest base64 JSON body sent inline. API Gateway + Lambda take 6 MB per request; the server
#: refuses a little less (KESTREL_MAX_REQUEST_BYTES), so anything bigger goes through upload-url/.
MAX_INLINE_BODY = 5_500_000
#: Answers worth retrying: throttling (API Gateway answers 429) and a busy or restarting backend.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
_DUPLICATE = re.compile(r"Training image ID: (\S+) already exists")
_USER_AGENT = "kestrel-cli/0.1"


class ClientError(Exception):
    """A problem talking to the API; ``str()`` is one sentence that says what to do."""


class EndpointError(ClientError):
    """The endpoint could not be reached, or what answered is not a Kestrel API."""


class ApiError(ClientError):
    """The API answered with an error status; ``detail`` is its explanation."""

    def __init__(self, status: int, detail: str, method: str, url: str) -> None:
        self.status = status
        self.detail = detail
        self.method = method
        self.url = url
        hint = " (check --token or KESTREL_TOKEN)" if status in (401, 403) else ""
        super().__init__(detail + hint)


@dataclass(frozen=True)
class Upload:
    """The outcome of one training-image upload: its id, and whether these bytes were new."""

    image_id: str
    created: bool
    image: dict[str, Any] | None  # the image JSON when created (a duplicate answers only its id)


def api_root(endpoint: str) -> str:
    """``http://host:8000/recognition/v2/`` from what a user may type: the server's root, the
    API's root (with or without the trailing slash), or a bare ``host:port``."""
    text = endpoint.strip()
    if not text:
        raise EndpointError("the endpoint is empty: pass --endpoint URL or set KESTREL_ENDPOINT")
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointError(f"the endpoint {endpoint!r} is not an http(s) URL")
    path = parts.path.rstrip("/")
    if path.endswith("/" + API_PATH.rstrip("/")):
        path = path[: -len(API_PATH)]
    return f"{parts.scheme}://{parts.netloc}{path}/{API_PATH}"


def _connection_problem(error: requests.RequestException) -> tuple[str, bool]:
    """(a short reason, whether trying again could help) for an error before any answer."""
    if isinstance(error, requests.Timeout):
        return "it did not answer in time", True
    cause: BaseException | None = error.args[0] if error.args and isinstance(error.args[0], BaseException) else None
    if isinstance(cause, urllib3.exceptions.MaxRetryError) and cause.reason is not None:
        cause = cause.reason
    if isinstance(cause, urllib3.exceptions.NameResolutionError):
        return "its host name does not resolve", False
    text = str(cause or error)
    if isinstance(cause, urllib3.exceptions.NewConnectionError) and "refused" in text.lower():
        return "the connection was refused (is the server running there?)", False
    if isinstance(error, requests.exceptions.SSLError):
        return "the TLS handshake failed", False
    if isinstance(cause, socket.gaierror):
        return "its host name does not resolve", False
    # Resets and the like: the server may be restarting; worth another try.
    return text.split(": ", 1)[-1][:200], True


class KestrelClient:
    """The API at ``endpoint`` with ``token``. Methods return the API's JSON as dicts."""

    def __init__(
        self,
        endpoint: str,
        token: str | None,
        *,
        timeout: float = 120.0,
        retries: int = 3,
        backoff: float = 0.5,
        workspace: str | None = None,
    ) -> None:
        self.root = api_root(endpoint)
        #: The workspace every recognition call addresses: an id, or a name looked up on first use.
        self.workspace = workspace
        self._workspace_id: str | None = None
        self.endpoint = self.root[: -len(API_PATH)]
        self.token = token
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._local = threading.local()

    # --- plumbing ---

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = _USER_AGENT
            if self.token:
                session.headers["Authorization"] = f"Token {self.token}"
            self._local.session = session
        return session

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.root + path.lstrip("/")

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        idempotent: bool = True,
        ok: Sequence[int] = (200, 201, 204),
    ) -> requests.Response:
        """One API call; retried on throttling and transient failures when ``idempotent``.

        Raises ``ApiError`` for an answer outside ``ok`` and ``EndpointError`` when there is no answer."""
        url = self.url(path)
        if self.workspace and url.startswith(self.root) and "workspace=" not in url:
            params = {**(params or {}), "workspace": self.workspace_id()}
        attempt = 0
        while True:
            try:
                response = self._session().request(method, url, json=json, params=params, timeout=self.timeout)
            except requests.RequestException as error:
                reason, transient = _connection_problem(error)
                if transient and idempotent and attempt < self.retries:
                    attempt += 1
                    time.sleep(self.backoff * 2 ** (attempt - 1))
                    continue
                raise EndpointError(f"cannot reach the Kestrel API at {self.endpoint}: {reason}") from None
            if response.status_code in RETRY_STATUSES and idempotent and attempt < self.retries:
                attempt += 1
                time.sleep(self._retry_delay(response, attempt))
                continue
            if response.status_code not in ok:
                raise self._error(response, method, url)
            return response

    def _retry_delay(self, response: requests.Response, attempt: int) -> float:
        try:  # API Gateway and load balancers may say how long to wait
            return min(10.0, float(response.headers.get("Retry-After", "")))
        except ValueError:
            return float(self.backoff * 2 ** (attempt - 1))

    def _error(self, response: requests.Response, method: str, url: str) -> ClientError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("detail"), str):
            return ApiError(response.status_code, body["detail"], method, url)
        if isinstance(body, dict) and isinstance(body.get("message"), str):  # API Gateway's own errors
            return ApiError(response.status_code, body["message"], method, url)
        kind = response.headers.get("Content-Type", "no content type").split(";")[0]
        return EndpointError(
            f"{self.endpoint} answered {method} {urlsplit(url).path} with HTTP {response.status_code} "
            f"({kind}), not a Kestrel API error: is the endpoint right?"
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """``request`` and its JSON body (None for an empty answer)."""
        response = self.request(method, path, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise EndpointError(
                f"{self.endpoint} answered {method} {urlsplit(response.url).path} with something that is not "
                "JSON: is the endpoint a Kestrel API?"
            ) from None

    def pages(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list, following ``next``."""
        page = self.call("GET", path, params={"page_size": 500, **(params or {})})
        while True:
            if not isinstance(page, dict) or not isinstance(page.get("results"), list):
                raise EndpointError(f"{self.endpoint} answered a list request without 'results': is it a Kestrel API?")
            yield from page["results"]
            if not page.get("next"):
                return
            page = self.call("GET", page["next"])

    # --- workspaces ---

    def workspaces(self) -> list[dict[str, Any]]:
        found = self.call("GET", self.endpoint + "account/v2/workspace/")
        if not isinstance(found, list):
            raise EndpointError(f"{self.endpoint} answered the workspace list with something else than a list")
        return found

    def workspace_id(self) -> str:
        """The id of ``self.workspace`` (given as an id or as a name)."""
        if self._workspace_id is None:
            wanted = str(self.workspace).strip()
            for workspace in self.workspaces():
                if wanted in (workspace["id"], workspace["name"]) or wanted.lower() == workspace["name"].lower():
                    self._workspace_id = str(workspace["id"])
                    break
            else:
                raise ApiError(
                    404,
                    f"no workspace named or numbered {wanted!r}; `kestrel workspaces` lists them",
                    "GET",
                    self.endpoint + "account/v2/workspace/",
                )
        return self._workspace_id

    # --- tasks and labels ---

    def tasks(self, search: str | None = None) -> list[dict[str, Any]]:
        return list(self.pages("task/", {"search": search} if search else None))

    def task(self, task_id: str) -> dict[str, Any]:
        task: dict[str, Any] = self.call("GET", f"task/{task_id}/")
        return task

    def create_task(self, name: str, task_type: str = "multi_class", description: str = "") -> dict[str, Any]:
        body = {"name": name, "type": task_type, "description": description}
        task: dict[str, Any] = self.call("POST", "task/", json=body, idempotent=False)
        return task

    def labels(self, *, task_id: str | None = None, search: str | None = None) -> list[dict[str, Any]]:
        params = {key: value for key, value in (("task", task_id), ("search", search)) if value}
        return list(self.pages("label/", params))

    def create_label(self, name: str, label_type: str = "category") -> dict[str, Any]:
        label: dict[str, Any] = self.call("POST", "label/", json={"name": name, "type": label_type}, idempotent=False)
        return label

    def add_label_to_task(self, task_id: str, label_id: str) -> dict[str, Any]:
        task: dict[str, Any] = self.call("POST", f"task/{task_id}/add-label/", json={"label_id": label_id})
        return task

    # --- training images ---

    def upload_image(
        self, data: bytes, label_ids: Sequence[str] = (), meta_data: dict[str, Any] | None = None
    ) -> Upload:
        """Upload one image with its labels. The same bytes uploaded before are not stored twice:
        the API answers 409 naming the existing image, which comes back as ``created=False``."""
        body: dict[str, Any] = {"labels": list(label_ids)}
        if meta_data:
            body["meta_data"] = meta_data
        if 4 * ((len(data) + 2) // 3) + 4096 > MAX_INLINE_BODY:
            body["upload_id"] = self._put_upload(data)
        else:
            body["base64"] = base64.b64encode(data).decode("ascii")
        try:
            # A retried upload is safe: the same bytes again answer 409 with the first one's id.
            image = self.call("POST", "training-image/", json=body)
        except ApiError as error:
            if error.status == 413 and "base64" in body:  # this server takes less inline than we assumed
                del body["base64"]
                body["upload_id"] = self._put_upload(data)
                return self._register(body)
            match = _DUPLICATE.search(error.detail) if error.status == 409 else None
            if match:
                return Upload(match.group(1), created=False, image=None)
            raise
        return Upload(image["id"], created=True, image=image)

    def _register(self, body: dict[str, Any]) -> Upload:
        try:
            image = self.call("POST", "training-image/", json=body)
        except ApiError as error:
            match = _DUPLICATE.search(error.detail) if error.status == 409 else None
            if match:
                return Upload(match.group(1), created=False, image=None)
            raise
        return Upload(image["id"], created=True, image=image)

    def _put_upload(self, data: bytes) -> str:
        """PUT large bytes to a one-time upload URL (presigned S3 on AWS); returns the upload id."""
        grant = self.call("POST", "training-image/upload-url/", json={"size": len(data)})
        try:
            # No Authorization header: a presigned URL carries its own signature.
            response = requests.put(grant["url"], data=data, timeout=self.timeout)
        except requests.RequestException as error:
            raise EndpointError(f"cannot PUT to the upload URL: {_connection_problem(error)[0]}") from None
        if response.status_code not in (200, 201, 204):
            raise ApiError(response.status_code, f"the upload URL answered HTTP {response.status_code}", "PUT", "")
        upload_id: str = grant["upload_id"]
        return upload_id

    def add_label_to_image(self, image_id: str, label_id: str) -> dict[str, Any]:
        image: dict[str, Any] = self.call("POST", f"training-image/{image_id}/add-label/", json={"label_id": label_id})
        return image

    # --- training, models, classify ---

    def train(self, task_id: str) -> dict[str, Any]:
        # Not retried: a second request would start a second version.
        model: dict[str, Any] = self.call("POST", f"task/{task_id}/train/", idempotent=False)
        return model

    def models(self, task_id: str) -> list[dict[str, Any]]:
        return list(self.pages("model/", {"task": task_id}))

    def model(self, model_id: str) -> dict[str, Any]:
        model: dict[str, Any] = self.call("GET", f"model/{model_id}/")
        return model

    def deploy(self, task_id: str, version: int) -> dict[str, Any]:
        task: dict[str, Any] = self.call("PATCH", f"task/{task_id}/", json={"production_version": version})
        return task

    def classify(self, task_id: str, records: Sequence[dict[str, Any]], version: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"task_id": task_id, "records": list(records)}
        if version is not None:
            body["version"] = version
        answer: dict[str, Any] = self.call("POST", "classify/", json=body)
        return answer

    def similar(
        self, task_id: str, records: Sequence[dict[str, Any]], k: int, version: int | None = None
    ) -> dict[str, Any]:
        """The task's training images nearest to each record (``task/{id}/similar/``)."""
        body: dict[str, Any] = {"records": list(records), "k": k}
        if version is not None:
            body["version"] = version
        answer: dict[str, Any] = self.call("POST", f"task/{task_id}/similar/", json=body)
        return answer
