"""``kestrel tasks``, ``kestrel train TASK [--wait]``, ``kestrel models TASK`` and
``kestrel deploy TASK VERSION``: training and choosing versions over the public API."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from kestrel.cli.client import KestrelClient
from kestrel.cli.common import (
    CliError,
    add_connection_options,
    label_names,
    make_client,
    percent,
    progress,
    quote,
    render_table,
    resolve_task,
    short_time,
    train_state,
)
from kestrel.domain.entities import TrainStatus

FINAL_STATES = (TrainStatus.TRAINED, TrainStatus.FAILED)
EXIT_FAILED = 1
#: Misclassified test images listed under an evaluation (the console shows them all).
MAX_MISCLASSIFIED_SHOWN = 10


def _add_task(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", metavar="TASK", help="the task's name or id")


# --- the evaluation of a trained version ---


def _f(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


def _interval(interval: Any) -> str:
    if isinstance(interval, list | tuple) and len(interval) == 2:
        return f" (95 % interval {percent(interval[0])}-{percent(interval[1])})"
    return ""


def _headline(model: dict[str, Any], task: dict[str, Any], metrics: dict[str, Any]) -> list[str]:
    """The accuracy with its interval, how it was measured, and the cross-validated figure."""
    counts = metrics.get("counts") or {}
    head = f"Version {model['version']} of {task['name']!r}: accuracy {percent(model.get('accuracy'))}"
    head += _interval(model.get("accuracy_interval") or metrics.get("accuracy_interval"))
    if "images_test" in counts:
        head += f" on {counts['images_test']} test images ({counts.get('images_train', '?')} trained on)"
    if isinstance(metrics.get("training_seconds"), int | float):
        head += f", trained in {metrics['training_seconds']:.1f} s"
    lines = [head]
    summary = model.get("evaluation_summary") or metrics.get("evaluation_summary")
    if summary:
        lines.append(summary[0].upper() + summary[1:] + ".")
    cross_validated = model.get("cross_validated_accuracy", metrics.get("cross_validated_accuracy"))
    if cross_validated is not None:
        interval = model.get("cross_validated_accuracy_interval") or metrics.get("cross_validated_accuracy_interval")
        lines.append(f"Cross-validated accuracy: {percent(cross_validated)}{_interval(interval)}")
    if "micro_f1" in metrics:  # multi_label: accuracy is the exact-match rate, micro F1 the gentler view
        lines.append(f"Micro-averaged F1 over all tags: {_f(metrics['micro_f1'])}")
    return lines


def _per_label(metrics: dict[str, Any], name: Callable[[str], str]) -> list[str]:
    per_label: dict[str, dict[str, Any]] = metrics.get("per_label") or {}
    if not per_label:
        return []
    folds = (metrics.get("cross_validation") or {}).get("per_label_recall") or {}
    titles = ["LABEL", "PRECISION", "RECALL", "F1", "SUPPORT"] + (["CV RECALL"] if folds else [])
    rows = [
        (
            name(label_id),
            _f(m.get("precision")),
            _f(m.get("recall")),
            _f(m.get("f1")),
            str(m.get("support", "-")),
            *([_f(folds.get(label_id))] if folds else []),
        )
        for label_id, m in per_label.items()
    ]
    return ["", render_table(titles, rows, right=range(1, len(titles)))]


def _confusion(metrics: dict[str, Any], name: Callable[[str], str]) -> list[str]:
    confusion = metrics.get("confusion_matrix")
    if not confusion or not confusion.get("rows"):
        return []
    label_row = [name(label_id) for label_id in confusion["labels"]]
    matrix = [[label_row[i], *(str(n) for n in row)] for i, row in enumerate(confusion["rows"])]
    return [
        "",
        "Confusion matrix (rows: true label, columns: predicted)",
        render_table(["", *label_row], matrix, right=range(1, len(label_row) + 1)),
    ]


def _mistakes(metrics: dict[str, Any], name: Callable[[str], str]) -> list[str]:
    wrong: list[dict[str, Any]] = metrics.get("misclassified") or []
    total = int(metrics.get("misclassified_total", len(wrong)))  # the summary keeps the first 100
    lines = ["", f"Misclassified test images: {total}"] if metrics.get("per_label") else []
    for item in wrong[:MAX_MISCLASSIFIED_SHOWN]:
        if isinstance(item.get("predicted"), list):  # multi_label: sets of tags
            truth = ", ".join(map(name, item.get("labels", []))) or "no tag"
            taken = ", ".join(map(name, item["predicted"])) or "no tag"
            lines.append(f"  {item['image_id']}: {truth}; predicted {taken}")
        else:
            lines.append(
                f"  {item['image_id']}: {name(item['label'])}, taken for {name(item['predicted'])} "
                f"({_f(item.get('prob'))})"
            )
    if total > min(len(wrong), MAX_MISCLASSIFIED_SHOWN):
        shown = min(len(wrong), MAX_MISCLASSIFIED_SHOWN)
        lines.append(f"  ... and {total - shown} more (GET model/{{id}}/card/ and the console have them all)")
    return lines


def _suspects(model: dict[str, Any], metrics: dict[str, Any], name: Callable[[str], str]) -> list[str]:
    """The possibly mislabelled images (none for versions trained before the finder)."""
    listed = model.get("possibly_mislabelled", metrics.get("possibly_mislabelled"))
    if not isinstance(listed, list):
        return []
    total = int(model.get("possibly_mislabelled_total") or metrics.get("possibly_mislabelled_total") or len(listed))
    lines = ["", f"Possibly mislabelled training images: {total}"]
    for item in listed[:MAX_MISCLASSIFIED_SHOWN]:
        own = ", ".join(map(name, item["labels"])) or "no tag"
        says = ", ".join(map(name, item["suggested"])) or "no tag"
        lines.append(f"  {item['image_id']}: labelled {own}; the model says {says} (margin {_f(item['margin'])})")
    if total > min(len(listed), MAX_MISCLASSIFIED_SHOWN):
        lines.append(f"  ... and {total - min(len(listed), MAX_MISCLASSIFIED_SHOWN)} more (the console relabels them)")
    return lines


def evaluation_text(model: dict[str, Any], task: dict[str, Any]) -> str:
    """Accuracy with its interval and how it was measured, per-label precision/recall/F1 (and the
    cross-validated recall), the confusion matrix, the mistakes and the possibly mislabelled
    images, from the model's card."""
    metrics: dict[str, Any] = model.get("metrics") or {}
    names = label_names(task, metrics)

    def name(label_id: str) -> str:
        return names.get(label_id, label_id)

    lines = _headline(model, task, metrics) + _per_label(metrics, name) + _confusion(metrics, name)
    return "\n".join(lines + _mistakes(metrics, name) + _suspects(model, metrics, name))


# --- kestrel train ---


def configure_train(parser: argparse.ArgumentParser) -> None:
    _add_task(parser)
    parser.add_argument(
        "--wait", action="store_true", help="show the state until TRAINED or FAILED, then the evaluation"
    )
    parser.add_argument(
        "--interval", type=float, default=2.0, metavar="SECONDS", help="how often --wait asks (default: 2)"
    )
    add_connection_options(parser)


def wait_for_model(client: KestrelClient, model: dict[str, Any], interval: float) -> dict[str, Any]:
    """Poll the version until it is TRAINED or FAILED, showing its state and the time spent."""
    label = f"Version {model['version']}"
    with progress(bar_format="{desc} [{elapsed}]", desc=f"{label}: {model['train_status']}") as bar:
        while train_state(model) not in FINAL_STATES:
            time.sleep(interval)
            model = client.model(model["id"])
            bar.set_description_str(f"{label}: {model['train_status']}", refresh=False)
            bar.refresh()
    return model


def run_train(args: argparse.Namespace) -> int:
    client = make_client(args)
    task = resolve_task(client, args.task)
    model = client.train(task["id"])
    name = quote(task["name"])
    print(f"Training version {model['version']} of {task['name']!r} ({model['train_status']}).", flush=True)
    if not args.wait:
        print(f"Follow it with: kestrel models {name}")
        return 0
    try:
        model = wait_for_model(client, model, max(args.interval, 0.05))
    except KeyboardInterrupt:
        print(f"kestrel: stopped waiting; the training goes on (kestrel models {name} shows it)", file=sys.stderr)
        return 130
    if train_state(model) == TrainStatus.FAILED:
        reason = " ".join((model.get("failure_reason") or "no reason given").split())
        print(f"kestrel: training version {model['version']} failed: {reason}", file=sys.stderr)
        return EXIT_FAILED
    task = client.task(task["id"])
    print(evaluation_text(model, task))
    print()
    if task["production_version"] == model["version"]:
        print(f"Version {model['version']} is in production: classify uses it.")
    else:
        print(
            f"Production stays on version {task['production_version']}; to use this one: "
            f"kestrel deploy {name} {model['version']}"
        )
    return 0


# --- kestrel models ---


def configure_models(parser: argparse.ArgumentParser) -> None:
    _add_task(parser)
    parser.add_argument("--version", type=int, metavar="N", help="show the evaluation of version N instead")
    add_connection_options(parser)


def _find_version(client: KestrelClient, task: dict[str, Any], version: int) -> dict[str, Any]:
    models = client.models(task["id"])
    for model in models:
        if model["version"] == version:
            return model
    known = ", ".join(str(m["version"]) for m in sorted(models, key=lambda m: m["version"])) or "none yet"
    raise CliError(f"task {task['name']!r} has no version {version} (versions: {known})")


def run_models(args: argparse.Namespace) -> int:
    client = make_client(args)
    task = resolve_task(client, args.task)
    if args.version is not None:
        model = _find_version(client, task, args.version)
        if train_state(model) != TrainStatus.TRAINED:
            reason = f": {model['failure_reason']}" if model.get("failure_reason") else ""
            print(f"Version {model['version']} is {model['train_status']}{reason}")
            return 0
        print(evaluation_text(model, task))
        return 0
    models = sorted(client.models(task["id"]), key=lambda m: m["version"], reverse=True)
    if not models:
        print(f"Task {task['name']!r} has no versions yet. Train one: kestrel train {quote(task['name'])} --wait")
        return 0
    production = task["production_version"]
    notes = any(model.get("failure_reason") for model in models)  # a NOTE column only when needed
    rows = [
        (
            "*" if model["version"] == production else "",
            str(model["version"]),
            model["train_status"],
            percent(model.get("accuracy")),
            short_time(model.get("created")),
            short_time(model.get("trained")),
            *([" ".join((model.get("failure_reason") or "").split())[:100]] if notes else []),
        )
        for model in models
    ]
    header = ("", "VERSION", "STATE", "ACCURACY", "CREATED (UTC)", "TRAINED (UTC)", *(["NOTE"] if notes else []))
    print(render_table(header, rows, right=(1, 3)))
    print()
    if production > 0:
        print(f"* in production: version {production}")
    else:
        print("No version in production yet.")
    return 0


# --- kestrel deploy ---


def configure_deploy(parser: argparse.ArgumentParser) -> None:
    _add_task(parser)
    parser.add_argument("version", type=int, metavar="VERSION", help="the version to classify with")
    add_connection_options(parser)


def run_deploy(args: argparse.Namespace) -> int:
    client = make_client(args)
    task = resolve_task(client, args.task)
    model = _find_version(client, task, args.version)
    if train_state(model) != TrainStatus.TRAINED:
        raise CliError(f"version {args.version} of {task['name']!r} is {model['train_status']}; deploy a TRAINED one")
    before = task["production_version"]
    task = client.deploy(task["id"], args.version)
    was = f"version {before}" if before > 0 else "no version"
    print(
        f"Task {task['name']!r} now classifies with version {task['production_version']} "
        f"(accuracy {percent(model.get('accuracy'))}); before: {was}."
    )
    return 0


# --- kestrel tasks ---


def run_tasks(args: argparse.Namespace) -> int:
    client = make_client(args)
    tasks = client.tasks()
    if not tasks:
        print("No tasks yet. Import a folder of labelled images: kestrel import DIR --task NAME")
        return 0
    rows = [
        (
            task["name"],
            task["type"],
            str(sum(1 for label in task["labels"] if not label.get("negative_for_task"))),
            str(task["production_version"]) if task["production_version"] > 0 else "-",
            task.get("last_train_status") or "-",
            task["id"],
        )
        for task in sorted(tasks, key=lambda t: t["name"].lower())
    ]
    print(render_table(("NAME", "TYPE", "LABELS", "PRODUCTION", "LAST TRAINING", "ID"), rows, right=(2, 3)))
    return 0
