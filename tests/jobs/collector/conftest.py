"""A real collector (``rapport collect serve``) in its own process on loopback, as a team runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[3]
WRITE_KEY = "wk_test_homepage"
SECRETS = {"RAPPORT_SHOPIFY_WEBHOOK_SECRET": "shpss_test", "RAPPORT_META_APP_SECRET": "meta_test",
           "RAPPORT_META_VERIFY_TOKEN": "verify_me", "RAPPORT_X_CONSUMER_SECRET": "x_test",
           "RAPPORT_TIKTOK_CLIENT_SECRET": "tiktok_test"}


@dataclass
class Running:
    url: str
    landing: Path
    proc: subprocess.Popen
    env: dict

    @property
    def log(self) -> str:
        return (self.landing.parent / "collector.log").read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def landed(self, source: str | None = None) -> list[Path]:
        base = self.landing / source if source else self.landing
        return sorted(p for p in base.rglob("*") if p.is_file() and "_collector" not in p.parts)


def collector_env(landing: Path, **extra) -> dict:
    env = {**os.environ, "RAPPORT_LANDING_ROOT": str(landing), "RAPPORT_COLLECTOR_WRITE_KEYS": f"{WRITE_KEY}=homepage",
           "PYTHONPATH": str(REPO), **SECRETS, **{k: str(v) for k, v in extra.items()}}
    env.pop("SPARK_REMOTE", None)
    return env


def start(env: dict, landing: Path, *args: str, port: int = 0) -> Running:
    log = landing.parent / "collector.log"  # a file, not a pipe: a full pipe would stall the server
    landing.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "jobs.cli", "collect", "serve", "--port", str(port), *args],
                            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=open(log, "a"), text=True)
    first = proc.stdout.readline()
    assert "listening on http://" in first, (first, log.read_text()[-3000:])
    url = first.split("listening on ", 1)[1].split(" ", 1)[0]
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.1)
    return Running(url, landing, proc, env)


@pytest.fixture
def collector(tmp_path):
    """A collector writing to a fresh landing folder; stopped (gracefully) at the end."""
    landing = tmp_path / "landing"
    running = start(collector_env(landing), landing)
    try:
        yield running
    finally:
        running.stop()
