"""The benchmark's outputs: ``results.json`` (everything), ``results.md`` (tables) and ``chart.png``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.bench.measure import median

if TYPE_CHECKING:
    from jobs.bench.pipeline import Results

GIB, MIB = 2**30, 2**20


def _ratio(value) -> str:
    """A ratio to two places, or "-" when it was not measured (its reference did not run)."""
    return "-" if value is None else f"{value:.2f}"


def write(results: "Results", out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data = asdict(results)
    (out / "results.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    (out / "results.md").write_text(markdown(data))
    chart(data, out / "chart.png")
    if data.get("collector"):
        collector_chart(data, out / "collector.png")


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [
        "# Rapport benchmark",
        "",
        f"Machine: {m['cores']} cores ({m['physical_cores']} physical), {m['memory_gib']} GiB, {m['system']}, "
        f"Python {m['python']}, {m['java'] or 'no Java'}. "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v) + ".",
        f"Run {r['started_at']} .. {r['finished_at']} ({r['total_seconds'] / 60:.1f} min). "
        f"Figures are medians of {r['settings']['repeats']} runs; events are landing lines "
        "(clickstream, social and order events, defects included).",
        "",
    ]
    for e in r.get("errors", []):
        lines += [f"**FAILED: {e['part']}**: {e['error'].splitlines()[0][:500]}", ""]
    if r["scales"]:
        lines += _table("Pipeline on the embedded engine, by stage", None,
                        ["events", "stage", "seconds", "events/s", "peak memory (GiB)", "MB in", "MB out"], "r l r r r r r",
                        [[f"{s['events']:,}", name, f"{v['seconds']:.1f}", f"{v['events_per_second'] or 0:,}",
                          f"{v['peak_memory_bytes'] / GIB:.2f}",
                          *([f"{v['bytes_in'] / MIB:,.1f}", f"{v['bytes_out'] / MIB:,.1f}"] if "bytes_in" in v else ["", ""])]
                         for s in r["scales"] for name, v in s["stages"].items()])
        lines += ["`total` is ingest to export; the marketing report (`report`, from gold: the day's HTML with every "
                  "chart) is measured apart. Its targets: under 30 s and under 5 MB at 1M events.", ""]
        for s in r["scales"]:
            if "report" in s["stages"]:
                v = s["stages"]["report"]
                lines.append(f"- report at {s['events']:,} events: {v['seconds']:.1f} s, "
                             f"{v['bytes_out'] / MIB:.2f} MB")
        lines.append("")
    if r["peers"]:
        lines += _table(
            "Gold stage (timeline + relationship) by engine, same silver snapshot",
            "Seconds exclude engine start-up (shown apart). `vs embedded` is the time ratio, so above 1 is slower "
            "than the embedded engine. `equal` is true when the output has the same rows as the embedded "
            "engine's, after normalising representations.",
            ["events", "engine", "seconds", "start-up s", "vs embedded", "peak memory (GiB)", "equal"], "r l r r r r l",
            [[f"{p['events']:,}", engine, f"{v['seconds']:.2f}", f"{v['startup_seconds']:.1f}", _ratio(v['vs_embedded']),
              f"{v['peak_memory_bytes'] / GIB:.2f}",
              "-" if engine == "embedded" else ("yes" if v.get("equal") else "**NO**")]
             for p in r["peers"] for engine, v in p["engines"].items()])
    peered = [x for x in r["scales"] if x.get("refine_peer")]
    if peered:
        compared = ("events_same", "events_peer_only", "events_silver_only", "sessions_same", "sessions_peer_only",
                    "sessions_silver_only")
        lines += _table(
            "Refine beside a hand-written DuckDB peer (clickstream core)",
            "The peer parses the Segment lines, keeps one row per messageId, corrects device skew and cuts "
            "30-minute sessions, on the same landing files; it skips the files it cannot read whole. Rapport's "
            "figure is its `refine.clickstream` and `refine.sessions` steps (with salvage, quarantine, "
            "reconciliation, hashing and scrubbing); its memory is the whole refine stage's peak. `same` counts "
            "rows equal on both sides (an event: id and corrected time; a session: device, start and events).",
            ["events", "Rapport s", "peer s", "Rapport / peer", "Rapport refine peak GiB", "peer peak GiB",
             "damaged files skipped", "events same", "peer only", "silver only", "sessions same", "peer only",
             "silver only"], "r " * 13,
            [[f"{x['events']:,}", f"{p['rapport_seconds']:.1f}", f"{p['seconds']:.1f}", f"{p['vs_peer']}",
              f"{p['rapport_refine_peak_memory_bytes'] / GIB:.2f}", f"{p['peak_memory_bytes'] / GIB:.2f}",
              f"{p['skipped_damaged']}", *(f"{c[k]:,}" if k in c else "-" for k in compared)]
             for x in peered for p, c in [(x["refine_peer"], x["refine_peer"].get("comparison") or {})]])
    f = r.get("freshness") or {}
    if f:
        lines += _table(
            "Freshness under steady load (micro-batches)",
            f"{f['rate']:,} events/s sent to `rapport collect serve` for {f['seconds']:.0f} s, its files rolled every "
            f"{f['roll_seconds']} s; micro-batches (ingest, refine, curate, gates on) every {f['interval_seconds']:.0f} s. "
            "Latency is from the collector's acknowledgement to the end of the batch after which the event is in "
            "`gold.interactions` (what `gold.customer_timeline` reads). Target: p95 within 5 minutes.",
            ["acknowledged", "visible", "not visible", "p50 s", "p95 s", "max s", "batches", "batch s (median)",
             "batch s (max)"], "r r r r r r r r r",
            [[f"{f['acknowledged']:,}", f"{f['visible']:,}", f"{f['not_visible']:,}", f"{f['p50_seconds']}",
              f"{f['p95_seconds']}", f"{f['max_seconds']}", f"{len(f['batches'])}",
              f"{median([b['seconds'] for b in f['batches']]):.1f}" if f["batches"] else "-",
              f"{max(b['seconds'] for b in f['batches']):.1f}" if f["batches"] else "-"]])
    compared_runs = [x for x in r["scales"] if x.get("comparison")]
    if compared_runs:
        lines += _table(
            "What the pipeline produced, against the code of an earlier revision",
            "The same landing built again by the code of the named git revision (`--compare-with`): every stored "
            "table's rows, the quarantine by source, layer and reason, every source's audit and identity against "
            "the generator's truth. Figures that differ are listed one by one.",
            ["events", "revision", "figures", "equal", "differ"], "r l r r l",
            [[f"{x['events']:,}", f"`{x['comparison']['revision']}`", f"{x['comparison']['figures']:,}",
              f"{x['comparison']['equal']:,}",
              "; ".join(f"{n}: {v['before']} before, {v['now']} now" for n, v in x["comparison"]["differ"].items())
              or "none"] for x in compared_runs])
    clustered = [x for x in r["scales"] if x.get("local_cluster")]
    if clustered:
        lines += _table(
            "The whole pipeline on a multi-worker engine (Sail `local-cluster`)",
            "One run per scale with a driver and workers in one process exchanging shuffle data over Arrow "
            "Flight, against the median of the local-mode runs above (`vs local` above 1 is slower).",
            ["events", "stage", "local s", "local-cluster s", "vs local", "peak memory (GiB)"], "r l r r r r",
            [[f"{x['events']:,}", name, f"{local if local is not None else '-'}", f"{v['seconds']:.1f}",
              f"{v['seconds'] / local:.2f}" if local else "-", f"{v['peak_memory_bytes'] / GIB:.2f}"]
             for x in clustered for name, v in x["local_cluster"].items()
             for local in [x["stages"].get(name, {}).get("seconds")]])
    bounded = [x for x in r["scales"] if x.get("bounded")]
    if bounded:
        lines += _table(
            "A window larger than the engine's memory pool",
            "One more run with `RAPPORT_ENGINE_MEMORY` set below the size of the window's lines (summed by the "
            "engine from bronze): the engine's operators must stay within the pool, spilling what does not fit, "
            "or the run fails. Peak memory is the process tree's (the pool bounds the engine's operators, not "
            "Python, Delta's log or Parquet readers and writers), against the unbounded run above.",
            ["events", "lines (GiB)", "pool (GiB)", "stage", "seconds", "unbounded s", "peak memory (GiB)",
             "unbounded peak (GiB)"], "r r r l r r r r",
            [[f"{x['events']:,}", f"{b['window_bytes'] / GIB:.2f}", f"{b['pool_bytes'] / GIB:.2f}", name,
              f"{v['seconds']:.1f}", f"{free['seconds']:.1f}" if free else "-", f"{v['peak_memory_bytes'] / GIB:.2f}",
              f"{free['peak_memory_bytes'] / GIB:.2f}" if free else "-"]
             for x in bounded for b in [x["bounded"]] for name, v in b["stages"].items()
             for free in [x["stages"].get(name)]])
    with_identity = [x for x in r["scales"] if x.get("identity")]
    if with_identity:
        lines += _table(
            "Identity stitching against the generator's truth",
            "A false merge is a customer key holding identifiers of two people; a split is a person spread over "
            "several keys, *joinable* when an observed link joins two of their keys (the shared-identifier guard "
            "kept them apart), *unlinked* when none does (devices that never signed in).",
            ["events", "keys", "false merges", "rate", "people", "split", "rate", "joinable", "unlinked"], "r " * 9,
            [[f"{x['events']:,}", f"{i['keys']:,}", f"{i['false_merged_keys']:,}", f"{i['false_merge_rate']:.3%}",
              f"{i['people']:,}", f"{i['split_people']:,}", f"{i['split_rate']:.2%}", f"{i['split_joinable']:,}",
              f"{i['split_unlinked']:,}"] for x in with_identity for i in [x["identity"]]])
    inc = r["incremental"]
    if inc:
        stages = [s for s in ("ingest", "refine", "curate", "quality", "export", "report", "maintenance")
                  if any(d["stages"].get(s) for d in inc["days"])]
        per_stage = inc.get("stages_late_vs_early") or {}
        lines += _table(
            f"Incremental: {len(inc['days'])} daily batches one after another",
            f"Last day / first day: {inc['last_vs_first']}; median of the last 3 days / median of days 2-4: "
            f"{inc['late_vs_early']} (day 1 also creates every table; target 1.2)."
            + (" By stage: " + ", ".join(f"{s} {per_stage[s]}" for s in stages if per_stage.get(s) is not None) + "."
               if per_stage else "")
            + (f" Days 2-4 run again after the last day, each on a copy of the lake as it was then (the same work, "
               f"timed beside the last days): {', '.join(format(a['seconds'], '.1f') for a in inc['early_again'])} s; the "
               f"last 3 days over them: {inc['late_vs_early_again']}"
               + (" (by stage: " + ", ".join(f"{s} {v}" for s, v in inc["stages_late_vs_early_again"].items()
                                             if v is not None) + ")" if inc.get("stages_late_vs_early_again") else "")
               + "." if inc.get("early_again") else "")
            + (f" The weekly whole-table gate on the last lake: {inc['full_gate']['seconds']:.1f} s."
               if inc.get("full_gate") else ""),
            ["day", "events", *stages, "total s", "events/s", "lake MB", "data files"], "r " * (len(stages) + 6),
            [[f"{d['day']}", f"{d['events']:,}", *(f"{d['stages'].get(s, 0):.1f}" for s in stages), f"{d['seconds']:.1f}",
              f"{d['events'] / d['seconds']:,.0f}", f"{d['lake_bytes'] / MIB:,.0f}", f"{d.get('lake_files', '-')}"]
             for d in inc["days"]])
    hist = r.get("history") or {}
    if hist.get("lakes"):
        per_stage = hist.get("old_vs_young_by_stage") or {}
        rows = []
        for name, lake in hist["lakes"].items():
            days = hist["history_days"] if name == "old" else hist["young_days"]
            for run in lake["runs"]:
                rows.append([f"{days} days", f"{run['day']}", f"{run['events']:,}",
                             *(f"{run['stages'].get(s, 0):.1f}" for s in ("ingest", "refine", "curate", "quality",
                                                                         "report")),
                             f"{run['seconds']:.1f}", f"{run['written_bytes'] / MIB:,.1f}",
                             f"{run['rewritten_bytes'] / MIB:,.1f}"])
        lines += _table(
            f"History independence: the same 3 daily runs after {hist['history_days']} and {hist['young_days']} days "
            "of history",
            f"Old lake / young lake (medians): {hist.get('old_vs_young')} (target 1.2)"
            + (". By stage: " + ", ".join(f"{s} {v}" for s, v in per_stage.items() if v is not None) if per_stage else "")
            + f". Rewritten (files a run replaced) / the run's own output: {hist.get('rewritten_vs_output')} "
              "(target 3).",
            ["history", "day", "events", "ingest", "refine", "curate", "quality", "report", "total s", "wrote MiB",
             "rewrote MiB"], "l " + "r " * 10, rows)
    if r.get("collector"):
        lines += _table(
            "Collector under load",
            "One uvicorn worker; the load generator (aiohttp) shares the machine's cores with it. `disk`: every "
            "request answered after its events are fsynced (group commit); `memory`: nothing kept, so the "
            "difference is what durability costs.",
            ["sink", "events per request", "clients", "events/s", "requests/s", "p50 ms", "p99 ms", "503s"],
            "l r r r r r r r",
            [[c["sink"], f"{c['batch']}", f"{c['concurrency']}", f"{c['events_per_second']:,}",
              f"{c['requests_per_second']:,}", f"{c['p50_ms']}", f"{c['p99_ms']}", f"{c['busy_503']}"]
             for c in r["collector"]])
    return "\n".join(lines)


def _table(title: str, intro: str | None, header: list[str], aligns: str, rows: list[list[str]]) -> list[str]:
    """A results section: its heading, what it shows, a Markdown table (``aligns``: l or r per column), a blank line."""
    rule = "|" + "".join("---:|" if a == "r" else "---|" for a in aligns.split())
    return [f"## {title}", "", *([intro, ""] if intro else []), "| " + " | ".join(header) + " |", rule,
            *("|" + "|".join(f" {cell} " if cell else " " for cell in row) + "|" for row in rows), ""]


def collector_chart(r: dict, path: Path) -> None:
    """Events/s by batch size and clients, durable beside memory; p99 latency on the right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = r["collector"]
    cells = sorted({(c["batch"], c["concurrency"]) for c in rows})
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 4.8))
    for i, sink in enumerate(("disk", "memory")):
        by = {(c["batch"], c["concurrency"]): c for c in rows if c["sink"] == sink}
        xs = [x + i * 0.4 for x in range(len(cells))]
        left.bar(xs, [by.get(k, {}).get("events_per_second", 0) for k in cells], 0.4,
                 label="durable (fsync)" if sink == "disk" else "memory (nothing kept)")
        right.bar(xs, [by.get(k, {}).get("p99_ms", 0) for k in cells], 0.4, label=sink)
    labels = [f"{b} x {c}" for b, c in cells]
    for ax in (left, right):
        ax.set_xticks([x + 0.2 for x in range(len(cells))], labels, rotation=45, ha="right")
        ax.set_xlabel("events per request x concurrent clients")
        ax.legend()
    left.set_yscale("log")
    left.set_ylabel("events / s, log scale")
    left.set_title("Collector throughput")
    right.set_ylabel("p99 latency, ms (lower is better)")
    right.set_title("Collector p99 latency")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def chart(r: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2))
    ax = axes[0]
    stages = ["ingest", "refine", "curate", "quality", "export"]
    width = 0.8 / max(1, len(r["scales"]))
    for i, s in enumerate(r["scales"]):
        values = [s["stages"].get(name, {}).get("events_per_second") or 0 for name in stages]
        ax.bar([x + i * width for x in range(len(stages))], values, width, label=f"{s['events']:,} events")
    ax.set_xticks([x + width * (len(r["scales"]) - 1) / 2 for x in range(len(stages))], stages)
    ax.set_yscale("log")  # export moves a few MB, refine does most of the work: decades apart
    ax.set_ylabel("events / s, log scale (higher is better)")
    ax.set_title("Pipeline throughput by stage and scale")
    ax.legend()

    ax = axes[1]
    if r["peers"]:
        engines = list(r["peers"][0]["engines"])
        width = 0.8 / len(engines)
        for i, engine in enumerate(engines):
            ax.bar([x + i * width for x in range(len(r["peers"]))],
                   [p["engines"][engine]["seconds"] for p in r["peers"]], width, label=engine)
        ax.set_xticks([x + width * (len(engines) - 1) / 2 for x in range(len(r["peers"]))],
                      [f"{p['events']:,} events" for p in r["peers"]])
        ax.legend()
    ax.set_ylabel("seconds (lower is better)")
    ax.set_title("Gold stage by engine (start-up excluded)")

    ax = axes[2]
    if r["incremental"]:
        days = r["incremental"]["days"]
        bottom = [0.0] * len(days)
        for name in (*stages, "report", "maintenance"):
            values = [d["stages"].get(name, 0) for d in days]
            if any(values):
                ax.bar([d["day"] for d in days], values, bottom=bottom, label=name)
                bottom = [b + v for b, v in zip(bottom, values)]
        ax.set_xticks([d["day"] for d in days][::max(1, len(days) // 15)])
        ax.set_xlabel("day")
        ax.legend()
    ax.set_ylabel("seconds")
    ax.set_title("Incremental: cost of each daily batch")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
