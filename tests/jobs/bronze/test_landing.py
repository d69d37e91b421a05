"""A day's landing scan lists that day's folders, not the source's history, and finds the same files a full
scan finds for the day; stray files and folders are still reported. Locally and on a real S3 API."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from jobs.bronze.landing import Landing
from jobs.config import Config
from jobs.runs.window import Window
from jobs.storage import s3_client

DAYS = [datetime(2026, 11, 1, tzinfo=timezone.utc) + timedelta(days=d) for d in range(5)]
FILES = [f"dt={d:%Y-%m-%d}/hour={h:02d}/part-0.json.gz" for d in DAYS for h in (0, 13, 23)] + [
    "README.txt", "notes/x.json", "dt=2026-11-03/stray.json", "dt=garbage/hour=01/a.json.gz"]


def _land_local(root):
    for rel in FILES:
        path = root / "clickstream" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"{}\n")
    return Config(landing_root=str(root))


def _land_s3(s3_config):
    cfg, bucket = s3_config
    client = s3_client(cfg)
    for rel in FILES:
        client.put_object(Bucket=bucket, Key=f"landing/clickstream/{rel}", Body=b"{}\n")
    return dataclasses.replace(cfg, landing_root=f"s3://{bucket}/landing")


def _check(cfg, monkeypatch):
    import jobs.bronze.landing as landing_module

    listed: list[str] = []
    real = landing_module.list_objects

    def counting(cfg_, base, skip=None):
        for obj in real(cfg_, base, skip=skip):
            listed.append(obj.key)
            yield obj

    monkeypatch.setattr(landing_module, "list_objects", counting)
    landing = Landing(cfg)
    window = Window(DAYS[2], DAYS[3])
    every, strays_all = landing.scan("clickstream")
    assert len(listed) == len(FILES)
    listed.clear()
    day, strays = landing.scan("clickstream", window)
    # only the window's date folder, the files at the top and the folders that are not dates were listed
    assert sorted(listed) == sorted(k for k in FILES if k.startswith(("dt=2026-11-03/", "dt=garbage/"))
                                    or "/" not in k or k.startswith("notes/"))
    assert [f.rel for f in day if f.may_fall_in(window)] == [f.rel for f in every if f.may_fall_in(window)]
    assert len([f for f in day if f.may_fall_in(window)]) == 3
    reported = {u.rel for u in strays}
    assert reported == {f"clickstream/{k}" for k in ("README.txt", "notes/x.json", "dt=2026-11-03/stray.json",
                                                      "dt=garbage/hour=01/a.json.gz")} <= {u.rel for u in strays_all}


def test_a_days_scan_lists_its_folders_only_locally(tmp_path, monkeypatch):
    _check(_land_local(tmp_path), monkeypatch)


@pytest.mark.integration
def test_a_days_scan_lists_its_folders_only_on_s3(s3_config, monkeypatch):
    _check(_land_s3(s3_config), monkeypatch)


def test_one_setting_says_how_old_arrival_folders_may_be(tmp_path):
    """RAPPORT_EARLIEST_EVENT governs arrival folders as it governs events: an old history laid out by date lands."""
    import dataclasses

    from jobs.bronze.landing import Landing
    from jobs.config import Config

    old = tmp_path / "clickstream" / "dt=1998-05-01" / "hour=07"
    old.mkdir(parents=True)
    (old / "part-0.json").write_text('{"type": "page"}\n')
    cfg = Config(landing_root=str(tmp_path))
    files, unrecognised = Landing(cfg).scan("clickstream")
    assert files == [] and "before 2000-01-01 (RAPPORT_EARLIEST_EVENT)" in unrecognised[0].reason
    files, unrecognised = Landing(dataclasses.replace(cfg, earliest_event="1995-01-01")).scan("clickstream")
    assert [f.rel for f in files] == ["clickstream/dt=1998-05-01/hour=07/part-0.json"] and unrecognised == []
