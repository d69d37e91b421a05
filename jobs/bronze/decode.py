"""Turning a landing file's bytes into numbered lines, salvaging around damaged gzip members.

A collector appends gzip members to a file; one truncated or corrupt member must not
cost the rest of the file, nor fail the batch. ``decode`` reads member by member;
where a member cannot be read it records a ``CorruptMember`` (with whatever text came
out before the damage) and resynchronises on the next gzip header. A plain-text file
(not ``.gz``) is read as it is.

Line numbers count readable, non-blank lines from 1 in file order; a damaged member
takes one number of its own, so every row and every quarantined member has a
unique ``(file, line_number)``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

GZIP_MAGIC = b"\x1f\x8b\x08"
MAX_PARTIAL_CHARS = 10_000  # what a quarantined member keeps of the text it yielded before the damage


@dataclass
class CorruptMember:
    line_number: int
    offset: int
    detail: str
    partial: str


@dataclass
class Decoded:
    lines: list[str] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    corrupt: list[CorruptMember] = field(default_factory=list)
    blank_lines: int = 0
    _next: int = 1

    def add_text(self, text: str) -> None:
        parts = text.split("\n")  # not splitlines(): JSON strings may hold U+2028 and other breaks
        if parts and parts[-1] == "":
            parts.pop()
        for line in parts:
            if line.strip() == "":
                self.blank_lines += 1
                continue
            self.lines.append(line[:-1] if line.endswith("\r") else line)
            self.numbers.append(self._next)
            self._next += 1

    def add_corrupt(self, offset: int, detail: str, partial: bytes) -> None:
        text = partial.decode("utf-8", errors="replace")[:MAX_PARTIAL_CHARS]
        self.corrupt.append(CorruptMember(self._next, offset, detail, text))
        self._next += 1


def decode(data: bytes, gzipped: bool) -> Decoded:
    out = Decoded()
    if not gzipped:
        out.add_text(data.decode("utf-8", errors="replace"))
        return out
    view = memoryview(data)
    offset, member = 0, 0
    while offset < len(data):
        member += 1
        d = zlib.decompressobj(31)
        try:
            text = d.decompress(view[offset:])
        except zlib.error as exc:
            nxt = data.find(GZIP_MAGIC, offset + 1)
            lost = (nxt if nxt != -1 else len(data)) - offset
            out.add_corrupt(offset, f"gzip member {member} at byte {offset} is corrupt ({exc}); {lost} bytes skipped", b"")
            if nxt == -1:
                break
            offset = nxt
            continue
        if not d.eof:
            out.add_corrupt(offset, f"gzip member {member} at byte {offset} is truncated: the file ends inside it "
                                    f"({len(data) - offset} bytes; its complete lines cannot be trusted)", text)
            break
        out.add_text(text.decode("utf-8", errors="replace"))
        offset = len(data) - len(d.unused_data)
        if d.unused_data and not d.unused_data.startswith(GZIP_MAGIC[:2]):
            nxt = data.find(GZIP_MAGIC, offset)
            lost = (nxt if nxt != -1 else len(data)) - offset
            if lost and d.unused_data.strip(b"\0"):  # zero padding after the last member is harmless
                out.add_corrupt(offset, f"{lost} bytes of garbage after gzip member {member} at byte {offset}", b"")
            if nxt == -1:
                break
            offset = nxt
    return out
