"""Print the OpenAPI document: `python -m kestrel.api.openapi > docs/openapi.json`."""

from __future__ import annotations

import json

from aws_lambda_powertools import Logger

from kestrel.api.app import build_app, openapi_document_of


def document() -> str:
    app = build_app(Logger(service="kestrel-openapi"))
    return json.dumps(openapi_document_of(app), indent=2, sort_keys=True)


if __name__ == "__main__":
    print(document())
