"""Routes: task/{id}/review/ — the task's review queue (most uncertain stored images first), a
person's decision on one image (labels, or skip), and what the next version gains."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from kestrel.api.context import RequestScope
from kestrel.api.docs import responses
from kestrel.api.responses import (
    LabelScore,
    ReviewDecisionOut,
    ReviewItemOut,
    ReviewPage,
    ReviewPrediction,
    ReviewSummaryOut,
)
from kestrel.api.schemas import ReviewDecision
from kestrel.api.views import images_out
from kestrel.domain.entities import Task
from kestrel.domain.errors import InvalidInput
from kestrel.store import review
from kestrel.store.images import image_from_item
from kestrel.store.tasks import get_task

router = APIGatewayRouter()
BASE = "/recognition/v2/task/<task_id>/review"


@router.get(
    BASE,
    summary="List the task's review queue: stored images the model was least sure about first",
    tags=["review"],
    responses=responses(),
)
def list_review(
    task_id: str,
    page: Annotated[int, Query(ge=1, description="1-based page number")] = 1,
    page_size: Annotated[int, Query(ge=1, description="items per page (max 1000)")] = 50,
    cursor: Annotated[str | None, Query(description="opaque position from a 'next' link")] = None,
) -> ReviewPage:
    scope = RequestScope(router)
    task = get_task(scope.ports.items, scope.space, task_id)
    found = review.list_queue(scope.ports.items, scope.space, task, scope.page_request(page, page_size, cursor))
    shown = images_out(scope, [image_from_item(item["image"]) for item in found.items])
    results = [_item_out(task, image, item.get("entry")) for image, item in zip(shown, found.items, strict=True)]
    return ReviewPage(**scope.page_links(found), results=results)


def _item_out(task: Task, image: Any, entry: dict[str, Any] | None) -> ReviewItemOut:
    if entry is None:
        return ReviewItemOut(image=image, prediction=None, uncertainty=None, suggestion=[])
    stored = entry["prediction"]
    labels = [LabelScore(**label) for label in stored.get("labels") or []]
    best = stored.get("best_labels")
    best_labels = None if best is None else [LabelScore(**label) for label in best]
    prediction = ReviewPrediction(
        version=int(stored["version"]),
        model_id=str(stored["model_id"]),
        labels=labels,
        best_labels=best_labels,
        classified=str(stored["classified"]),
    )
    if best_labels is not None:  # tags: those over their thresholds, or "none of them"
        suggestion = [label.id for label in best_labels] or [task.negative_label_id or ""]
    else:
        suggestion = [labels[0].id] if labels else []
    known = review.task_label_ids(task)  # a label detached since classify is no suggestion
    return ReviewItemOut(
        image=image,
        prediction=prediction,
        uncertainty=float(entry["uncertainty"]),
        suggestion=[label_id for label_id in suggestion if label_id in known],
    )


@router.get(
    f"{BASE}/summary",
    summary="How many images wait for review, and how many reviewed ones the next version gains",
    tags=["review"],
    responses=responses(),
)
def review_summary(task_id: str) -> ReviewSummaryOut:
    scope = RequestScope(router)
    task = get_task(scope.ports.items, scope.space, task_id)
    found = review.summary(scope.ports.items, scope.space, task)
    return ReviewSummaryOut(task_id=task.id, **asdict(found))


@router.post(
    f"{BASE}/<image_id>",
    summary="Label an image from the queue (it becomes training data), or skip it",
    tags=["review"],
    responses=responses(),
)
def decide(task_id: str, image_id: str, body: ReviewDecision) -> ReviewDecisionOut:
    scope = RequestScope(router)
    store, space = scope.ports.items, scope.space
    task = get_task(store, space, task_id)
    if body.skip and body.label_ids:
        raise InvalidInput("give either 'label_ids' or 'skip': true, not both")
    if body.skip:
        decision = review.skip_image(store, space, task, image_id)
    else:
        decision = review.review_image(store, space, task, image_id, body.label_ids or [])
    return ReviewDecisionOut(task_id=task.id, **asdict(decision))
