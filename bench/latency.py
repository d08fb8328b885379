"""Classify latency, batch 1 and 10: the raw onnxruntime backbone on preprocessed input (the
floor), decode + preprocess + backbone, the classify handler in process, and classify over HTTP
on the local gateway."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np

from bench.common import say, summary, timed
from tests.api.http import Api


def latency(server: Any, api: Api, task_id: str, images: list[bytes], repeats: int) -> dict[str, Any]:
    from kestrel.handlers.classify import lambda_handler
    from kestrel.vision.backbone import ensure_backbone
    from kestrel.vision.preprocess import preprocess
    from kestrel.vision.session import create_session

    backbone = ensure_backbone()
    session = create_session(backbone.path)
    pixels = np.stack([preprocess(data) for data in images])
    owner_id = owner_of(server)
    results: dict[str, Any] = {}
    for batch in (1, 10):
        chosen = images[:batch]
        records = [{"_base64": base64.b64encode(data).decode()} for data in chosen]
        body = json.dumps({"task_id": task_id, "records": records})
        event = {
            "resource": "/{proxy+}",
            "path": "/recognition/v2/classify/",
            "httpMethod": "POST",
            "headers": {"Content-Type": "application/json", "Host": "localhost"},
            "multiValueHeaders": {},
            "queryStringParameters": None,
            "multiValueQueryStringParameters": None,
            "pathParameters": None,
            "requestContext": {"path": "/recognition/v2/classify/", "authorizer": {"owner_id": owner_id}},
            "body": body,
            "isBase64Encoded": False,
        }

        class Context:
            function_name, memory_limit_in_mb = "bench", 3008
            invoked_function_arn, aws_request_id = "arn:aws:lambda:local:0:function:bench", "bench"

        def raw(b: int = batch) -> None:
            session.run([backbone.features_name], {backbone.input_name: pixels[:b]})

        def decode_and_raw(chosen_images: list[bytes] = chosen) -> None:
            session.run(
                [backbone.features_name], {backbone.input_name: np.stack([preprocess(d) for d in chosen_images])}
            )

        def in_process(e: dict[str, Any] = event) -> None:
            answer = lambda_handler(e, Context())  # type: ignore[arg-type]
            assert answer["statusCode"] == 200, answer

        def over_http(b: dict[str, Any] = json.loads(body)) -> None:
            api.post("classify/", b)

        figures = {
            "backbone (onnxruntime, preprocessed input)": summary(timed(raw, repeats)),
            "decode + preprocess + backbone": summary(timed(decode_and_raw, repeats)),
            "classify handler in process": summary(timed(in_process, repeats)),
            "classify over HTTP (local gateway)": summary(timed(over_http, repeats)),
        }
        floor = figures["backbone (onnxruntime, preprocessed input)"]["median_ms"]
        for values in figures.values():
            values["per_image_ms"] = values["median_ms"] / batch
            values["ratio"] = values["median_ms"] / floor
        results[f"batch {batch}"] = figures
        say(f"latency batch {batch}: " + ", ".join(f"{k}: {v['median_ms']:.1f} ms" for k, v in figures.items()))
    return results


def owner_of(server: Any) -> str:
    from kestrel.store.accounts import authenticate

    return authenticate(server.ports.items, f"Token {server.token}")
