"""An LRU of loaded things bounded by their bytes, not their count: classify's heads and the
similarity search's descriptor indexes both sit in one."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class HasBytes(Protocol):
    @property
    def nbytes(self) -> int: ...


T = TypeVar("T", bound=HasBytes)


class ByteBoundedCache(Generic[T]):
    """Values by key, least recently used out first once their ``nbytes`` together pass
    ``max_bytes``; a value alone over the bound is returned, not kept. One load per key even when
    many requests ask at once."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError(f"a cache needs a positive size in bytes, not {max_bytes}")
        self.max_bytes = max_bytes
        self.bytes = 0  # the kept values' nbytes together
        self.loads = 0  # values loaded (for tests and metrics)
        self._values: OrderedDict[str, T] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: str) -> bool:
        return key in self._values

    def get(self, key: str, load: Callable[[], T]) -> T:
        with self._lock:
            value = self._values.get(key)
            if value is not None:
                self._values.move_to_end(key)
                return value
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            with self._lock:
                if key in self._values:
                    return self._values[key]
            try:
                value = load()
            finally:
                with self._lock:
                    self._loading.pop(key, None)
            with self._lock:
                self.loads += 1
                self._keep(key, value)
            return value

    def _keep(self, key: str, value: T) -> None:
        if value.nbytes > self.max_bytes:
            return
        self._values[key] = value
        self.bytes += value.nbytes
        while self.bytes > self.max_bytes:
            _, evicted = self._values.popitem(last=False)
            self.bytes -= evicted.nbytes
