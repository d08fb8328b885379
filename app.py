#!/usr/bin/env python3
"""CDK entry point: ``npx aws-cdk@2 deploy -c stage=prod -c sesSender=you@example.com``.

The app is built by :func:`infra.stack.build_app` (tests build the very same app); settings come
from CDK context (``cdk.json`` defaults, ``-c key=value``), see infra/settings.py."""

from __future__ import annotations

import os
import sys

from infra.images import attestation_problem
from infra.settings import SettingsError
from infra.stack import build_app


def main() -> int:
    # The CDK CLI runs this file and Docker with the same environment: checked here, before a
    # deploy builds and pushes an image that Lambda would then refuse.
    problem = attestation_problem(os.environ)
    if problem is not None:
        print(f"kestrel: {problem}", file=sys.stderr)
        return 2
    try:
        app, _ = build_app()
    except SettingsError as error:
        print(f"kestrel: {error}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
