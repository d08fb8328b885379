"""The local training worker: what SQS + the launcher Lambda + SageMaker + EventBridge do on AWS.

It takes train requests from the SQLite queue and runs the same launch step as the launcher
Lambda; then runs each job as a subprocess of the same training entry point, in SageMaker's
directory layout; packs /opt/ml/model into model.tar.gz as SageMaker does; and hands the
finisher the event EventBridge would send.

A job is held under a lease that a heartbeat renews. If the process dies mid-training (even by
SIGKILL), the job's subprocess dies with it, and the next worker to start takes the job again;
after ``max_attempts`` interrupted runs it is marked Failed with that reason. A worker that starts
also queues again the request of every version still Waiting: a server killed between recording
a version and queuing its request would otherwise leave it Waiting forever."""

from __future__ import annotations

import ctypes
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger

from kestrel.adapters.sqlite_jobs import LocalJob, LocalJobLauncher, SqliteTrainQueue
from kestrel.config import ENV_DATA_DIR, ENV_RUNTIME, ENV_SM_ROOT
from kestrel.flow.finish import finish
from kestrel.flow.launch import launch
from kestrel.ports import Ports
from kestrel.ports.jobs import TrainRequest
from kestrel.store.versions import waiting_models

logger = Logger(service="kestrel-worker")

#: The training job's SageMaker root (/opt/ml on SageMaker); the worker points it at a temp dir.
LOCAL_BUCKET = "kestrel-local"  # the "bucket" in the artefact URIs the worker reports
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: ask Linux to kill it when the worker dies, so no training is orphaned."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass  # not Linux: the lease still lets the next worker take the job over


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def job_event(name: str, status: str, *, artefact_uri: str = "", reason: str = "") -> dict[str, Any]:
    """The EventBridge "SageMaker Training Job State Change" event, as the finisher receives it."""
    detail: dict[str, Any] = {"TrainingJobName": name, "TrainingJobStatus": status, "SecondaryStatus": status}
    if artefact_uri:
        detail["ModelArtifacts"] = {"S3ModelArtifacts": artefact_uri}
    if reason:
        detail["FailureReason"] = reason
    return {
        "version": "0",
        "detail-type": "SageMaker Training Job State Change",
        "source": "aws.sagemaker",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "resources": [f"arn:aws:sagemaker:local:000000000000:training-job/{name}"],
        "detail": detail,
    }


def pack_model_dir(model_dir: Path) -> bytes:
    """model.tar.gz of the directory's files, as SageMaker uploads /opt/ml/model."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for path in sorted(model_dir.iterdir()):
            if path.is_file():
                archive.add(path, arcname=path.name)
    return out.getvalue()


class LocalWorker:
    def __init__(
        self,
        ports: Ports,
        *,
        poll_seconds: float = 1.0,
        lease_seconds: float = 30.0,
        max_attempts: int = 2,
    ) -> None:
        if not isinstance(ports.queue, SqliteTrainQueue) or not isinstance(ports.launcher, LocalJobLauncher):
            raise TypeError("the local worker needs the local runtime's queue and launcher")
        self.ports = ports
        self.queue: SqliteTrainQueue = ports.queue
        self.jobs: LocalJobLauncher = ports.launcher
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen[str] | None = None

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        """Queue the Waiting versions again, then work in a background thread until ``stop``."""
        self.requeue_waiting()
        self._thread = threading.Thread(target=self._work, name="kestrel-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current step; a running training is ended and left for the next worker."""
        self._stop.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_forever(self) -> None:
        self.requeue_waiting()
        self._work()

    def requeue_waiting(self) -> int:
        """Queue again the request of every version still Waiting; returns how many.

        The train route records the version, then queues its request: a server killed between
        the two leaves a version that nothing would launch. Launching is idempotent, so a request
        that was queued after all starts one job; and one hidden by a killed worker's lease is
        launched now rather than when the lease runs out."""
        try:
            waiting = list(waiting_models(self.ports.items))
            for model in waiting:
                self.queue.send(
                    TrainRequest(model.owner_id, model.task_id, model.id, model.version, model.workspace_id)
                )
        except Exception:  # the worker must start even so; the versions stay as they were
            logger.exception("queuing the Waiting versions again failed")
            return 0
        if waiting:
            logger.info("train requests of Waiting versions queued again", extra={"versions": len(waiting)})
        return len(waiting)

    def _work(self) -> None:
        logger.info("training worker started", extra={"holder": _holder()})
        while not self._stop.is_set():
            try:
                busy = self.step()
            except Exception:  # the worker must outlive any one bad request or job
                logger.exception("worker step failed")
                busy = False
            if not busy:
                self._stop.wait(self.poll_seconds)

    def step(self) -> bool:
        """Do one piece of work, if there is any: launch a request, or run a job."""
        received = self.queue.receive(lease=60.0)
        if received is not None:
            try:
                launch(self.ports, received.request)
            except Exception:
                # Left in the queue: it comes back when its lease ends, and goes to the dead
                # letters after three tries, as with SQS.
                logger.exception("launch failed", extra={"model_id": received.request.model_id})
                return True
            self.queue.delete(received.receipt)
            return True
        job = self.jobs.claim(self.lease_seconds, _holder())
        if job is None:
            return False
        self.run_job(job)
        return True

    def run_until_idle(self, timeout: float = 600.0) -> None:
        """Work until there is nothing left (for tests and scripts)."""
        deadline = time.monotonic() + timeout
        while self.step():
            if time.monotonic() > deadline:
                raise TimeoutError("the worker still had work after the timeout")

    # -- one job ---------------------------------------------------------------------------

    def run_job(self, job: LocalJob) -> None:
        spec, name = job.spec, job.spec.job_name
        if job.attempts > self.max_attempts:
            reason = f"training was interrupted {job.attempts - 1} times (the server stopped while it ran)"
            self._report(spec.job_name, job_event(spec.job_name, "Failed", reason=reason), "Failed")
            return
        with tempfile.TemporaryDirectory(prefix="kestrel-job-") as tmp:
            root = Path(tmp)
            manifest_dir = root / "input" / "data" / "manifest"
            config_dir = root / "input" / "config"
            for folder in (manifest_dir, config_dir, root / "model", root / "output"):
                folder.mkdir(parents=True, exist_ok=True)
            (manifest_dir / "manifest.json").write_bytes(self.ports.blobs.get(spec.manifest_key))
            (config_dir / "hyperparameters.json").write_text(json.dumps(spec.hyperparameters))
            code, tail = self._run_training(spec.job_name, root)
            if self._stop.is_set() and code != 0:
                logger.info("training interrupted by shutdown; the next worker resumes it", extra={"job": name})
                return
            event = self._outcome(spec.job_name, spec.output_prefix, root, code, tail)
        self._report(spec.job_name, event, str(event["detail"]["TrainingJobStatus"]))

    def _run_training(self, name: str, root: Path) -> tuple[int, list[str]]:
        env = {
            **os.environ,
            ENV_SM_ROOT: str(root),
            ENV_RUNTIME: "local",
            ENV_DATA_DIR: str(self.ports.settings.data_dir),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "kestrel.handlers.training_job"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a Ctrl-C in the terminal reaches the worker, which decides
            preexec_fn=_die_with_parent,  # nothing else runs between fork and exec
        )
        self._process = process
        beating = threading.Event()
        heartbeat = threading.Thread(target=self._heartbeat, args=(name, beating), daemon=True)
        heartbeat.start()
        tail: deque[str] = deque(maxlen=20)
        assert process.stdout is not None
        for line in process.stdout:
            tail.append(line.rstrip())
            logger.info(line.rstrip(), extra={"job": name})
        code = process.wait()
        self._process = None
        beating.set()
        heartbeat.join()
        return code, list(tail)

    def _heartbeat(self, name: str, done: threading.Event) -> None:
        while not done.wait(self.lease_seconds / 3):
            self.jobs.renew(name, self.lease_seconds)

    def _outcome(self, name: str, output_prefix: str, root: Path, code: int, tail: list[str]) -> dict[str, Any]:
        model_dir = root / "model"
        failure = root / "output" / "failure"
        if code == 0 and (model_dir / "model.onnx").is_file() and (model_dir / "card.json").is_file():
            key = f"{output_prefix}/{name}/output/model.tar.gz"
            self.ports.blobs.put(key, pack_model_dir(model_dir), "application/gzip")
            return job_event(name, "Completed", artefact_uri=f"s3://{LOCAL_BUCKET}/{key}")
        if failure.is_file() and failure.read_text().strip():
            reason = failure.read_text().strip()
        else:
            # Its last lines are log, not a reason for the owner: they go to the log only.
            logger.error("the training process died without a reason", extra={"job": name, "code": code, "tail": tail})
            reason = f"the training process stopped unexpectedly (exit code {code}); train again"
        return job_event(name, "Failed", reason=reason)

    def _report(self, name: str, event: dict[str, Any], status: str) -> None:
        finish(self.ports, event)
        self.jobs.finish(name, status)
