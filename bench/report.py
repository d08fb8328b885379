"""docs/benchmarks.md from one run's results. The soak section (written by ``make soak``, see
bench/soak_report.py) is kept as it is: the two are measured by different commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.common import table as _table
from bench.quality import quality_section
from bench.similar import similar_section

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "benchmarks.md"
RESULTS = ROOT / "docs" / "benchmarks.json"
SOAK_MARKER = "<!-- soak figures: written by `make soak` (bench/soak_report.py); `make bench` keeps them -->"


def _ms(value: float) -> str:
    return f"{value:.1f}"


def headline(results: dict[str, Any]) -> list[str]:
    """One row per figure: Kestrel, the floor, how far from it."""
    rows: list[list[str]] = []
    for batch, figures in results["latency"].items():
        floor = figures["backbone (onnxruntime, preprocessed input)"]["median_ms"]
        http = figures["classify over HTTP (local gateway)"]["median_ms"]
        rows.append(
            [
                f"classify latency, {batch}, over HTTP",
                f"{_ms(http)} ms",
                f"{_ms(floor)} ms (backbone alone)",
                f"{http / floor:.2f}x",
            ]
        )
    load = results.get("classify_load")
    if load:
        best = max(load["levels"], key=lambda row: row["per_second"])
        rows.append(
            [
                f"classify throughput (best of {len(load['levels'])} levels, {best['clients']} clients)",
                f"{best['per_second']:.1f} req/s",
                f"{load['floor_per_second']:.1f} img/s (backbone alone, batch 1)",
                f"{best['per_second'] / load['floor_per_second']:.2f}x",
            ]
        )
    cold = results.get("cold_start")
    if cold:
        rows.append(
            [
                "cold start: `kestrel serve` → first classify",
                f"{cold['total_s']:.2f} s",
                f"{cold['floor_s']:.2f} s (python + onnxruntime + backbone + 1 image)",
                f"{cold['total_s'] / cold['floor_s']:.2f}x",
            ]
        )
    scale = results.get("training_scale")
    if scale:
        for row in scale["rows"]:
            for step in ("empty cache", "after adding 10 %"):
                figures = row[step]
                rows.append(
                    [
                        f"training {figures['images']} images ({step})",
                        f"{figures['seconds']:.1f} s",
                        f"{figures['floor_seconds']:.1f} s (backbone on every new view)",
                        f"{figures['seconds'] / max(figures['floor_seconds'], 1e-9):.2f}x",
                    ]
                )
        largest = scale["rows"][-1]["empty cache"]
        rows.append(
            [
                f"training peak memory, {largest['images']} images",
                f"{largest['peak_memory_mb']:.0f} MB",
                f"{scale['floor_memory_mb']:.0f} MB (backbone session, batch 16)",
                f"{largest['peak_memory_mb'] / scale['floor_memory_mb']:.2f}x",
            ]
        )
    crud = results.get("crud_load")
    if crud:
        for name, levels in crud["load"].items():
            single = levels[0]
            floor = crud["floor"][name]["median_ms"]
            rows.append(
                [
                    f"{name}, 1 client, over HTTP",
                    f"{_ms(single['median_ms'])} ms",
                    f"{_ms(floor)} ms (item store in process)",
                    f"{single['median_ms'] / floor:.1f}x",
                ]
            )
    listing = results.get("listing")
    if listing:
        last = listing["rows"][-1]
        floor = last["first page in process (floor)"]["median_ms"]
        first = last["first page"]["median_ms"]
        rows.append(
            [
                f"first page of a label with {last['images']:,} images",
                f"{_ms(first)} ms",
                f"{_ms(floor)} ms (records query in process)",
                f"{first / floor:.1f}x",
            ]
        )
    scenes = results.get("scenes")
    if scenes:
        rows.append(
            [
                "accuracy on scenes val/",
                f"{100 * scenes['val']['accuracy']:.1f} %",
                "90.0 % (reference: frozen features + logistic regression)",
                f"{100 * (scenes['val']['accuracy'] - 0.9):+.1f} points",
            ]
        )
    return ["## At a glance", "", *_table(["figure", "Kestrel", "floor", "distance"], rows), ""]


def latency_section(results: dict[str, Any]) -> list[str]:
    lines = [
        "## Classify latency",
        "",
        "The floor is the backbone alone in onnxruntime on already preprocessed input (the least any",
        "classify can cost). Images: real photos (scikit-image samples, JPEG, 300-480 px).",
        "",
    ]
    for batch, figures in results["latency"].items():
        rows = [
            [name, _ms(v["median_ms"]), _ms(v["p95_ms"]), _ms(v["per_image_ms"]), f"{v['ratio']:.2f}"]
            for name, v in figures.items()
        ]
        lines += [f"### {batch}", "", *_table(["path", "median ms", "p95 ms", "ms per image", "x floor"], rows), ""]
    return lines


def load_section(results: dict[str, Any]) -> list[str]:
    load = results.get("classify_load")
    if not load:
        return []
    rows = [
        [
            str(r["clients"]),
            f"{r['per_second']:.1f}",
            _ms(r["median_ms"]),
            _ms(r["p95_ms"]),
            f"{r['errors']} / {r['requests']}",
            f"{r['per_second'] / load['floor_per_second']:.2f}",
        ]
        for r in load["levels"]
    ]
    doubled = load["latency_doubles_at_clients"]
    best = max(load["levels"], key=lambda row: row["per_second"])
    last = load["levels"][-1]
    return [
        "## Classify under concurrent load",
        "",
        "`kestrel serve` in its own process; each client a thread with its own connection sending one",
        f"photo per request back to back for {results['load_seconds']:.0f} s, on 127.0.0.1. The clients share the",
        "machine's cores with the server, so these are lower bounds. The floor is the backbone alone,",
        f"batch 1, one after another: {load['floor_per_second']:.1f} images/s ({_ms(load['floor_ms'])} ms each).",
        "",
        *_table(["clients", "requests/s", "median ms", "p95 ms", "errors / requests", "x floor throughput"], rows),
        "",
        (
            f"**Latency doubles at {doubled} concurrent clients** (median against one client)."
            if doubled
            else "**Latency did not double at any level measured** (median against one client)."
        ),
        f"Throughput peaks at {best['per_second']:.1f} requests/s with {best['clients']} clients "
        f"({best['per_second'] / load['floor_per_second']:.2f}x the floor); with {last['clients']} clients it is "
        f"{last['per_second']:.1f} requests/s",
        f"({last['per_second'] / best['per_second']:.2f}x the peak): extra clients queue, and their threads and the",
        "server's compete for the same two cores. How the gateway serves requests in parallel (and how",
        "it did before its worker pool) is in the next section. On AWS each Lambda instance serves one",
        "request at a time and concurrency comes from more instances.",
        "",
    ]


#: The record before the worker pool (make bench, 2026-11-24 14:31 UTC, same machine): one gateway
#: process that resolved one request at a time (a process-wide lock), onnxruntime with 2 threads.
BEFORE_POOL = {
    "levels": [(1, 69.1, 13.0), (2, 94.7, 20.7), (4, 91.3, 42.6), (8, 94.3, 83.7), (16, 91.4, 173.0)],
    "doubles_at": 4,
    # Issue 14: another owner's GET task/ while a classify of 10 slow URLs ran (each its 10 s).
    "head_of_line_s": 29.6,
}


def pool_section(results: dict[str, Any]) -> list[str]:
    pool = results.get("pool")
    if not pool:
        return []
    before = BEFORE_POOL
    header = [
        "configuration",
        *[f"{c} clients req/s (median ms)" for c, _, _ in before["levels"]],
        "latency doubles at",
    ]
    rows = [
        [
            "before: 1 process, one request at a time, 2 onnxruntime threads",
            *[f"{rate:.1f} ({ms:.1f})" for _, rate, ms in before["levels"]],
            f"{before['doubles_at']} clients",
        ]
    ]
    before_ms = f"{before['head_of_line_s'] * 1000:.0f}"
    blocking_rows = [["before: 1 process, one request at a time (issue 14)", "—", before_ms, "—"]]
    for config in pool["configurations"]:
        load = config["load"]
        name = f"{config['workers']} workers x {config['threads']} threads"
        by_clients = {row["clients"]: row for row in load["levels"]}
        cells = [
            f"{by_clients[c]['per_second']:.1f} ({by_clients[c]['median_ms']:.1f})" if c in by_clients else "—"
            for c, _, _ in before["levels"]
        ]
        doubled = load["latency_doubles_at_clients"]
        rows.append([name, *cells, f"{doubled} clients" if doubled else "not within 16"])
        blocking = config["head_of_line"]
        blocking_rows.append(
            [
                name,
                f"{blocking['quiet_ms']:.1f}",
                f"{blocking['busy_ms']:.1f}",
                f"{blocking['busy_ms'] / blocking['quiet_ms']:.2f}x",
            ]
        )
    return [
        "## The gateway's worker pool",
        "",
        f"`{pool.get('command', 'make bench')}` ({pool.get('date', results['date'])}):",
        "`kestrel serve --workers W` with `KESTREL_ORT_THREADS=T`, classify of one photo per request",
        "as in the load section above,",
        f"{pool['seconds']:.0f} s a level. The first row is the record before the pool (one process that resolved",
        "one request at a time).",
        "",
        *_table(header, rows),
        "",
        "Another owner's `GET task/` (median of 20, ms) with nothing else running, and while a classify",
        "of 10 URL records whose host holds every answer is running:",
        "",
        *_table(["configuration", "quiet", "during the slow classify", "ratio"], blocking_rows),
        "",
        *pool.get("conclusion", []),
        "",
    ]


def heads_section(results: dict[str, Any]) -> list[str]:
    """Issue 16: one backbone, many heads, against one whole ONNX session per task."""
    heads = results.get("heads")
    if not heads:
        return []
    case, new, old = heads["use_case"], heads["model_step_new"], heads["model_step_old"]
    rows = [
        [
            f"now: classify use case, {case['tasks']:,} tasks (record decoded, store read, model)",
            f"{_ms(case['miss']['median_ms'])} ({_ms(case['miss']['p10_ms'])})",
            f"{_ms(case['hit']['median_ms'])} ({_ms(case['hit']['p10_ms'])})",
            f"{case.get('traced_per_head_kb', case['accounted_per_head_kb']):.0f} kB held (tracemalloc; cache counts "
            f"{case['accounted_per_head_kb']:.0f} kB; RSS grew {case['per_head_kb']:.0f} kB a task)",
        ],
        [
            f"now: model step alone, {new['miss']['samples']} tasks (read + parse head.npz, backbone + head)",
            f"{_ms(new['miss']['median_ms'])} ({_ms(new['miss']['p10_ms'])})",
            f"{_ms(new['hit']['median_ms'])} ({_ms(new['hit']['p10_ms'])})",
            "—",
        ],
        [
            f"before: model step alone, {old['tasks']} tasks (read model.onnx, build its session, run it)",
            f"{_ms(old['miss']['median_ms'])} ({_ms(old['miss']['p10_ms'])})",
            f"{_ms(old['hit']['median_ms'])} ({_ms(old['hit']['p10_ms'])})",
            f"{old['per_session_mb']:.1f} MB (RSS delta / sessions; the file is {old['file_mb']:.1f} MB)",
        ],
    ]
    return [
        "## One backbone, many heads",
        "",
        f"`{heads.get('command', 'make bench')}` ({heads.get('date', results['date'])}, bench/heads.py):",
        f"{case['tasks']:,} trained tasks in a local data folder, each with its own synthetic {heads['labels']}-label",
        f'head ({heads["head_file_kb"]:.0f} kB head.npz); one photo per classify. "not cached": each task\'s first',
        'classify, the process having loaded only the backbone; "cached": a task used before. In each part',
        "the two are measured in turn in one loop (the model-step rows of both paths too), so that they see the",
        "same load on this shared machine: compare figures of one run, and p10 (nearest the uncontended cost)",
        f"rather than medians. The head cache holds {case['cache_mb']} MB (KESTREL_HEAD_CACHE_MB),",
        f'so all of them stay; one backbone session serves them all ({case["backbones"]} loaded). "before" is',
        "the path this replaced: each task a whole ONNX file (backbone + head) and its own session, 8 kept.",
        "",
        *_table(["path", "not cached: median (p10) ms", "cached: median (p10) ms", "memory per cached task"], rows),
        "",
    ]


def cold_section(results: dict[str, Any]) -> list[str]:
    cold = results.get("cold_start")
    if not cold:
        return []
    rows = [
        ["floor: python + import onnxruntime + open backbone + 1 image", f"{cold['floor_s']:.2f}"],
        ["`import kestrel.handlers.classify` (a Lambda's init phase)", f"{cold['import_handler_s']:.2f}"],
        ["`kestrel serve` → port open", f"{cold['to_listening_s']:.2f}"],
        ["→ first classify answered (model fetched, session built)", f"{cold['first_classify_s']:.2f}"],
        ["**new process → first classify, total**", f"**{cold['total_s']:.2f}**"],
        ["the next classify (warm)", f"{cold['warm_classify_s']:.3f}"],
    ]
    return [
        "## Cold start",
        "",
        f"Medians of {cold['runs']} fresh processes each.",
        "",
        *_table(["step", "seconds"], rows),
        "",
    ]


def _memory_row(memory: dict[str, Any], kind: str, name: str, what: str) -> list[str] | None:
    figures = memory.get(f"{kind} {name}")
    if not figures:
        return None
    image = memory["images"][name]
    size = "x".join(str(side) for side in image["size"])
    before = (memory.get("before") or {}).get(f"{kind} {name}")
    return [
        f"{what}: {name.upper()} {size} {image['mode']}, {image['bytes'] / 1024:,.0f} KB",
        f"{before['peak_mb']:.0f}" if before else "n/a",
        f"**{figures['peak_mb']:.0f}**",
        f"+{figures['growth_mb']:.0f}",
        f"{figures['after_mb']:.0f}",
        f"{figures['lambda_mb']}",
        f"{100 * figures['peak_mb'] / figures['lambda_mb']:.0f} %",
    ]


def memory_section(results: dict[str, Any]) -> list[str]:
    memory = results.get("memory")
    if not memory:
        return []
    rows = [
        row
        for kind, what in (("upload", "upload (api Lambda)"), ("classify", "classify, 10 records (classify Lambda)"))
        for name in ("png", "jpeg")
        if (row := _memory_row(memory, kind, name, what)) is not None
    ]
    before = memory.get("before") or {}
    return [
        "## Peak memory per request (worst accepted images)",
        "",
        "Each row: a fresh process runs the Lambda handler in process (bench/memory.py), answers a warm-up",
        "request, resets its peak (`clear_refs`), then answers the measured request. *Peak* is the",
        "process's resident high-water mark during the request (what the Lambda's memory must hold),",
        "*growth* the part above the warm process, *after* what the process keeps once it has answered.",
        *([f"*Before*: the same probe on the code of {before['code']}."] if before.get("code") else []),
        "",
        *_table(["request", "before MB", "peak MB", "growth MB", "after MB", "Lambda MB", "of the Lambda"], rows),
        "",
        "The budget: one decoded picture may take `KESTREL_MAX_DECODED_BYTES` (200 MB; the 7000x7000 RGBA",
        "PNG takes 196 MB), and at most 2 such decodes run at once per process",
        "(`vision.imagefile.FULL_SIZE_DECODES`), each with a few MB of strips besides. A JPEG is decoded at",
        "1/2-1/8 scale and never comes near it. So an upload needs at most the warm api process (~100 MB)",
        "+ 200 MB + the 6 MB body and its copies: **about 320 MB of the api Lambda's 1,024 MB**. A classify",
        "needs the warm classify process with its models (~200 MB, each cached model ~20 MB more, at most",
        "8) + 2 x 200 MB + 10 records' bytes: **about 800 MB of the classify Lambda's 3,008 MB**, whatever",
        "its ten records are. `KESTREL_MAX_DECODED_BYTES` may be raised to ~600 MB for the api Lambda and",
        "~1,000 MB for classify before either could run out.",
        "",
        "The probe calls the handler directly, so the JPEG classify body (ten 2 MB photos, 28 MB as JSON)",
        "is bigger than API Gateway lets through (6 MB): a worse case than any real request. The same",
        "ten 49-megapixel PNGs take tens of seconds of CPU on a shared 2-core machine, which no longer",
        "costs memory but does cost time (issue 14's per-request time budget is the gateway's part).",
        "",
    ]


def _phases(phases: dict[str, float]) -> str:
    """The job's phases; records made before the refit (issue 12) had one "evaluation_and_export"."""
    if "evaluation_and_export" in phases:
        before = phases["evaluation_and_export"]
        return f"{phases['embedding']:.1f} / {phases['head']:.1f} / {before:.1f} (with export) / -"
    # Records made before the mislabelled finder (issue 16) have no "mislabelled" phase.
    after = phases["refit"] + phases.get("mislabelled", 0.0) + phases["export"]
    return f"{phases['embedding']:.1f} / {phases['head']:.1f} / {phases['evaluation']:.1f} / {after:.1f}"


def training_section(results: dict[str, Any]) -> list[str]:
    scale = results.get("training_scale")
    if not scale:
        return []
    rows = []
    for row in scale["rows"]:
        for step in ("empty cache", "after adding 10 %"):
            f = row[step]
            phases = f["phase_seconds"]
            rows.append(
                [
                    str(f["images"]),
                    step,
                    f"{f['seconds']:.1f}",
                    f"{f['floor_seconds']:.1f}",
                    f"{f['seconds'] / max(f['floor_seconds'], 1e-9):.2f}",
                    _phases(phases),
                    f"{f['embedded']} / {f['cached']}",
                    f"{f['peak_memory_mb']:.0f}",
                ]
            )
    upload = ", ".join(f"{r['size']}: {r['upload_ms_per_image']:.0f} ms" for r in scale["rows"])
    return [
        "## Training time and peak memory",
        "",
        "A task per size, images uploaded over HTTP (real photos made distinct by crop, mirror and scale),",
        "trained by the local worker (the job is its own process, as on SageMaker), then 10 % more images",
        "and a retrain. Seconds: from the train request to Trained. Floor: the backbone alone at batch 16",
        f"on every view the job embeds ({scale['augmented_views']} per new image, "
        f"{scale['floor_ms_per_view']:.1f} ms each). Peak memory: the job's",
        "peak RSS; floor: a process that only opens the backbone and runs a batch",
        f"({scale['floor_memory_mb']:.0f} MB).",
        "",
        *_table(
            [
                "images",
                "step",
                "seconds",
                "floor s",
                "x floor",
                "embed / head / evaluation / refit + mislabelled finder + export s",
                "embedded / cached",
                "peak MB",
            ],
            rows,
        ),
        "",
        f"Upload over HTTP, median per image: {upload}.",
        "",
    ]


def crud_section(results: dict[str, Any]) -> list[str]:
    crud = results.get("crud_load")
    if not crud:
        return []
    rows = []
    for name, levels in crud["load"].items():
        floor = crud["floor"][name]["median_ms"]
        for r in levels:
            rows.append(
                [
                    name,
                    str(r["clients"]),
                    f"{r['per_second']:.0f}",
                    _ms(r["median_ms"]),
                    _ms(r["p95_ms"]),
                    f"{r['errors']} / {r['requests']}",
                    f"{r['median_ms'] / floor:.1f}",
                ]
            )
    created = sum(row["requests"] - row["errors"] for row in crud["load"]["create label"])
    floors = ", ".join(f"{name} {_ms(v['median_ms'])} ms (p95 {_ms(v['p95_ms'])})" for name, v in crud["floor"].items())
    return [
        "## API create and list under load",
        "",
        "Same server and clients as the classify load. Floor: the same records call on the item store in",
        f"process, no HTTP, auth or JSON: {floors}. The label listing is measured after the",
        f"create load, so the owner has {created:,} labels: its first page counts them all.",
        "",
        *_table(["operation", "clients", "requests/s", "median ms", "p95 ms", "errors / requests", "x floor"], rows),
        "",
    ]


def listing_section(results: dict[str, Any]) -> list[str]:
    listing = results.get("listing")
    if not listing:
        return []
    names = [name for name, value in listing["rows"][0].items() if isinstance(value, dict)]
    rows = [
        [
            f"{row['images']:,}",
            str(row["deep_page"]),
            f"{row['add_ms_per_image']:.1f}",
            *[f"{_ms(row[name]['median_ms'])} ({_ms(row[name]['p95_ms'])})" for name in names],
        ]
        for row in listing["rows"]
    ]
    return [
        "## Listing a label as it grows to 10,000 images",
        "",
        f"Median ms (p95) over HTTP, {listing['page_size']} images a page; the floor column is the records",
        "query in process; the deep page is the last full page of the label, reached by its `next`",
        "cursor (as clients and the console do) or asked for by number (which walks from the start).",
        "",
        *_table(["images in the label", "deep page", "add ms/image", *names], rows),
        "",
    ]


def scenes_section(results: dict[str, Any], scenes_path: Path) -> list[str]:
    scenes = results.get("scenes")
    lines = ["## Training and accuracy on the development data set (scenes)", ""]
    if scenes is None:
        return [*lines, f"Skipped: {scenes_path} is not present on this machine.", ""]
    rows = [
        [
            step,
            str(v["images"]),
            f"{v['seconds']:.1f}",
            str(v["embedded"]),
            str(v["cached"]),
            f"{100 * v['test_accuracy']:.1f} %",
        ]
        for step in ("empty cache", "after adding 10 %")
        for v in [scenes[step]]
    ]
    val = scenes["val"]
    return [
        *lines,
        "Trained through the API (upload, train, local worker), evaluated by classifying `val/` over HTTP.",
        "The reference figure (frozen EfficientNet-Lite0 features + logistic regression, from the data",
        "set's README) is 90.0 %: the floor to beat.",
        "",
        *_table(["step", "images", "training seconds", "embedded", "from cache", "held-out accuracy"], rows),
        "",
        f"**Accuracy on `val/` ({val['images']} images): {100 * val['accuracy']:.1f} %** (floor: 90.0 %).",
        "",
        *_table(["label", "val accuracy"], [[name, f"{100 * v:.0f} %"] for name, v in val["per_label"].items()]),
        "",
    ]


def kept_soak_section() -> list[str]:
    if REPORT.exists() and SOAK_MARKER in (text := REPORT.read_text()):
        return text[text.index(SOAK_MARKER) :].rstrip("\n").splitlines()
    return [SOAK_MARKER, "## Soak", "", "Not run yet on this record: `make soak` writes this section.", ""]


def write_report(results: dict[str, Any], command: str, scenes_path: Path, tuning_lines: list[str]) -> None:
    lines = [
        "# Benchmarks",
        "",
        f"Measured {results['date']} on {results['machine']} with `{command}`.",
        "Medians (and p95) of repeated runs; every ratio is to a floor measured in the same run. The",
        "machine is shared, so compare ratios rather than absolute times between records.",
        "",
        *headline(results),
        *latency_section(results),
        *load_section(results),
        *pool_section(results),
        *heads_section(results),
        *cold_section(results),
        *memory_section(results),
        *training_section(results),
        *crud_section(results),
        *listing_section(results),
        *scenes_section(results, scenes_path),
        *quality_section(results),
        *similar_section(results),
        *tuning_lines,
        *kept_soak_section(),
    ]
    REPORT.write_text("\n".join(lines) + "\n")
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
