"""Reading landing bytes: every readable line kept, every damaged member accounted for."""

from __future__ import annotations

import json
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.bronze.decode import _needs_judging, decode, judge

pytestmark = pytest.mark.unit


def member(*lines: str) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(("\n".join(lines) + "\n").encode()) + c.flush()


def j(text: str) -> str:
    """A JSON object line that carries ``text``."""
    return json.dumps({"l": text})


def test_reads_every_member_and_numbers_lines_across_them():
    d = decode(member(j("a"), j("b")) + member(j("c")), gzipped=True)
    assert d.lines == [j("a"), j("b"), j("c")] and d.numbers == [1, 2, 3] and not d.corrupt


def test_truncated_last_member_is_recorded_and_the_rest_kept():
    last = member(j("x" * 50), j("y" * 50))
    d = decode(member(j("a"), j("b")) + last[: len(last) // 2], gzipped=True)
    assert d.lines == [j("a"), j("b")]
    assert len(d.corrupt) == 1 and d.corrupt[0].line_number == 3
    assert "truncated" in d.corrupt[0].detail


def test_corrupt_member_in_the_middle_resynchronises_on_the_next_header():
    bad = bytearray(member(j("lost line " * 20)))
    bad[20:40] = b"\x00" * 20  # scribble over the deflate data, keep the header
    d = decode(member(j("a")) + bytes(bad) + member(j("b"), j("c")), gzipped=True)
    assert d.lines == [j("a"), j("b"), j("c")]
    assert len(d.corrupt) == 1 and "corrupt" in d.corrupt[0].detail
    assert d.numbers == [1, 3, 4]  # the damaged member took number 2


def test_blank_lines_crlf_and_unicode_line_separators():
    text = '{"o": 1}\r\n\n  \n{"t":"a\u2028b"}\n'
    d = decode(text.encode(), gzipped=False)
    assert d.lines == ['{"o": 1}', '{"t":"a\u2028b"}'] and d.blank_lines == 2


def test_invalid_utf8_is_kept_as_bytes_not_rewritten():
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    raw = c.compress(b'{"a": "caf\xe9"}\n{"b": 1}\n') + c.flush()
    d = decode(raw)
    assert d.lines == ['{"b": 1}']
    (bad,) = [r for r in d.records if r.reason]
    assert (bad.reason, bad.raw_bytes, bad.value, bad.line_number) == ("not_utf8", b'{"a": "caf\xe9"}', None, 1)


def test_gzip_is_decided_by_the_bytes_not_the_name():
    text = b'{"a": 1}\n{"b": 2}\n'
    assert decode(text).lines == decode(member('{"a": 1}', '{"b": 2}')).lines == ['{"a": 1}', '{"b": 2}']


def test_a_byte_order_mark_is_removed_not_quarantined():
    assert decode(b'\xef\xbb\xbf{"a": 1}\n').lines == ['{"a": 1}']
    assert decode(member('\ufeff{"a": 1}')).lines == ['{"a": 1}']


@pytest.mark.parametrize("line, reason", [
    ("[1, 2]", "json_array"), ("42", "json_scalar"), ('"text"', "json_scalar"), ("null", "json_scalar"),
    ("NaN", "json_nonstandard"), ('{"price": Infinity}', "json_nonstandard"), ("plain text", "malformed_json"),
    ("[" * 5000 + "]" * 5000, "json_too_deep"), ('{"a": ' + "[" * 100 + "]" * 100 + "}", "json_too_deep"),
    ('{"a": ' + "[" * 64 + "]" * 64 + "}", "json_too_deep"), ('{"a": ' + "[" * 63 + "]" * 63 + "}", None),
])
def test_each_shape_of_not_an_object_has_its_own_reason(line, reason):
    (r,) = decode((line + "\n").encode()).records
    assert r.reason == reason and r.value == line and bool(r.detail) == bool(reason)


def test_a_rest_page_becomes_one_record_per_order_with_its_exact_text():
    import json

    page = json.dumps({"orders": [{"id": 2**60 + 1, "note": "a, ]"}, {"id": 2}]}, indent=2)
    d = decode(member(page))
    assert [json.loads(v)["id"] for v in d.lines] == [2**60 + 1, 2] and d.numbers == [1, 2]
    assert d.lines[0] in page  # the element's own bytes, not a re-serialisation
    assert decode(b'[{"a": 1},\n {"b": 2}]').lines == ['{"a": 1}', '{"b": 2}']


def test_a_damaged_member_keeps_its_bytes():
    last = member(j("x" * 50), j("y" * 50))
    d = decode(member(j("a")) + last[: len(last) // 2])
    (bad,) = d.corrupt
    assert bad.raw_bytes == last[: len(last) // 2]


def _line_by_line(data: bytes) -> tuple[list, list, int]:
    """The record rules applied one line at a time, as the contract states them (the reference): the records, their
    reasons, and the blank lines."""
    out, reasons, blank = [], [], 0
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    for raw in parts:
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if not line.strip():
            blank += 1
            continue
        try:
            out.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(line)
            reasons.append("not_utf8")
        else:
            verdict = judge(out[-1]) if _needs_judging(out[-1]) else None
            reasons.append(verdict and verdict[0])
    return out, reasons, blank


pieces = st.sampled_from([b'{"a": 1}', b'{"b": "\xc3\xa9\xe2\x80\xa8"}', b" ", b"\t", b"\x0b", b"\x0c", b"\r", b"\x1c",
                          b"\xc2\xa0", b"\x85", b"\xff", b"\xe2\x80", b"[1]", b"x", b"{}", b'{"n": NaN}',
                          b'{"d": ' + b"[" * 40, b"]" * 40 + b"}", b"{" * 33])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(pieces, max_size=4).map(b"".join), max_size=12), st.booleans())
def test_a_text_block_gives_the_records_of_reading_it_line_by_line(lines, ends_with_newline):
    data = b"\n".join(lines) + (b"\n" if ends_with_newline and lines else b"")
    if data.lstrip()[:1] in (b"{", b"[") or data.startswith(b"\xef\xbb\xbf"):
        data = b"x" + data  # not a whole document or page, and no byte-order mark: only the line rules apply
    d = decode(data, gzipped=False)
    expected, reasons, blank = _line_by_line(data)
    got = [r.value if r.reason != "not_utf8" else r.raw_bytes for r in d.records]
    assert got == expected and d.blank_lines == blank
    assert [r.reason for r in d.records] == reasons
    assert [r.line_number for r in d.records] == list(range(1, len(expected) + 1))


def test_the_engine_batches_hold_a_file_row_and_every_record_of_each_file():
    import pyarrow as pa

    from jobs.bronze.decode import decode_batches, engine_key

    contents = {"/l/a.json.gz": member(j("a"), "[1]", "NaN") + b"not gzip", "/l/b.json": b"\xff\n{}\n\n \n{\"x\": 1}",
                "/l/c.json": b"", "/l/d.json": b'{"orders": [{"id": 1}, {"id": 2}]}'}
    batch = pa.record_batch([pa.array(list(contents)), pa.array(list(contents.values()), pa.binary())],
                            names=["path", "content"])
    rows = pa.Table.from_batches(list(decode_batches([batch], lineage={engine_key(p): p + "@v2" for p in contents})))
    for path, data in contents.items():
        d, mine = decode(data), [r for r in rows.to_pylist() if r["source_file"] == path + "@v2"]
        assert mine[0] == {"file": engine_key(path), "kind": "file", "line_number": 0, "value": None, "raw_bytes": None,
                           "reason": None, "detail": None, "blank_lines": d.blank_lines, "encoding": d.encoding,
                           "bytes_read": len(data), "source_file": path + "@v2"}
        assert [(r["kind"], r["line_number"], r["value"], r["raw_bytes"], r["reason"], r["detail"], r["blank_lines"],
                 r["encoding"], r["bytes_read"]) for r in mine[1:]] == [
            ("record", x.line_number, x.value, x.raw_bytes, x.reason, x.detail, None, None, None) for x in d.records]
    assert rows.num_rows == len(contents) + sum(len(decode(v).records) for v in contents.values())
