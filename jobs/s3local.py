"""A throwaway S3 API on loopback: moto's server in its own process, for the benchmark, the demo and the tests.

Exports go to S3 through boto3; with no bucket at hand, this gives the real protocol on
127.0.0.1 (moto is installed with the ``test`` extra). It is stopped when the block ends.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def moto_server() -> str | None:
    return shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")


@contextmanager
def loopback_s3(timeout: float = 30) -> Iterator[str]:
    """Yield the endpoint URL (http://127.0.0.1:PORT) of a fresh moto server."""
    exe = moto_server()
    if exe is None:
        raise RuntimeError("moto_server is not installed; install the test extra: pip install -e '.[test]'")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start on 127.0.0.1:{port}")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
