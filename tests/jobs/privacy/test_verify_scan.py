"""The erasure proof's scan of the lake, beside readers: a reader's lease file (``_readers/<id>.json``) comes and goes
while the scan runs. One listed and then removed before the engine read it failed the verification once
("Object at location … not found", in the slow reader test; not reproduced on demand: removed before the engine plans
its read, a file is skipped). Lease files hold a command's name, a process and a time, so the scan leaves them out
like the lake's own lease: this test lists the lake while a reader holds its lease."""

from __future__ import annotations

import json

import pytest

from jobs.config import Config
from jobs.privacy import verify
from jobs.runs import lease
from tests.lakes import PII_KEY

pytestmark = pytest.mark.integration


def test_a_reader_lease_removed_during_the_scan_is_no_error(spark, tmp_path, monkeypatch):
    cfg = Config(lake_root=str(tmp_path / "lake"), landing_root=str(tmp_path / "landing"), pii_key=PII_KEY)
    data = tmp_path / "lake" / "gold" / "t"
    data.mkdir(parents=True)
    (data / "part-0.json").write_text(json.dumps({"note": "nothing personal"}))
    listed = verify.list_objects

    def list_then_finish_a_reader(cfg_, root):  # the listing sees the reader; it has finished by the read
        with lease.reading(cfg, "rapport sql"):
            objects = list(listed(cfg_, root))
        return objects

    monkeypatch.setattr(verify, "list_objects", list_then_finish_a_reader)
    files, size, found = verify._scan(spark, cfg, [cfg.lake_root], verify.scanner(["h_0123456789abcdef"], [], [],
                                                                                  verify.keyring.hold(cfg.pii_keys())))
    assert (files, found) == (1, [])  # the data file, read; no lease file
    assert not list((tmp_path / "lake" / lease.READERS).glob("*.json"))
