"""Ports: the protocols behind which every piece of I/O sits, and the bundle a handler receives.

``Ports`` is built by the composition root (``kestrel.composition``) from ``Settings``; the
layers above take it as a parameter and never build adapters themselves."""

from __future__ import annotations

from dataclasses import dataclass

from kestrel.config import Settings
from kestrel.ports.blobs import BlobStore
from kestrel.ports.items import ItemStore
from kestrel.ports.jobs import JobLauncher, TrainQueue
from kestrel.ports.mail import Mailer
from kestrel.ports.usage import UsageKeys


@dataclass(frozen=True)
class Ports:
    settings: Settings
    items: ItemStore
    blobs: BlobStore
    queue: TrainQueue
    launcher: JobLauncher
    mailer: Mailer
    #: API keys in the API's usage plan: on AWS when KESTREL_USAGE_PLAN_ID is set (the operator's
    #: ``kestrel token`` commands); None in the functions and in the local runtime.
    usage_keys: UsageKeys | None = None


__all__ = ["Ports"]
