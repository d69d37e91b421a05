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
ASCII_SPACE = " \t\n\r\x0b\x0c"  # what bytes.strip() removes: a line of only these is blank
BOM = b"\xef\xbb\xbf"
MAX_DEPTH = 64  # deeper JSON is quarantined (json_too_deep); real events nest a handful of levels
MAX_PARTIAL_CHARS = 10_000  # what a damaged member keeps of the text it yielded before the damage
# a REST page or a JSON array file: one record per element of the array
PAGE = re.compile(r'^(\{\s*"(orders|data|records|events)"\s*:\s*)?\[')
OUTPUT_SCHEMA = ("file string, kind string, line_number bigint, value string, raw_bytes binary, reason string, "
                 "detail string, blank_lines bigint, encoding string, bytes_read bigint")
LINEAGE_SCHEMA = OUTPUT_SCHEMA + ", source_file string"  # with each file's name in lineage (``decode_batches(lineage=)``)
# scheme and bucket, or leading slashes: what a path loses to become the name the engine's ``binaryFile`` reports
SCHEME_OR_ROOT = re.compile(r"^[a-z0-9]+://[^/]*/|^/+")


@dataclass
class Record:
    line_number: int
    value: str | None  # the text, when it is valid UTF-8
    raw_bytes: bytes | None = None  # the bytes, when they cannot be read as text (or a damaged member)
    reason: str | None = None
    detail: str | None = None


@dataclass
class Decoded:
    """The records of a file (record ``i`` has number ``i + 1``): their texts as Arrow arrays, split from each block
    by the engine's Arrow library, and the few records with a reason or bytes (``notes``), so that no Python object
    is made per line (a Python string per line, then an Arrow array built from them, took 4.5 of 8 s over 1.1M
    lines)."""

    blank_lines: int = 0
    encoding: str = "text"
    chunks: list = field(default_factory=list)  # pyarrow string arrays of the records' texts, in order
    pending: list[str | None] = field(default_factory=list)  # texts added one at a time, not yet in ``chunks``
    notes: dict[int, tuple[bytes | None, str | None, str | None]] = field(default_factory=dict)  # (raw, reason, detail)
    count: int = 0

    def add(self, value: str | None, raw: bytes | None = None, reason: str | None = None,
            detail: str | None = None) -> None:
        self.pending.append(value)
        if raw is not None or reason is not None or detail is not None:
            self.notes[self.count] = (raw, reason, detail)
        self.count += 1

    def add_block(self, texts, notes: dict[int, tuple[bytes | None, str | None, str | None]]) -> None:
        """A pyarrow string array of records, with the notes of some of them (by their index in ``texts``)."""
        self._flush()
        self.chunks.append(texts)
        self.notes.update({self.count + i: note for i, note in notes.items()})
        self.count += len(texts)

    def add_lines(self, texts: list[str]) -> None:
        """Lines of text, each judged for its JSON shape where that is cheap (``_needs_judging``)."""
        for text in texts:
            verdict = judge(text) if _needs_judging(text) else None
            self.add(text, None, *(verdict or (None, None)))

    def _flush(self) -> None:
        import pyarrow as pa

        if self.pending:
            self.chunks.append(pa.array(self.pending, pa.string()))
            self.pending = []

    def columns(self, nulls_first: int = 0) -> tuple:
        """(texts, raw bytes, reasons, details) as pyarrow arrays of ``count`` rows, after ``nulls_first`` nulls (a
        file's own row goes first in the engine's batches: one copy of the texts, not two)."""
        import pyarrow as pa

        self._flush()
        texts = pa.concat_arrays([pa.nulls(nulls_first, pa.string()), *self.chunks])

        def noted(i: int, kind):
            if not any(note[i] is not None for note in self.notes.values()):
                return pa.nulls(nulls_first + self.count, kind)
            values = [None] * (nulls_first + self.count)
            for n, note in self.notes.items():
                values[nulls_first + n] = note[i]
            return pa.array(values, kind)

        return texts, noted(0, pa.binary()), noted(1, pa.string()), noted(2, pa.string())

    @property
    def records(self) -> list[Record]:
        texts, raws, reasons, details = (c.to_pylist() for c in self.columns())
        return [Record(i + 1, *r) for i, r in enumerate(zip(texts, raws, reasons, details))]

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
    if data.startswith(BOM) and not out.count:
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
            out.add_lines(elements)
            out.encoding += "+page"
            return
        if text is not None and judge(text) is None and "\n" in text.strip():
            out.add(text.strip())  # one pretty-printed document
            return
    import pyarrow as pa

    try:  # the usual block is valid UTF-8 as a whole: split by Arrow (a \n byte is never inside a character)
        text = pa.array([data], pa.binary()).cast(pa.string())
    except pa.ArrowInvalid:
        text = None
    if text is not None:
        _add_block(out, data, text)
        return
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
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
        out.add_lines([text])


def _add_block(out: Decoded, data: bytes, text) -> None:
    """The records of a valid UTF-8 block (``text``: a pyarrow string array of one value, ``data``'s text). Lines
    are split, trimmed of one ``\\r`` and framed by Arrow; only the lines that are not plainly one object (blank, not
    framed by braces, more brackets than ``MAX_DEPTH``, or any line when ``NaN``/``Infinity`` is in the block) are
    looked at in Python."""
    import numpy as np
    import pyarrow.compute as pc

    lines = pc.split_pattern(text, "\n").flatten()
    if not data or data.endswith(b"\n"):
        lines = lines.slice(0, len(lines) - 1)  # the newline that ends the last line
    if b"\r" in data:
        lines = pc.replace_substring_regex(lines, "\r$", "")
    if b"NaN" in data or b"Infinity" in data:
        suspects = np.arange(len(lines))
    else:
        framed = pc.and_(pc.starts_with(lines, "{"), pc.ends_with(lines, "}")).to_numpy(zero_copy_only=False)
        suspects = np.flatnonzero(~framed | (_brackets(lines) > MAX_DEPTH))
    blank, notes = [], {}
    for i, line in zip(suspects.tolist(), lines.take(suspects).to_pylist()):
        if not line.strip(ASCII_SPACE):
            blank.append(i)
        elif _needs_judging(line):
            verdict = judge(line)
            if verdict:
                notes[i - len(blank)] = (None, *verdict)  # its index once the blank lines before it are gone
    if blank:
        keep = np.ones(len(lines), dtype=bool)
        keep[blank] = False
        lines = lines.filter(keep)
        out.blank_lines += len(blank)
    out.add_block(lines, notes)


def _brackets(lines) -> "np.ndarray":
    """How many ``{`` and ``[`` each line of a pyarrow string array holds (an empty line's count is not
    meaningful: it is blank, and looked at anyway)."""
    import numpy as np

    if not len(lines):
        return np.zeros(0, dtype=np.int32)
    _, offsets, data = lines.buffers()
    offs = np.frombuffer(offsets, dtype=np.int32)[lines.offset: lines.offset + len(lines) + 1]
    chars = np.frombuffer(data, dtype=np.uint8)[: offs[-1]] if data is not None else np.zeros(0, dtype=np.uint8)
    if not len(chars):
        return np.zeros(len(lines), dtype=np.int32)
    mask = chars == ord("{")
    mask |= chars == ord("[")
    return np.add.reduceat(mask, np.minimum(offs[:-1], len(chars) - 1), dtype=np.int32)


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


def _first(value, nulls: int, kind):
    """An Arrow array of ``value`` and ``nulls`` nulls after it."""
    import pyarrow as pa

    return pa.concat_arrays([pa.array([value], kind), pa.nulls(nulls, kind)])


def engine_key(path: str) -> str:
    """A file's path without scheme, bucket or leading ``/``, so that a listed URI and the path the engine's
    ``binaryFile`` source reports (``tmp/x/a.json.gz`` for ``/tmp/x/a.json.gz``) compare equal."""
    return SCHEME_OR_ROOT.sub("", path.removeprefix("file://"))


RELEASE_BYTES = 256 * 2**20


def decode_batches(batches, lineage: dict[str, str] | None = None) -> Iterator:
    """``mapInArrow`` over the ``binaryFile`` source (path, content): one ``file`` row and the records of each
    file, as ``OUTPUT_SCHEMA``, ``file`` being the path as ``engine_key`` gives it. Runs in the engine's Python
    workers.

    With ``lineage`` (``engine_key`` of a path → its name in lineage), as ``LINEAGE_SCHEMA``: each row also
    carries its file's name, and a file not in ``lineage`` yields nothing. The names travel with the function
    rather than in a join: a join whose build side the engine chose to be the decoded records gathered them
    all in one batch, past Arrow's 2 GiB per string column (10M events failed so)."""
    import numpy as np
    import pyarrow as pa

    names = [f.split()[0] for f in (LINEAGE_SCHEMA if lineage is not None else OUTPUT_SCHEMA).split(", ")]
    # the worker's Arrow allocator keeps what decoded blocks used unless told to return it (the 5M bench's refine
    # peaked at 5.66 GiB so, 4.34 GiB when it was returned after every file, but that cost 10 s of ingest's 67):
    # returned after each batch of files and after every RELEASE_BYTES of text
    pool, held = pa.default_memory_pool(), 0
    for batch in batches:
        paths, contents = batch.column("path").to_pylist(), batch.column("content").to_pylist()
        for path, content in zip(paths, contents):
            path = engine_key(path)
            name = None if lineage is None else lineage.get(path)
            if lineage is not None and name is None:
                continue  # not a file this run took
            content = content or b""
            d = decode(content)
            n = d.count
            texts, raws, reasons, details = d.columns(nulls_first=1)
            # the file's own row (number 0), then its records. Columns that repeat one value, or hold only nulls
            # after the file's row, are built whole: a Python list per column cost a second over 1.1M lines
            cols = [pa.repeat(path, n + 1), pa.concat_arrays([pa.array(["file"]), pa.repeat("record", n)]),
                    pa.array(np.arange(n + 1, dtype=np.int64)), texts, raws, reasons, details,
                    _first(d.blank_lines, n, pa.int64()),
                    _first(d.encoding, n, pa.string()), _first(len(content), n, pa.int64()),
                    pa.repeat(pa.scalar(name, pa.string()), n + 1)]
            yield pa.record_batch(cols[:len(names)], names=names)
            held += texts.nbytes
            if held >= RELEASE_BYTES:
                pool.release_unused()
                held = 0
        pool.release_unused()
        held = 0
