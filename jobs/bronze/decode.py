"""A landing file's bytes → numbered records, salvaging around damage and keeping every byte it cannot read.

This runs on the engine (``decode_batches`` under ``mapInArrow``), so no landing byte passes through
the process that starts a run.

- **Gzip or not is decided by the bytes** (the gzip magic), not by the file name. A gzip file is read
  member by member: a collector appends members, and one truncated or corrupt member must not cost the
  rest of the file. A damaged member becomes one ``corrupt_gzip_member`` record that keeps the member's
  compressed bytes (and any text it yielded before the damage); reading resynchronises on the next
  gzip header.
- **Records are lines**, split on ``\\n`` only (JSON strings may hold U+2028), ``\\r`` trimmed, blank lines
  counted and skipped. A UTF-8 byte-order mark at the start of a file is removed. A line that is not
  valid UTF-8 is kept as bytes with the reason ``not_utf8``, never rewritten.
- **Whole-document files** (a REST response saved as one pretty-printed JSON document, such as a page of
  the Shopify Admin API ``{"orders": [...]}``) and one-line pages become one record per element, each the
  element's exact text.
- **JSON shape** is judged here where it is cheap: a record that is an array, a scalar, nests deeper than
  ``MAX_DEPTH``, uses ``NaN``/``Infinity`` or is not JSON at all gets its own reason. Records that look like
  objects are checked by the engine afterwards (``ingest.NOT_AN_OBJECT``).

Record numbers count records from 1 in file order; a damaged member takes one number of its own, so
every record has a unique ``(file, line_number)``. Every file also yields one ``file`` row (number 0)
with its counts, so an empty file is accounted for too.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field
from typing import Iterator

GZIP_MAGIC = b"\x1f\x8b\x08"
BOM = b"\xef\xbb\xbf"
MAX_DEPTH = 64  # deeper JSON is quarantined (json_too_deep); real events nest a handful of levels
MAX_PARTIAL_CHARS = 10_000  # what a damaged member keeps of the text it yielded before the damage
# a REST page or a JSON array file: one record per element of the array
PAGE = re.compile(r'^(\{\s*"(orders|data|records|events)"\s*:\s*)?\[')
OUTPUT_SCHEMA = ("file string, kind string, line_number bigint, value string, raw_bytes binary, reason string, "
                 "detail string, blank_lines bigint, encoding string, bytes_read bigint")


@dataclass
class Record:
    line_number: int
    value: str | None  # the text, when it is valid UTF-8
    raw_bytes: bytes | None = None  # the bytes, when they cannot be read as text (or a damaged member)
    reason: str | None = None
    detail: str | None = None


@dataclass
class Decoded:
    records: list[Record] = field(default_factory=list)
    blank_lines: int = 0
    encoding: str = "text"

    # views the unit tests read
    @property
    def lines(self) -> list[str]:
        return [r.value for r in self.records if r.reason is None]

    @property
    def numbers(self) -> list[int]:
        return [r.line_number for r in self.records if r.reason is None]

    @property
    def corrupt(self) -> list[Record]:
        return [r for r in self.records if r.reason == "corrupt_gzip_member"]

    def _next(self) -> int:
        return len(self.records) + 1

    def add(self, value: str | None, raw: bytes | None = None, reason: str | None = None,
            detail: str | None = None) -> None:
        self.records.append(Record(self._next(), value, raw, reason, detail))


class _NonStandard(ValueError):
    pass


def _reject_constant(name: str):
    raise _NonStandard(name)


def _depth(value) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            deepest = max(deepest, d)
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return deepest


def judge(text: str) -> tuple[str, str] | None:
    """(reason, detail) when a record is not one JSON object Rapport can use; None when it is. Pure."""
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except _NonStandard as exc:
        return "json_nonstandard", f"uses {exc}, which JSON does not allow"
    except RecursionError:
        return "json_too_deep", f"nests deeper than {MAX_DEPTH} levels"
    except ValueError as exc:
        msg = getattr(exc, "msg", str(exc))
        return "malformed_json", f"not JSON: {msg} (column {getattr(exc, 'colno', '?')})"
    if isinstance(value, list):
        return "json_array", f"a JSON array of {len(value)} items, not an object"
    if not isinstance(value, dict):
        return "json_scalar", f"a JSON {type(value).__name__ if value is not None else 'null'}, not an object"
    if _depth(value) > MAX_DEPTH:
        return "json_too_deep", f"nests deeper than {MAX_DEPTH} levels"
    return None


def _needs_judging(text: str) -> bool:
    s = text.strip()
    if not (s.startswith("{") and s.endswith("}")):
        return True
    return "NaN" in s or "Infinity" in s or (s.count("{") + s.count("[")) > MAX_DEPTH


def _elements(text: str) -> list[str] | None:
    """The exact text of each element of the page's array, or None when the text is not such a page."""
    m = PAGE.match(text.lstrip())
    if not m:
        return None
    text = text.lstrip()
    decoder, i, out = json.JSONDecoder(), m.end(), []
    try:
        while True:
            while i < len(text) and text[i] in " \t\r\n,":
                i += 1
            if i >= len(text) or text[i] == "]":
                break
            value, end = decoder.raw_decode(text, i)
            if not isinstance(value, dict):
                return None  # an array of other things is one record (json_array), not a page
            out.append(text[i:end])
            i = end
        json.loads(text)  # the whole page must be valid, or it is not a page
    except (ValueError, RecursionError):
        return None
    return out


def _add_text(out: Decoded, data: bytes) -> None:
    """Records of a block of (decompressed) bytes."""
    if data.startswith(BOM) and not out.records:
        data = data[len(BOM):]
    whole = None
    if data.lstrip()[:1] in (b"{", b"["):
        first = data.lstrip().split(b"\n", 1)[0]
        try:
            json.loads(first)
        except (ValueError, RecursionError):  # the first line is not a document by itself: maybe the file is one document
            whole = data
        else:
            if PAGE.match(first.decode("utf-8", "replace")):
                whole = data
    if whole is not None:
        try:
            text = whole.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        elements = _elements(text) if text is not None else None
        if elements is not None:
            for e in elements:
                out.add(e, reason=None)
                _check_shape(out.records[-1])
            out.encoding += "+page"
            return
        if text is not None and judge(text) is None and "\n" in text.strip():
            out.add(text.strip())  # one pretty-printed document
            return
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()  # the newline that ends the last line
    for raw in parts:
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if not line.strip():
            out.blank_lines += 1
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            out.add(None, line, "not_utf8", f"not valid UTF-8 at byte {exc.start} (the bytes are kept as they came)")
            continue
        out.add(text)
        _check_shape(out.records[-1])


def _check_shape(record: Record) -> None:
    if record.value is not None and _needs_judging(record.value):
        verdict = judge(record.value)
        if verdict:
            record.reason, record.detail = verdict


def decode(data: bytes, gzipped: bool | None = None) -> Decoded:
    """Records of a file's bytes. ``gzipped`` is decided by the bytes when not given."""
    out = Decoded()
    if gzipped is None:
        gzipped = data[:3] == GZIP_MAGIC
    if not gzipped:
        _add_text(out, data)
        return out
    out.encoding = "gzip"
    view = memoryview(data)
    offset, member = 0, 0
    while offset < len(data):
        member += 1
        d = zlib.decompressobj(31)
        try:
            text = d.decompress(view[offset:])
        except zlib.error as exc:
            nxt = data.find(GZIP_MAGIC, offset + 1)
            stop = nxt if nxt != -1 else len(data)
            out.add(None, bytes(view[offset:stop]), "corrupt_gzip_member",
                    f"gzip member {member} at byte {offset} is corrupt ({exc}); its {stop - offset} bytes are kept")
            if nxt == -1:
                break
            offset = nxt
            continue
        if not d.eof:
            partial = text.decode("utf-8", "replace")[:MAX_PARTIAL_CHARS]
            out.add(partial, bytes(view[offset:]), "corrupt_gzip_member",
                    f"gzip member {member} at byte {offset} is truncated: the file ends inside it "
                    f"({len(data) - offset} bytes kept; its complete lines cannot be trusted)")
            break
        _add_text(out, text)
        offset = len(data) - len(d.unused_data)
        if d.unused_data and not d.unused_data.startswith(GZIP_MAGIC[:2]):
            nxt = data.find(GZIP_MAGIC, offset)
            stop = nxt if nxt != -1 else len(data)
            if stop > offset and d.unused_data[: stop - offset].strip(b"\0"):  # zero padding is harmless
                out.add(None, bytes(view[offset:stop]), "corrupt_gzip_member",
                        f"{stop - offset} bytes of garbage after gzip member {member} at byte {offset} (kept)")
            if nxt == -1:
                break
            offset = nxt
    return out


def decode_batches(batches) -> Iterator:
    """``mapInArrow`` over the ``binaryFile`` source (path, content): one ``file`` row and the records of each
    file, as ``OUTPUT_SCHEMA``. Runs in the engine's Python workers."""
    import pyarrow as pa

    names = [f.split()[0] for f in OUTPUT_SCHEMA.split(", ")]
    types = [pa.string(), pa.string(), pa.int64(), pa.string(), pa.binary(), pa.string(), pa.string(), pa.int64(),
             pa.string(), pa.int64()]
    for batch in batches:
        paths, contents = batch.column("path").to_pylist(), batch.column("content").to_pylist()
        for path, content in zip(paths, contents):
            content = content or b""
            d = decode(content)
            cols: list[list] = [[] for _ in names]
            rows = [(path, "file", 0, None, None, None, None, d.blank_lines, d.encoding, len(content))]
            rows += [(path, "record", r.line_number, r.value, r.raw_bytes, r.reason, r.detail, None, None, None)
                     for r in d.records]
            for row in rows:
                for c, v in zip(cols, row):
                    c.append(v)
            yield pa.record_batch([pa.array(c, t) for c, t in zip(cols, types)], names=names)
