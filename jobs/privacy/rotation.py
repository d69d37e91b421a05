"""Rotating the pseudonymisation key: every stored hash wrapped in a new key, table by table, with a proof that no
value under the old key alone remains; and the lake's record of which keys its hashes were made with.

Why wrap instead of re-hashing from bronze: raw lines keep their personal data only ``RAPPORT_RAW_RETENTION_DAYS``
(30 by default), and an erased person's raw values are gone on purpose while their suppression must keep matching.
Re-hashing from raw lines could reach neither, so it would leave old-key hashes or break joins and suppressions.
Wrapping needs no raw value: a stored hash ``v`` becomes ``HMAC(k_new, v)`` (a pseudonym ``h_…``: ``h_`` and 32 hex
digits of ``HMAC(k_new, pseudonym)``), and new values are hashed through the chain of keys, oldest first
(``RAPPORT_PII_KEY_RETIRED``, then ``RAPPORT_PII_KEY``: ``jobs.pii.keyring``), which gives the same values.
The old key alone then reverses nothing in the lake: every stored value also needs the new one.

Which columns hold hashes comes from the registry (``schemas/*.yaml``): ``pii: hashed`` columns (64 hex digits, or
structs and arrays of them) and ``pii: identifier`` columns, where a pseudonym (``h_`` + 32 hex) or a typed
identifier (``email:<hash>``, ``anon:h_…``) is wrapped and any other id is left as it is. Customer keys stay.

A rotation runs under the lake's write lease. Each table is one overwrite (one atomic commit); ``_rotation.json``
records the tables done, so a killed rotation resumes where it stopped. Then the earlier versions of those tables
are vacuumed (after registered readers finish), stored validation results and Data Docs pages (which can quote
values) are removed, and ``_keys.json`` records the new chain, which every later hashing run must be configured with.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jobs.config import Config, ConfigError
from jobs.lake import Lake
from jobs.pii import keyring
from jobs.pii.keychain import RECORD, STATE, recorded_chain
from jobs.storage import remove_tree

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)
HASH_RX, PSEUDONYM_RX = r"^[0-9a-f]{64}$", r"^h_[0-9a-f]{32}$"
HASHED_TYPES = ("email", "phone", "social", "handle")  # typed identifiers whose value is a keyed hash (crm: if hashed)
STAGING_RUN = "key-rotation"
CRM_ID = ("silver.crm_customers", "customer_id")


class RotationError(RuntimeError):
    """The rotation cannot start or finish; the message says why and what to do."""


# ---- what a rotation rewrites
def _wrap_sql(column: str, kid: str, kind: str, hashed_types: tuple[str, ...]) -> str:
    """Engine SQL: a string column with each hash in it wrapped in the key ``kid``."""
    wrap = f"{keyring.HMAC_SQL}({{v}}, '{kid}')"
    pseudo = f"concat('h_', substr({keyring.HMAC_SQL}({{v}}, '{kid}'), 1, {keyring.PSEUDONYM_DIGITS}))"
    if kind == "hashed":
        return f"CASE WHEN {column} RLIKE '{HASH_RX}' THEN {wrap.format(v=column)} ELSE {column} END"
    prefix, rest = f"substring_index({column}, ':', 1)", f"substr({column}, instr({column}, ':') + 1)"
    return (f"CASE WHEN {column} RLIKE '{PSEUDONYM_RX}' THEN {pseudo.format(v=column)} "
            f"WHEN {column} RLIKE '^({'|'.join(hashed_types)}):[0-9a-f]{{64}}$' THEN concat({prefix}, ':', {wrap.format(v=rest)}) "
            f"WHEN {column} RLIKE '^[a-z]+:h_[0-9a-f]{{32}}$' THEN concat({prefix}, ':', {pseudo.format(v=rest)}) "
            f"ELSE {column} END")


def wrapped(df: "DataFrame", columns: dict[str, str], kid: str, hashed_types: tuple[str, ...]) -> "DataFrame":
    """``df`` with the named columns' hashes wrapped (``columns``: name -> hashed or identifier). Strings are wrapped
    in place; an array of strings or of structs is taken apart by position (a lambda may not call the hash), its
    string elements or fields wrapped, and put back. Pure."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, StringType, StructType

    types = {f.name: f.dataType for f in df.schema.fields}
    out = df
    for name, kind in columns.items():
        dtype = types.get(name)
        if isinstance(dtype, StringType):
            out = out.withColumn(name, F.expr(_wrap_sql(f"`{name}`", kid, kind, hashed_types)))
        elif isinstance(dtype, ArrayType) and isinstance(dtype.elementType, (StringType, StructType)):
            el = dtype.elementType
            fields = [None] if isinstance(el, StringType) else [f.name for f in el.fields if isinstance(f.dataType, StringType)]
            idx = f"_rot_{name}_i"
            exploded = out.withColumn("_rot_id", F.monotonically_increasing_id())
            items = exploded.select("_rot_id", F.posexplode(name).alias(idx, "_rot_el"))
            for f in fields:
                target = "_rot_el" if f is None else f"_rot_el.`{f}`"
                items = items.withColumn(f"_rot_{f or 'value'}", F.expr(_wrap_sql(target, kid, kind, hashed_types)))
            if isinstance(el, StringType):
                rebuilt = F.col("_rot_value")
            else:
                rebuilt = F.struct(*[(F.col(f"_rot_{f.name}") if f.name in fields else F.col(f"_rot_el.`{f.name}`"))
                                     .alias(f.name) for f in el.fields])
            regrouped = (items.groupBy("_rot_id").agg(F.sort_array(F.collect_list(F.struct(F.col(idx), rebuilt.alias("v"))))
                                                       .alias("_rot_items"))
                         .select("_rot_id", F.expr("transform(_rot_items, x -> x.v)").alias("_rot_new")))
            out = (exploded.join(regrouped, "_rot_id", "left")
                   .withColumn(name, F.when(F.col(name).isNull(), F.col(name))
                               .otherwise(F.coalesce("_rot_new", F.col(name))))
                   .drop("_rot_id", "_rot_new"))
    return out.select(*df.columns)


def rewritten_columns(t, cfg: Config) -> dict[str, str]:
    """The columns of a registered table a rotation rewrites: name -> hashed or identifier. The CRM id is an
    identifier the registry cannot classify alone: a keyed hash unless RAPPORT_CRM_IDS=plain."""
    out = {**{c: "identifier" for c in t.pii("identifier")}, **{c: "hashed" for c in t.pii("hashed")}}
    if t.qualified == CRM_ID[0] and cfg.crm_ids == "hashed":
        out[CRM_ID[1]] = "hashed"
    return out


@dataclass
class Rotation:
    old_chain: list[str]
    new_chain: list[str]
    tables: dict[str, int] = field(default_factory=dict)  # table -> rows rewritten
    files_removed: int = 0
    old_values: int = 0  # distinct stored hashes and pseudonyms before
    old_values_left: dict[str, int] = field(default_factory=dict)  # table -> old values still found (must be 0)
    seconds: float = 0.0

    @property
    def proven(self) -> bool:
        return self.old_values > 0 and not any(self.old_values_left.values())


def rotate(spark: "SparkSession", cfg: Config, progress=print) -> Rotation:
    """Wrap every stored hash of the lake in RAPPORT_PII_KEY_NEXT; see the module's doc. Idempotent: a rotation
    killed part-way is completed by running it again."""
    from jobs.runs import lease

    if not cfg.pii_key_next:
        raise ConfigError("RAPPORT_PII_KEY_NEXT is not set: generate the new key with "
                          "`python -c 'import secrets; print(secrets.token_hex(32))'` and export it")
    started = time.monotonic()
    lake = Lake(cfg, spark)
    new_kid = keyring.hold(cfg.pii_key_next)
    hashed_types = HASHED_TYPES + (("crm",) if cfg.crm_ids == "hashed" else ())
    with lease.hold(cfg, "privacy rotate-key"):
        state = lake.read_record(STATE)
        old_chain = keyring.hold(cfg.pii_keys()).split(",")
        targets = [t for t in lake.existing() if rewritten_columns(t, lake.cfg)]
        if state is None:
            recorded = recorded_chain(cfg)
            if recorded is not None and recorded != old_chain:
                raise RotationError(f"the lake's key chain is {recorded}, the configured one {old_chain}: configure the "
                                    "keys the lake was made with before rotating")
            if new_kid in old_chain:
                raise RotationError("RAPPORT_PII_KEY_NEXT is a key the lake already uses: give a new one")
            state = {"from": old_chain, "to": old_chain + [new_kid], "done": {}}
            if targets:
                _old_values(lake, targets)  # staged before any table changes
            lake.write_record(STATE, state)
        elif state["to"][-1] != new_kid or state["from"] != old_chain:
            raise RotationError(f"a rotation from {state['from']} to {state['to']} is under way: run it with the same "
                                "RAPPORT_PII_KEY and RAPPORT_PII_KEY_NEXT to complete it")
        result = Rotation(state["from"], state["to"])
        old = _old_values(lake, targets) if targets else None
        result.old_values = old.count() if old is not None else 0
        for t in targets:
            if t.qualified in state["done"]:
                result.tables[t.qualified] = state["done"][t.qualified]
                continue
            current = lake.read(t)
            rows = lake.checkpoint(wrapped(current, rewritten_columns(t, lake.cfg), new_kid, hashed_types), STAGING_RUN,
                                   t.qualified.replace(".", "-"))
            lake.rewrite(t, rows)  # one overwrite: one commit
            state["done"][t.qualified] = result.tables[t.qualified] = rows.count()
            lake.write_record(STATE, state)
            progress(f"  {t.qualified}: {result.tables[t.qualified]:,} rows rewrapped")
        result.files_removed = lake.vacuum_now([t.qualified for t in targets], "the key rotation's vacuum")
        for folder in ("_docs", "_quality"):  # validation records quote sample values: the next gate writes new ones
            remove_tree(cfg, f"{lake.root}/{folder}")
        if old is not None:
            for t in targets:
                found = None
                for name in rewritten_columns(t, lake.cfg):
                    values = _values(lake.read(t), name)
                    hits = values.join(old, "v", "left_semi")
                    found = hits if found is None else found.unionByName(hits)
                result.old_values_left[t.qualified] = found.distinct().count() if found is not None else 0
        if any(result.old_values_left.values()):
            raise RotationError(f"old values remain after the rotation: {result.old_values_left}; nothing was "
                                "recorded as done: run it again")
        lake.write_record(RECORD, {"chain": state["to"], "recorded_at": time.time(),
                                  "rotated_from": state["from"]})
        lake.write_record(STATE, None)
        remove_tree(cfg, lake.staging(STAGING_RUN))
    result.seconds = round(time.monotonic() - started, 1)
    log.info("key rotation: %d tables, %d old values, %d files removed", len(result.tables), result.old_values,
             result.files_removed)
    return result


def _values(df: "DataFrame", name: str) -> "DataFrame":
    """Every string stored in a column (an array's elements, a struct's string fields) as rows of ``v``."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, StringType, StructType

    dtype = df.schema[name].dataType
    if isinstance(dtype, StringType):
        return df.select(F.col(name).alias("v"))
    if isinstance(dtype, ArrayType):
        items = df.select(F.explode(name).alias("e"))
        if isinstance(dtype.elementType, StructType):
            parts = [items.select(F.col(f"e.`{f.name}`").alias("v")) for f in dtype.elementType.fields
                     if isinstance(f.dataType, StringType)]
            out = parts[0]
            for p in parts[1:]:
                out = out.unionByName(p)
            return out
        return items.select(F.col("e").alias("v"))
    return df.select(F.lit(None).cast("string").alias("v")).limit(0)


def _old_values(lake: Lake, targets) -> "DataFrame":
    """The distinct hashes and pseudonyms stored before the rotation (typed identifiers by their value), staged in
    the run's scratch (removed at the end; a resumed rotation reads them from there): what the proof looks for."""
    from pyspark.sql import functions as F

    path = lake.staging(STAGING_RUN, "old-values")
    if lake._has_parquet(path):
        return lake.spark.read.parquet(path)
    parts = [_values(lake.read(t), name) for t in targets for name in rewritten_columns(t, lake.cfg)]
    values = parts[0]
    for p in parts[1:]:
        values = values.unionByName(p)
    values = values.select(F.expr("CASE WHEN v RLIKE '^[a-z]+:' THEN substr(v, instr(v, ':') + 1) ELSE v END").alias("v"))
    values = values.where(f"v RLIKE '{HASH_RX}' OR v RLIKE '{PSEUDONYM_RX}'").distinct()
    return lake.checkpoint(values, STAGING_RUN, "old-values")
