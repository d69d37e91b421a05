"""Looking for a secret in bytes: the forms a key leaks in (raw, hex, base64, and the HMAC pads XOR-ed with
0x36/0x5C, which is how the SQL of earlier versions carried it)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path


def leak_forms(secret: str) -> dict[str, bytes]:
    """Byte strings whose presence means the secret leaked, by name."""
    raw = secret.encode()
    padded = (hashlib.sha256(raw).digest() if len(raw) > 64 else raw).ljust(64, b"\0")
    forms = {"raw": raw, "hex": raw.hex().encode(), "HEX": raw.hex().upper().encode()}
    for lead in range(3):  # base64 of the secret at each alignment inside a longer payload
        enc = base64.b64encode(b"\0" * lead + raw)[4 * ((lead + 2) // 3):-4]
        forms[f"base64@{lead}"] = enc
        forms[f"base64url@{lead}"] = enc.replace(b"+", b"-").replace(b"/", b"_")
    for name, pad in (("ipad", 0x36), ("opad", 0x5C)):
        xored = bytes(b ^ pad for b in padded)[: len(raw)]
        forms[f"{name}-hex"] = xored.hex().encode()
        forms[f"{name}-HEX"] = xored.hex().upper().encode()
        forms[f"{name}-raw"] = xored
    return {k: v for k, v in forms.items() if len(v) >= 12}


def find_leaks(secret: str, paths) -> list[tuple[str, str]]:
    """(file, form) for each file under ``paths`` holding a form of the secret."""
    forms = leak_forms(secret)
    found = []
    for root in paths:
        root = Path(root)
        for f in [root] if root.is_file() else (p for p in root.rglob("*") if p.is_file()):
            data = f.read_bytes()
            found += [(str(f), name) for name, form in forms.items() if form in data]
    return found
