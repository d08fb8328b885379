"""Synthesising the Kestrel CDK app for the tests: offline, no AWS credentials, no Docker."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_MISSING_REASON = "tests/infra need Node.js: aws-cdk-lib runs on it through jsii. Install node (>= 20) to run them."
TRAINING_DOCKERFILE = REPO_ROOT / "training" / "Dockerfile"

# jsii prints a large banner on Node 20 (end of life for it); the tests need no reminder.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
# No credentials or region may leak into the synth: the stack must stay environment-agnostic.
for _name in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION"):
    os.environ.pop(_name, None)


def require_node() -> None:
    """Skip the calling test module (at import, before aws_cdk is imported) without node."""
    if shutil.which("node") is None:
        pytest.skip(NODE_MISSING_REASON, allow_module_level=True)


def cdk_json_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    return context


@dataclass
class Synth:
    """One synthesised app: the stack object, its template (JSON and assertions) and outdir."""

    stack: Any  # infra.stack.KestrelStack
    template_json: dict[str, Any]
    template: Any  # aws_cdk.assertions.Template
    outdir: Path

    def resources(self, type_name: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.template_json["Resources"].items()
            if resource["Type"] == type_name
        }


def synthesize(context: dict[str, Any], web_dir: Path, outdir: Path) -> Synth:
    """Build and synthesise the app exactly as app.py does (cdk-nag included: any unacknowledged
    finding raises here)."""
    if not TRAINING_DOCKERFILE.is_file():
        pytest.fail(
            f"{TRAINING_DOCKERFILE.relative_to(REPO_ROOT)} is missing: the stack builds the SageMaker "
            "training image from it (repository root as build context), so the app cannot be "
            "synthesised. It comes with the training work (issues 3/4).",
            pytrace=False,
        )
    from aws_cdk.assertions import Template

    from infra.stack import build_app

    app, stack = build_app({**cdk_json_context(), **context}, web_dir=web_dir, outdir=str(outdir))
    app.synth()
    template_json = json.loads((outdir / f"{stack.stack_name}.template.json").read_text())
    return Synth(stack, template_json, Template.from_json(template_json), outdir)
