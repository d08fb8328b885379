"""A tiny HTTP client for route tests: one base URL, one token, JSON in and out."""

from __future__ import annotations

from typing import Any

import requests

API = "recognition/v2"


class Api:
    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.token = token
        self.session = requests.Session()

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base_url}{API}/{path.lstrip('/')}"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if self.token is not None:
            headers.setdefault("Authorization", f"Token {self.token}")
        return self.session.request(method, self.url(path), headers=headers, timeout=60, **kwargs)

    def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.ok("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, status: int = 200, **kwargs: Any) -> Any:
        return self.ok("POST", path, status=status, json=json, **kwargs)

    def create_task(self, name: str = "Task", task_type: str = "multi_class") -> dict[str, Any]:
        return self.ok("POST", "task/", 201, json={"name": name, "type": task_type})  # type: ignore[no-any-return]

    def create_label(self, name: str = "label", label_type: str = "category") -> dict[str, Any]:
        return self.ok("POST", "label/", 201, json={"name": name, "type": label_type})  # type: ignore[no-any-return]

    def upload(self, data: bytes, **fields: Any) -> dict[str, Any]:
        import base64

        body = {"base64": base64.b64encode(data).decode(), **fields}
        return self.ok("POST", "training-image/", 201, json=body)  # type: ignore[no-any-return]
