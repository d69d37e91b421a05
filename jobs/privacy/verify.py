"""Proof that a person is gone: every file under the lake root and the export prefix, scanned by the engine.

Every file, whether the current version of its table references it or not: Parquet files are read column by
column, everything else (``_delta_log`` JSON, Data Docs, manifests) as text. The scan looks for each of the
person's identifiers and customer keys as a whole word, and hashes every email and phone number it finds in
any text with the lake's key, comparing it with the person's: so raw values are found without being stored.

Two places are left out, by design, and the report says so: ``ops.privacy_requests`` and ``ops.suppressions``
keep the person's hashes so that the request can be proven and the person stays out, and ``_privacy/`` holds
the proofs themselves.

The landing zone is scanned too, but reported apart (``at_source``): its files belong to the tools that wrote
them (a Segment bucket, the collector's spool), Rapport never rewrites them, and a file already taken is never
read again (if it were, by a backfill, the person's suppression drops its lines at refine). The proof lists
them so the owner of the source can delete or rewrite them.
"""

from __future__ import annotations

import html
import io
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.config import Config
from jobs.lake import Lake
from jobs.pii import keyring
from jobs.privacy.person import Person
from jobs.storage import is_s3, list_objects

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# the request record and the suppression list (they keep the person's hashes on purpose), the proofs, and the leases:
# the lake's and its readers' (a command's name, a process and a time), which come and go while the scan runs (a
# reader's, listed and then removed before the engine read it, failed a verification once: "Object … not found")
EXCLUDED = ("ops/privacy_requests/", "ops/suppressions/", "_privacy/", "_lease.json", "_readers/")
NUMBER_RUN = r"\+?[0-9][0-9 ().-]{7,}[0-9]"  # digits and what people write between them, 9 characters or more
FILES_PER_READ = 2_000


@dataclass
class Proof:
    request_id: str
    searched: dict = field(default_factory=dict)
    where: dict = field(default_factory=dict)
    found: list[dict] = field(default_factory=list)
    at_source: list[dict] = field(default_factory=list)
    verified_at: str = ""

    @property
    def clean(self) -> bool:
        return not self.found


def _hmac(kid: str, value: str) -> str:
    return keyring.digest(value.strip().lower(), kid)


def scanner(tokens: list[str], emails: list[str], phones: list[str], kid: str):
    """The ``mapInArrow`` function: per file, what of the person it holds (kind, a short fingerprint).

    Linear in the text: identifiers are found by substring search, then checked as whole words; emails are
    found from their ``@`` (the scrubber's pattern, tried at every character of a long run of letters and digits,
    is quadratic in it); every distinct email and phone candidate is hashed once."""
    words = {t: re.compile(f"(?<![A-Za-z0-9_]){re.escape(t)}(?![A-Za-z0-9_])") for t in tokens}
    domain_rx, local_rx = re.compile(r"(@|%40)[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"), re.compile(r"[A-Za-z0-9._%+-]{1,64}$")
    run_rx, piece_rx = re.compile(NUMBER_RUN), re.compile(r"\+?[0-9][0-9().-]*")
    emails_set, phones_set, k = set(emails), set(phones), kid  # the key's id: the key stays where this runs

    def found_emails(text: str) -> set[str]:
        out = set()
        for m in domain_rx.finditer(text):
            local = local_rx.search(text, max(0, m.start() - 64), m.start())
            if local:
                out.add(local.group(0) + "@" + m.group(0)[len(m.group(1)):])
        return out

    def phone_candidates(text: str) -> set[str]:
        """Every run of consecutive space-separated number groups holding 9 to 15 digits, as it is hashed
        (digits and a leading +): '+44 20 7946 0958' but also '0958 +44 20 7946 0958 12' yields it."""
        out = set()
        for m in run_rx.finditer(text):
            pieces = [re.sub(r"[^0-9+]", "", p.group(0)) for p in piece_rx.finditer(m.group(0))]
            for i in range(len(pieces)):
                joined = ""
                for piece in pieces[i:]:
                    joined += piece
                    digits = len(joined) - joined.count("+")
                    if digits > 15:
                        break
                    if digits >= 9:
                        out.add(joined)
        return out

    def texts(path: str, content: bytes):
        if path.endswith(".parquet"):
            import pyarrow.parquet as pq

            try:
                t = pq.read_table(io.BytesIO(content))
            except Exception:
                yield content.decode("utf-8", "replace")
                return
            import pyarrow.types as pat

            for col in t.columns:
                if pat.is_temporal(col.type) or pat.is_boolean(col.type) or pat.is_floating(col.type):
                    continue  # holds no identifier, email or phone
                yield "\n".join("" if v is None else (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
                                for v in col.to_pylist())
        else:
            try:
                import gzip

                content = gzip.decompress(content) if content[:2] == b"\x1f\x8b" else content
            except Exception:
                pass
            yield content.decode("utf-8", "replace")

    def scan(batches):
        import pyarrow as pa

        for b in batches:
            out_path, out_kind, out_what = [], [], []
            for path, content in zip(b.column("path").to_pylist(), b.column("content").to_pylist()):
                hits = set()
                for text in texts(path, content or b""):
                    hits |= {("identifier", t[:10]) for t, rx in words.items() if t in text and rx.search(text)}
                    if emails_set and ("@" in text or "%40" in text):
                        hits |= {("email", h[:10]) for h in map(lambda e: _hmac(k, e), found_emails(text))
                                 if h in emails_set}
                    if phones_set:
                        hits |= {("phone", h[:10]) for h in (_hmac(k, c) for c in phone_candidates(text))
                                 if h in phones_set}
                for kind, what in sorted(hits):
                    out_path.append(path)
                    out_kind.append(kind)
                    out_what.append(what)
            yield pa.record_batch([pa.array(out_path, pa.string()), pa.array(out_kind, pa.string()),
                                   pa.array(out_what, pa.string())], names=["path", "kind", "what"])

    return scan


def verify(spark: "SparkSession", cfg: Config, request_id: str, person: Person) -> Proof:
    lake = Lake(cfg, spark)
    tokens = sorted(set(person.keys) | {i.split(":", 1)[1] for i in person.identifiers if len(i.split(":", 1)[1]) >= 6})
    emails, phones = person.of_type("email"), person.of_type("phone")
    proof = Proof(request_id, searched={
        "customer_keys": len(person.keys), "identifiers": len(person.identifiers),
        "identifier_types": sorted({i.split(":", 1)[0] for i in person.identifiers}),
        "fingerprints": [t[:10] for t in tokens],
        "hashed_emails": len(emails), "hashed_phones": len(phones),
        "also": "every email and phone number in any text, hashed with the lake's key and compared"})
    roots = [lake.root] + ([cfg.export_uri.rstrip("/")] if cfg.export_uri else [])
    fn = scanner(tokens, emails, phones, keyring.hold(cfg.pii_keys()))
    files, sizes, proof.found = _scan(spark, cfg, roots, fn)
    proof.where = {"roots": roots, "files": files, "bytes": sizes, "excluded": list(EXCLUDED)}
    landing, _, proof.at_source = _scan(spark, cfg, [cfg.landing_root.rstrip("/")], fn)
    proof.where["landing_files"] = landing
    proof.verified_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return proof


def _scan(spark: "SparkSession", cfg: Config, roots: list[str], fn) -> tuple[int, int, list[dict]]:
    """Files and bytes under the roots, and what of the person the engine found in them (findings only)."""
    files: list[str] = []
    sizes = 0
    for root in roots:
        for obj in list_objects(cfg, root):
            if any(obj.key.startswith(x) or f"/{x}" in f"/{obj.key}" for x in EXCLUDED):
                continue
            files.append(obj.uri)
            sizes += obj.size
    found = []
    for i in range(0, len(files), FILES_PER_READ):
        raw = spark.read.format("binaryFile").load(files[i: i + FILES_PER_READ]).dropDuplicates(["path"])
        found += [r.asDict() for r in raw.mapInArrow(fn, "path string, kind string, what string").collect()]  # findings
    return len(files), sizes, sorted(found, key=lambda f: (f["path"], f["kind"]))


def write_report(cfg: Config, proof: Proof) -> str:
    """``_privacy/<request>/proof.json`` and a page a person reads, ``proof.html``; returns the page's location."""
    from jobs.storage import arrow_filesystem

    base = f"{Lake(cfg).root}/_privacy/{proof.request_id}"
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>Erasure proof {html.escape(proof.request_id)}</title>"
            "<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}td,th{border:1px solid #ccc;"
            "padding:.3rem .6rem;text-align:left}table{border-collapse:collapse}.ok{color:#176f2c}.fail{color:#b00020}"
            "</style></head><body>"
            f"<h1>Erasure proof for request {html.escape(proof.request_id)}</h1>"
            f"<p class='{'ok' if proof.clean else 'fail'}'><strong>"
            + ("Nothing of the person was found." if proof.clean else f"{len(proof.found)} places still hold the person.")
            + f"</strong> Scanned {proof.where.get('files', 0):,} files, {proof.where.get('bytes', 0):,} bytes, at "
            f"{html.escape(proof.verified_at)}.</p><h2>What was searched</h2><table>"
            + "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in proof.searched.items())
            + "</table><h2>Where</h2><table>"
            + "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in proof.where.items())
            + "</table>" + ("" if proof.clean else "<h2>Found</h2><table><tr><th>file</th><th>kind</th><th>fingerprint</th></tr>"
                            + "".join(f"<tr><td>{html.escape(f['path'])}</td><td>{f['kind']}</td><td>{f['what']}</td></tr>"
                                      for f in proof.found) + "</table>")
            + ("" if not proof.at_source else
               f"<h2>At the source</h2><p>{len({f['path'] for f in proof.at_source})} files of the landing zone "
               "still hold the person. Rapport does not rewrite its sources and never reads a taken file again; "
               "their owner should delete or rewrite them:</p><ul>"
               + "".join(f"<li>{html.escape(p)}</li>" for p in sorted({f['path'] for f in proof.at_source}))
               + "</ul>")
            + "<p>Left out by design: the request record and the suppression list (they keep the person's hashes so "
              "the request can be proven and the person stays out) and these proofs.</p></body></html>")
    fs, path = arrow_filesystem(cfg, base)
    for name, body in (("proof.json", json.dumps(asdict(proof), indent=2)), ("proof.html", page)):
        with fs.open_output_stream(f"{path}/{name}") as f:
            f.write(body.encode())
    return f"{base}/proof.html" if is_s3(base) else Path(base, "proof.html").as_uri()
