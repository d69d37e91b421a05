"""The pseudonymisation key, used only inside the process that holds it: it never enters a query plan.

The engine hashes identifiers with SQL functions registered on every session (``register``):
``rapport_hmac(text, key_ids)``, ``rapport_pseudonym(text, key_ids)`` and ``rapport_hmac_all(array<text>, key_ids)``.
They are Python UDFs that
look the key up *where they run*: in this process's keyring (``hold``: the embedded engine runs here), or
else in the environment of the engine's worker (``RAPPORT_PII_KEY`` or a file named by
``RAPPORT_PII_KEY_FILE``; ``…_NEXT`` during a key rotation). A plan carries only the key's id: a keyed
fingerprint of a fixed text that tells which key is meant and nothing of it. The UDFs are module functions,
so a plan names them (``jobs.pii.keyring._hmac_text``) and never carries a closure with a key inside.

The hash is HMAC-SHA256 (RFC 2104) of the UTF-8 bytes, hex, exactly as the engine's ``sha2`` over the
padded key computed it before (so no lake is re-keyed); ``hmac_sql`` trims and lower-cases in SQL first.

Keys form a chain, oldest first (``RAPPORT_PII_KEY_RETIRED``, then ``RAPPORT_PII_KEY``): a lake whose key was
rotated (``jobs.privacy.rotation``) keeps every stored value wrapped in the newer key, ``HMAC(k2, HMAC(k1, x))``,
and new values are hashed the same way. A pseudonym (an id that held an email) is ``h_`` and 32 hex digits of the
hash; wrapped, ``h_`` and 32 hex digits of the next key's HMAC of the pseudonym. With one key nothing changes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from typing import TYPE_CHECKING, Iterable, Sequence

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from jobs.config import Config

HMAC_SQL, HMAC_ALL_SQL, PSEUDONYM_SQL = "rapport_hmac", "rapport_hmac_all", "rapport_pseudonym"
PSEUDONYM_DIGITS = 32
#: where a worker finds the keys it may be asked for: (variable, variable naming a file); the retired keys are a
#: comma-separated list (one per line in a file)
KEY_SOURCES = (("RAPPORT_PII_KEY", "RAPPORT_PII_KEY_FILE"), ("RAPPORT_PII_KEY_RETIRED", "RAPPORT_PII_KEY_RETIRED_FILE"),
               ("RAPPORT_PII_KEY_NEXT", "RAPPORT_PII_KEY_NEXT_FILE"))
_ID_TEXT = b"rapport pseudonymisation key id v1"

_lock = threading.Lock()
_held: dict[str, tuple["hashlib._Hash", "hashlib._Hash"]] = {}  # key id -> (inner, outer) SHA-256 states


class KeyMissing(RuntimeError):
    """The engine was asked for a key it does not hold; the message says how to give it the key."""


def missing_key(exc: BaseException) -> str | None:
    """The ``KeyMissing`` message inside an engine error (the UDF's traceback comes back as text), if any."""
    for line in reversed(str(exc).splitlines()):
        if "KeyMissing: " in line:
            return line.split("KeyMissing: ", 1)[1].strip()
    return None


def key_id(key: str) -> str:
    """A public name for a key: a keyed fingerprint of a fixed text (reveals nothing of the key)."""
    return hmac.new(key.encode(), _ID_TEXT, hashlib.sha256).hexdigest()[:16]


def _pads(key: str) -> tuple["hashlib._Hash", "hashlib._Hash"]:
    k = key.encode()
    if len(k) > 64:
        k = hashlib.sha256(k).digest()
    k = k.ljust(64, b"\0")
    return hashlib.sha256(bytes(b ^ 0x36 for b in k)), hashlib.sha256(bytes(b ^ 0x5C for b in k))


def _hold_one(key: str) -> str:
    kid = key_id(key)
    with _lock:
        _held.setdefault(kid, _pads(key))
    return kid


def hold(keys: "str | Sequence[str]") -> str:
    """Keep the key (or the chain of keys, oldest first) in this process, for an engine that runs here; returns the
    ids the SQL names them by, comma-separated."""
    return ",".join(_hold_one(k) for k in ([keys] if isinstance(keys, str) else keys))


def _from_environment() -> None:
    for var, file_var in KEY_SOURCES:
        value = os.environ.get(var)
        if not value and os.environ.get(file_var):
            try:
                with open(os.environ[file_var], encoding="utf-8") as fh:
                    value = fh.read().strip()
            except OSError as exc:
                raise KeyMissing(f"{file_var}={os.environ[file_var]}: cannot read the key file ({exc.strerror})") from None
        for key in (value or "").replace("\n", ",").split(","):
            if key.strip():
                _hold_one(key.strip())


def _states(kid: str) -> tuple["hashlib._Hash", "hashlib._Hash"]:
    states = _held.get(kid)
    if states is None:
        _from_environment()
        states = _held.get(kid)
    if states is None:
        raise KeyMissing(
            f"the engine holds no pseudonymisation key with id {kid}: set RAPPORT_PII_KEY (or RAPPORT_PII_KEY_FILE, a "
            "mounted secret) to the same key where the engine's workers run (docs: 'The key on a cluster')")
    return states


def _digest_one(value: str, kid: str) -> str:
    inner, outer = (s.copy() for s in _states(kid))
    inner.update(value.encode())
    outer.update(inner.digest())
    return outer.hexdigest()


def digest(value: str, kids: str) -> str:
    """HMAC-SHA256 hex of the text as it is (no trimming) under the chain of held keys ``kids`` (each key's HMAC of
    the previous one's hex)."""
    for kid in kids.split(","):
        value = _digest_one(value, kid)
    return value


def pseudonym(value: str, kids: str) -> str:
    """``h_`` and 32 hex digits of the first key's HMAC of the text; each later key wraps the pseudonym before it."""
    for kid in kids.split(","):
        value = "h_" + _digest_one(value, kid)[:PSEUDONYM_DIGITS]
    return value


def _each(values: Iterable[str | None], fn, kids: str) -> list[str | None]:
    seen: dict[str, str] = {}
    out = []
    for v in values:
        if v is None or v == "":
            out.append(None)
        else:
            h = seen.get(v)
            if h is None:
                h = seen[v] = fn(v, kids)
            out.append(h)
    return out


def digests(values: Iterable[str | None], kids: str) -> list[str | None]:
    """``digest`` of each value, NULL for NULL or '' (the caller trimmed); each distinct value hashed once."""
    return _each(values, digest, kids)


def _texts(values, kids, fn):
    """Arrow in, Arrow out: a pandas UDF's conversions both ways cost as much again as the hashing (a SHA-256 of
    2M short texts: 0.94-1.11 s as an Arrow UDF against 1.68-2.14 s as a pandas one)."""
    import pyarrow as pa

    kid = kids[0].as_py() if len(kids) else None
    return pa.array(_each(values.to_pylist(), fn, kid) if len(values) else [], pa.string())


def _hmac_text(values, kids):
    return _texts(values, kids, digest)


def _pseudonym_text(values, kids):
    return _texts(values, kids, pseudonym)


def _hmac_array(arrays, kids):
    import pyarrow as pa

    kid = kids[0].as_py() if len(kids) else None
    return pa.array([None if a is None else _each(a, digest, kid) for a in arrays.to_pylist()], pa.list_(pa.string()))


def register(spark: "SparkSession") -> None:
    """Register ``rapport_hmac`` and ``rapport_hmac_all`` on the session (no key travels: the UDFs find it where
    they run)."""
    from pyspark.sql.functions import arrow_udf

    spark.udf.register(HMAC_SQL, arrow_udf(_hmac_text, "string"))
    spark.udf.register(PSEUDONYM_SQL, arrow_udf(_pseudonym_text, "string"))
    spark.udf.register(HMAC_ALL_SQL, arrow_udf(_hmac_array, "array<string>"))


def hmac_sql(column_sql: str, keys: "str | Sequence[str]") -> str:
    """Engine SQL: HMAC-SHA256 hex of a string column, trimmed and lower-cased first, NULL for NULL or blank.

    The key (or chain, ``Config.pii_keys``) is held in this process (``hold``) and the SQL names only ids."""
    return (f"CASE WHEN {column_sql} IS NULL OR trim({column_sql}) = '' THEN NULL "
            f"ELSE {HMAC_SQL}(lower(trim({column_sql})), '{hold(keys)}') END")


def pseudonym_sql(column_sql: str, keys: "str | Sequence[str]") -> str:
    """Engine SQL: the pseudonym of a string column (``h_`` and 32 hex digits of its keyed hash)."""
    return (f"CASE WHEN {column_sql} IS NULL OR trim({column_sql}) = '' THEN NULL "
            f"ELSE {PSEUDONYM_SQL}(lower(trim({column_sql})), '{hold(keys)}') END")


def hmac_all_sql(array_sql: str, element: str, body_sql: str, keys: "str | Sequence[str]") -> str:
    """Engine SQL: ``hmac_sql`` of ``body_sql`` for each ``element`` of an array (a lambda's body may not call a
    UDF, so the texts are made in a lambda and hashed in one call)."""
    return f"{HMAC_ALL_SQL}(transform({array_sql}, {element} -> lower(trim({body_sql}))), '{hold(keys)}')"


def crm_id_sql(cfg: "Config", column_sql: str) -> str:
    """Engine SQL: a CRM customer id as it is kept past bronze (a keyed hash unless RAPPORT_CRM_IDS=plain)."""
    if cfg.crm_ids == "plain":
        return column_sql
    return hmac_sql(column_sql, cfg.pii_keys())
