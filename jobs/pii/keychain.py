"""The key chain a lake records: which keys (by id, oldest first) its hashes were made with.

A wrong key would silently give every person a second identity, so every hashing run checks the configured chain
against the lake's record first (``check_chain``); ``rapport privacy rotate-key`` (``jobs.privacy.rotation``)
extends it.
"""

from __future__ import annotations

import time

from jobs.config import Config, ConfigError
from jobs.lake import Lake
from jobs.pii import keyring

RECORD, STATE = "_keys.json", "_rotation.json"  # the chain; a rotation in progress


def recorded_chain(cfg: Config) -> list[str] | None:
    """The key ids the lake's hashes were made with, oldest first (None: not recorded yet)."""
    record = Lake(cfg).read_record(RECORD)
    return list(record["chain"]) if record and record.get("chain") else None


def check_chain(cfg: Config) -> None:
    """Fail before anything is hashed when the configured keys are not the lake's (a wrong key would silently give
    every person a second identity); record the chain on a lake's first hashing run."""
    configured = keyring.hold(cfg.pii_keys()).split(",")
    lake = Lake(cfg)
    if lake.read_record(STATE):
        raise ConfigError(f"a key rotation of {cfg.lake_root} has not finished: run `rapport privacy rotate-key` "
                          "again (with RAPPORT_PII_KEY_NEXT set as before) to complete it")
    recorded = recorded_chain(cfg)
    if recorded is None:
        lake.write_record(RECORD, {"chain": configured, "recorded_at": time.time()})
    elif recorded != configured:
        raise ConfigError(
            f"the lake's identifiers are hashed through the key chain {recorded} (key ids, oldest first), but "
            f"RAPPORT_PII_KEY_RETIRED and RAPPORT_PII_KEY give {configured}. Set the keys the lake was made with "
            f"(after a rotation: RAPPORT_PII_KEY_RETIRED=<the old keys>, RAPPORT_PII_KEY=<the new one>)")
