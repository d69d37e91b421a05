"""``rapport landing check``: what a landing root holds, read as Rapport would read it, without writing anything.

Per source: the layout recognised, files and bytes, the arrival dates, how many records of a sample of
files parse into silver and the most common reasons the rest would be quarantined (three examples each,
personal data masked), and the files that would not be read at all, with why. The engine reads the sample
(the same decoding and parsing as ingest and refine); nothing is written anywhere.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jobs.bronze.decode import OUTPUT_SCHEMA, decode_batches, engine_key
from jobs.bronze.ingest import NOT_AN_OBJECT
from jobs.bronze.landing import Landing, LandingFile
from jobs.config import Config
from schemas.sources import SOURCES, source as source_of
from jobs.pii.scrub import scrub

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

EXAMPLES = 3
EXAMPLE_CHARS = 160


@dataclass
class SourceCheck:
    source: str
    kind: str
    layout: str
    folder: str
    files: int = 0
    bytes: int = 0
    first_day: str | None = None
    last_day: str | None = None
    sampled_files: int = 0
    records: int = 0
    readable: int = 0  # records that would reach silver (for reference extracts: JSON objects)
    reasons: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    unrecognised: Counter = field(default_factory=Counter)
    unrecognised_examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def has_readable(self) -> bool:
        return self.readable > 0


def _sample(files: list[LandingFile], n: int) -> list[LandingFile]:
    if len(files) <= n:
        return files
    step = len(files) / n
    return [files[int(i * step)] for i in range(n)]


def check(spark: "SparkSession", cfg: Config, sources: list[str], sample_files: int = 20) -> list[SourceCheck]:
    import dataclasses

    from pyspark.sql import Window as W
    from pyspark.sql import functions as F

    from jobs.silver.refine import MODULES

    cfg = cfg if cfg.pii_key else dataclasses.replace(cfg, pii_key="landing-check-throwaway-key")  # hashes are discarded
    landing = Landing(cfg)
    out = []
    for name in sources:
        src = source_of(name)
        files, unrecognised = landing.scan(name)
        c = SourceCheck(name, src.kind, landing.layout(name), landing.folder(name), len(files), sum(f.size for f in files))
        days = sorted(f.dt for f in files)
        c.first_day, c.last_day = (str(days[0]), str(days[-1])) if days else (None, None)
        for u in unrecognised:
            c.unrecognised[u.reason] += 1
            c.unrecognised_examples.setdefault(u.reason, [])
            if len(c.unrecognised_examples[u.reason]) < EXAMPLES:
                c.unrecognised_examples[u.reason].append(u.rel)
        sample = _sample(files, sample_files)
        c.sampled_files = len(sample)
        if sample:
            meta = spark.createDataFrame(
                [(engine_key(f.uri), f.rel, f.dt, f.hour.hour if f.hour else 0) for f in sample],
                "file string, source_file string, landing_dt date, landing_hour int")
            decoded = (spark.read.format("binaryFile").load([f.uri for f in sample]).dropDuplicates(["path"])
                       .mapInArrow(decode_batches, OUTPUT_SCHEMA)
                       .join(meta, "file").where("kind = 'record'"))
            bad = decoded.where(f"reason IS NOT NULL OR {NOT_AN_OBJECT}").select(
                F.coalesce("reason", F.lit("malformed_json")).alias("reason"),
                F.coalesce("value", F.lit("<bytes>")).alias("raw"))
            ok = decoded.where(f"reason IS NULL AND NOT ({NOT_AN_OBJECT})").select(
                "value", "source_file", "line_number", "landing_dt", "landing_hour",
                F.current_timestamp().alias("ingested_at"))
            if name in MODULES:
                parsed = MODULES[name].parse(ok, cfg)
                bad = bad.unionByName(parsed.where("reason IS NOT NULL").select("reason", F.col("value").alias("raw")))
            ranked = bad.withColumn("_n", F.row_number().over(W.partitionBy("reason").orderBy("raw")))
            counts = {r.reason: r["count"] for r in bad.groupBy("reason").count().collect()}  # aggregates
            c.records = decoded.count()
            c.reasons = Counter(counts)
            c.readable = c.records - sum(counts.values())
            for r in ranked.where(f"_n <= {EXAMPLES}").collect():  # at most three examples per reason
                c.examples.setdefault(r.reason, []).append((scrub(r.raw) or "")[:EXAMPLE_CHARS])
        out.append(c)
    return out


def survey(cfg: Config) -> Counter:
    """Files under the landing root in no source's folder, by reason."""
    return Counter(u.reason for u in Landing(cfg).survey())


def all_sources() -> list[str]:
    return [s.name for s in SOURCES]
