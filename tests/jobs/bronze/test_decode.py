"""Reading landing bytes: every readable line kept, every damaged member accounted for."""

from __future__ import annotations

import zlib

import pytest

from jobs.bronze.decode import decode

pytestmark = pytest.mark.unit


def member(*lines: str) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(("\n".join(lines) + "\n").encode()) + c.flush()


def test_reads_every_member_and_numbers_lines_across_them():
    d = decode(member("a", "b") + member("c"), gzipped=True)
    assert d.lines == ["a", "b", "c"] and d.numbers == [1, 2, 3] and not d.corrupt


def test_truncated_last_member_is_recorded_and_the_rest_kept():
    last = member("x" * 50, "y" * 50)
    d = decode(member("a", "b") + last[: len(last) // 2], gzipped=True)
    assert d.lines == ["a", "b"]
    assert len(d.corrupt) == 1 and d.corrupt[0].line_number == 3
    assert "truncated" in d.corrupt[0].detail


def test_corrupt_member_in_the_middle_resynchronises_on_the_next_header():
    bad = bytearray(member("lost line " * 20))
    bad[20:40] = b"\x00" * 20  # scribble over the deflate data, keep the header
    d = decode(member("a") + bytes(bad) + member("b", "c"), gzipped=True)
    assert d.lines == ["a", "b", "c"]
    assert len(d.corrupt) == 1 and "corrupt" in d.corrupt[0].detail
    assert d.numbers == [1, 3, 4]  # the damaged member took number 2


def test_blank_lines_crlf_and_unicode_line_separators():
    text = 'one\r\n\n  \n{"t":"a\u2028b"}\n'
    d = decode(text.encode(), gzipped=False)
    assert d.lines == ["one", '{"t":"a\u2028b"}'] and d.blank_lines == 2


def test_invalid_utf8_is_replaced_not_fatal():
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    raw = c.compress(b"caf\xe9\n") + c.flush()
    assert decode(raw, gzipped=True).lines == ["caf\ufffd"]
