"""What makes Docker push images that Lambda accepts: one platform, no attestation manifests.

Lambda refuses an image whose tag points to an OCI image *index* ("The image manifest, config or
layer media type for the source image ... is not supported"). Docker pushes an index in two cases:

* a multi-platform build: each asset here is built for exactly one ``platform``
  (``infra/functions.py``, ``infra/training.py``);
* buildx's default provenance attestation (buildx >= 0.10): it is stored next to the image as a
  second manifest, in an index, whenever the builder can keep attestations (the containerd image
  store, which recent Docker Desktop and Docker Engine releases use on new installs, or a
  docker-container builder).

The CDK CLI builds assets with ``docker build --tag ... --platform ... [--output ...]`` and then
``docker push`` (cdk-assets); aws-cdk-lib 2.275's image assets offer ``platform``, ``outputs``,
``build_args``, cache and network options, but no provenance switch. ``outputs`` cannot help
(BuildKit turns OCI media types back on whenever there are attestations), nor can a
``BUILDKIT_ATTEST_PROVENANCE`` build argument (BuildKit merges it with buildx's default request
through a map, so which one wins is undefined). What does work is buildx's own switch, read from
the environment the CDK CLI passes on to Docker: ``BUILDX_NO_DEFAULT_ATTESTATIONS=1``. ``app.py``
refuses to synthesise without it, so a deploy cannot push an image Lambda then refuses.
"""

from __future__ import annotations

from collections.abc import Mapping

#: buildx's switch for its default provenance attestation (docs.docker.com, "Provenance attestations").
NO_ATTESTATIONS_ENV = "BUILDX_NO_DEFAULT_ATTESTATIONS"
#: Values Go's strconv.ParseBool reads as true (buildx parses the variable with it).
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})


def attestation_problem(environ: Mapping[str, str]) -> str | None:
    """Why images built from this environment may be refused by Lambda, or None when they will not."""
    value = environ.get(NO_ATTESTATIONS_ENV)
    if value is not None and value.strip() in _TRUE:
        return None
    found = "it is not set" if value is None else f"it is {value!r}"
    return (
        f"set {NO_ATTESTATIONS_ENV}=1 before cdk synth/deploy ({found}): without it, Docker with the "
        "containerd image store or a buildx builder pushes the Lambda image as an OCI index with a "
        "provenance attestation, and Lambda refuses it ('image manifest media type not supported'). "
        "docs/operations.md, 'Images Lambda accepts'."
    )
