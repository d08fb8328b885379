"""One slow request never stalls the others: on a gateway with worker processes (as `kestrel serve`
runs), a classify whose records are slow URLs holds one classify worker, while another owner's
requests are answered at their usual speed (medians compared in the same run)."""

from __future__ import annotations

import http.server
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from kestrel.config import FetchSettings
from tests.api.http import Api
from tests.flow.conftest import trained_server
from tests.image_server import ImageHandler
from tests.photos import photo

pytestmark = pytest.mark.slow


class _SlowImages(ImageHandler):
    """Holds every answer until ``release`` is set (at most 60 s); counts the requests it got."""

    body = b""
    release = threading.Event()
    arrived = threading.Semaphore(0)

    def hold(self) -> None:
        self.arrived.release()
        self.release.wait(timeout=60)


def _median_seconds(call: Any, times: int) -> float:
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        spent.append(time.perf_counter() - started)
    return statistics.median(spent)


def test_a_classify_of_slow_urls_does_not_hold_up_another_owner(tmp_path: Path) -> None:
    _SlowImages.body = photo("coffee", 180)
    _SlowImages.release = threading.Event()
    _SlowImages.arrived = threading.Semaphore(0)
    images = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowImages)
    images.daemon_threads = True
    threading.Thread(target=images.serve_forever, daemon=True).start()
    slow_urls = [{"_url": f"http://localhost:{images.server_address[1]}/slow-{n}.jpg"} for n in range(10)]
    try:
        # The worker processes get the server's settings, which allow the test's image host.
        allowing = FetchSettings(allowed_hosts=frozenset({"localhost"}))
        with trained_server(tmp_path / "data", fetch=allowing, workers=2) as (server, trainable):
            other = Api(server.url, server.new_token("other-owner@example.com"))
            other.create_task("theirs")

            def list_tasks() -> None:
                assert other.get("task/")["count"] == 1

            _median_seconds(list_tasks, 3)  # warm: both api workers have answered
            quiet = _median_seconds(list_tasks, 15)

            answer: list[Any] = []
            body = {"task_id": trainable.task["id"], "records": slow_urls}
            classify = threading.Thread(target=lambda: answer.append(trainable.api.post("classify/", body)))
            classify.start()
            assert _SlowImages.arrived.acquire(timeout=60)  # the classify is fetching now
            busy = _median_seconds(list_tasks, 15)
            still_fetching = classify.is_alive()
            _SlowImages.release.set()
            classify.join(timeout=60)
    finally:
        _SlowImages.release.set()
        images.shutdown()
    assert still_fetching  # the other owner's requests were all answered while the classify ran
    assert busy < 3 * quiet, (busy, quiet)
    assert [record["_status"]["code"] for record in answer[0]["records"]] == [200] * 10
