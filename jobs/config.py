"""Rapport configuration: one object, built once, from defaults < config file < environment.

The config file is optional YAML. It is looked for at ``$RAPPORT_CONFIG`` or else
``infra/rapport.yaml`` (git-ignored; copy ``infra/rapport.example.yaml``). Every
setting has one environment variable, listed in ``SETTINGS``. Secrets (the PII
hashing key, AWS credentials) are never given defaults in code.

A wrong value fails at start with ``ConfigError`` naming the setting, the value,
where it came from and how to fix it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

from jobs.settings import DEFAULT_EXPORT_WEIGHTS, INTERACTION_SIGNALS, SETTINGS, Setting
from schemas.affinity import Scoring

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = REPO_ROOT / "infra" / "rapport.yaml"
ENGINES = ("embedded", "spark-local", "remote")
MIN_PII_KEY_LENGTH = 16
EXPORT_FORMATS = ("parquet", "jsonl")


class ConfigError(ValueError):
    """A setting is missing or wrong; the message says which and how to fix it."""


MAX_WEIGHT = 1e12  # gold.product_signals scores a row at up to 2^20 times its weight, in decimal(38,12)


@dataclass(frozen=True)
class Config:
    lake_root: str = "./lake"
    landing_root: str = "./landing"
    pii_key: str | None = field(default=None, repr=False)
    pii_key_file: str | None = None
    pii_key_retired: str | None = field(default=None, repr=False)
    pii_key_next: str | None = field(default=None, repr=False)
    crm_ids: str = "hashed"
    engine: str = "embedded"
    spark_remote: str | None = None
    required: str = ""
    landing_layouts: str = ""
    landing_paths: str = ""
    quality_suites: str | None = None
    quality_docs: str = "deferred"
    earliest_event: str = "2000-01-01"
    quarantine_max_share: str = ""
    late_days: int = 7
    identity_max_links: int = 1
    sql_role: str = "analyst"
    raw_retention_days: int = 30
    report_currency: str = "USD"
    engine_memory: str = "12.5%"
    lease_wait_seconds: int = 3600
    lease_ttl_seconds: int = 21600
    collector_write_keys: str = field(default="", repr=False)
    collector_spool: str = ""
    collector_max_event_kb: int = 32
    collector_max_request_kb: int = 500
    collector_max_batch: int = 2500
    collector_commit_ms: int = 2
    collector_queue_events: int = 50_000
    collector_min_free_mb: int = 256
    collector_roll_seconds: int = 300
    shopify_webhook_secret: str | None = field(default=None, repr=False)
    meta_app_secret: str | None = field(default=None, repr=False)
    meta_verify_token: str | None = field(default=None, repr=False)
    x_consumer_secret: str | None = field(default=None, repr=False)
    tiktok_client_secret: str | None = field(default=None, repr=False)
    tiktok_tolerance_seconds: int = 300
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_max_attempts: int = 8
    aws_access_key_id: str | None = field(default=None, repr=False)
    aws_secret_access_key: str | None = field(default=None, repr=False)
    export_uri: str | None = None
    export_format: str = "parquet"
    export_keep: int = 7
    export_half_life_days: int = 30
    export_weights: str = DEFAULT_EXPORT_WEIGHTS
    export_multipart_mb: int = 64
    # where each value came from: "default", "file <path>" or "env <VAR>"
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, config_file: str | Path | None = None) -> "Config":
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        sources: dict[str, str] = {f.name: "default" for f in fields(cls) if f.name != "sources"}

        path = Path(config_file or env.get("RAPPORT_CONFIG") or DEFAULT_CONFIG_FILE)
        if config_file or env.get("RAPPORT_CONFIG") or path.exists():
            for key, value in _read_config_file(path).items():
                values[key] = value
                sources[key] = f"file {path}"

        for setting in SETTINGS:
            raw = env.get(setting.env)
            if raw is not None and raw != "":
                values[setting.name] = raw
                sources[setting.name] = f"env {setting.env}"

        if not values.get("pii_key") and values.get("pii_key_file"):
            try:
                values["pii_key"] = Path(values["pii_key_file"]).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"RAPPORT_PII_KEY_FILE={values['pii_key_file']!r} (from {sources['pii_key_file']}): "
                                  f"cannot read it ({exc.strerror}); mount the secret there or set RAPPORT_PII_KEY") from None
            sources["pii_key"] = f"the file named by {sources['pii_key_file']}"

        if values.get("spark_remote") and "engine" not in values:
            values["engine"] = "remote"
            sources["engine"] = sources["spark_remote"]

        for name, minimum in (("late_days", 0), ("identity_max_links", 1), ("s3_max_attempts", 1), ("export_keep", 1),
                              ("lease_wait_seconds", 0), ("lease_ttl_seconds", 60), ("raw_retention_days", 0),
                              ("collector_max_event_kb", 1), ("collector_max_request_kb", 1), ("collector_max_batch", 1),
                              ("collector_commit_ms", 0), ("collector_queue_events", 100),
                              ("collector_min_free_mb", 0), ("collector_roll_seconds", 1),
                              ("tiktok_tolerance_seconds", 1),
                              ("export_half_life_days", 1), ("export_multipart_mb", 5)):
            if name in values:
                values[name] = _parse_int(name, values[name], sources[name], minimum=minimum)
        if isinstance(values.get("export_weights"), Mapping):  # the YAML file may give a mapping
            values["export_weights"] = ",".join(f"{k}={v}" for k, v in values["export_weights"].items())
        for name in ("landing_layouts", "landing_paths", "collector_write_keys"):  # the YAML file may give mappings
            if isinstance(values.get(name), Mapping):
                values[name] = ",".join(f"{k}={v}" for k, v in values[name].items())
        if isinstance(values.get("required"), (list, tuple)):  # the YAML file may give a list
            values["required"] = ",".join(values["required"])

        cfg = cls(**values, sources=sources)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        self._check_root("lake_root")
        self._check_root("landing_root")
        if self.engine not in ENGINES:
            raise self.error("engine", f"must be one of {', '.join(ENGINES)}")
        if self.engine == "remote":
            if not self.spark_remote:
                raise self.error("engine", "is 'remote' but SPARK_REMOTE is not set; set SPARK_REMOTE=sc://host:port")
            parsed = urlparse(self.spark_remote)
            if parsed.scheme != "sc" or not parsed.hostname:
                raise self.error("spark_remote", "must look like sc://host:port (a Spark Connect URL)")
        if self.pii_key is not None and len(self.pii_key) < MIN_PII_KEY_LENGTH:
            raise self.error(
                "pii_key",
                f"is shorter than {MIN_PII_KEY_LENGTH} characters; generate one with "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`",
                show_value=False,
            )
        for name in ("pii_key_retired", "pii_key_next"):
            if any(len(k.strip()) < MIN_PII_KEY_LENGTH for k in (getattr(self, name) or "").split(",") if getattr(self, name)):
                raise self.error(name, f"holds a key shorter than {MIN_PII_KEY_LENGTH} characters", show_value=False)
        if self.s3_endpoint_url and urlparse(self.s3_endpoint_url).scheme not in ("http", "https"):
            raise self.error("s3_endpoint_url", "must start with http:// or https://")
        if self.export_uri is not None:
            parsed = urlparse(self.export_uri)
            if parsed.scheme != "s3" or not parsed.netloc:
                raise self.error("export_uri", "must look like s3://bucket/prefix")
        if self.crm_ids not in ("hashed", "plain"):
            raise self.error("crm_ids", "must be hashed or plain")
        if self.quality_docs not in ("deferred", "gate"):
            raise self.error("quality_docs", "must be deferred or gate")
        if self.sql_role not in ("analyst", "engineer"):
            raise self.error("sql_role", "must be analyst or engineer")
        if self.export_format not in EXPORT_FORMATS:
            raise self.error("export_format", f"must be one of {', '.join(EXPORT_FORMATS)}")
        self.interaction_weights()
        self.required_sources()
        self.suites_dir()
        self.landing_layouts_map()
        self.landing_paths_map()
        self.write_keys()
        self.earliest()
        self.quarantine_limits()

    def suites_dir(self) -> Path:
        """Where the quality suites are: RAPPORT_QUALITY_SUITES, else quality/suites."""
        if not self.quality_suites:
            return REPO_ROOT / "quality" / "suites"
        path = Path(self.quality_suites)
        if not path.is_dir():
            raise self.error("quality_suites", "is not a folder; point it at a folder of suite YAML files "
                             "(start from a copy of quality/suites)")
        return path

    def _pairs(self, name: str) -> dict[str, str]:
        from schemas.sources import SOURCE_NAMES

        out = {}
        for pair in filter(None, (p.strip() for p in str(getattr(self, name) or "").split(","))):
            key, sep, value = pair.partition("=")
            if not sep or key.strip() not in SOURCE_NAMES or not value.strip():
                raise self.error(name, f"has {pair!r}; write source=value pairs separated by commas, with sources "
                                       f"among {', '.join(SOURCE_NAMES)}")
            out[key.strip()] = value.strip()
        return out

    def landing_layouts_map(self) -> dict[str, str]:
        """Source -> landing layout, for the sources whose layout is not ``rapport``."""
        from schemas.sources import LAYOUTS

        layouts = self._pairs("landing_layouts")
        bad = {k: v for k, v in layouts.items() if v not in LAYOUTS}
        if bad:
            raise self.error("landing_layouts", f"names unknown layout(s) {bad}; layouts are {', '.join(LAYOUTS)}")
        return layouts

    def write_keys(self) -> dict[str, str]:
        """The collector's write keys -> the site each names (``key=site`` pairs; a key alone names ``default``)."""
        out = {}
        for pair in filter(None, (p.strip() for p in str(self.collector_write_keys or "").split(","))):
            key, _, site = pair.partition("=")
            if not key.strip():
                raise self.error("collector_write_keys", "has an empty key; write key=site pairs separated by commas",
                                 show_value=False)
            out[key.strip()] = site.strip() or "default"
        return out

    def landing_paths_map(self) -> dict[str, str]:
        """Source -> folder, for the sources whose files are not under ``<landing root>/<source>``."""
        return self._pairs("landing_paths")

    def quarantine_limits(self) -> tuple[float | None, dict[str, float]]:
        """RAPPORT_QUARANTINE_MAX_SHARE: (the share for every reason or None for the suites', {reason: share})."""
        default, named = None, {}
        for part in filter(None, (p.strip() for p in str(self.quarantine_max_share or "").split(","))):
            reason, sep, raw = part.rpartition("=") if "=" in part else ("", "", part)
            try:
                share = float(raw)
            except ValueError:
                share = -1.0
            if not 0 <= share <= 1 or (sep and not reason.strip()):
                raise self.error("quarantine_max_share", f"has {part!r}; give shares from 0 to 1, as 0.2 or "
                                 "0.2,too_late=0.6")
            if sep:
                named[reason.strip()] = share
            else:
                default = share
        return default, named

    def earliest(self):
        """RAPPORT_EARLIEST_EVENT as a date."""
        from datetime import date

        try:
            value = date.fromisoformat(str(self.earliest_event))
        except ValueError:
            value = None
        if value is None or value.year < 1900:
            raise self.error("earliest_event", "must be a date YYYY-MM-DD in 1900 or later")
        return value

    def required_sources(self) -> tuple[str, ...]:
        """The sources RAPPORT_SOURCES declares required (none by default: any subset works)."""
        from schemas.sources import SOURCE_NAMES

        names = tuple(n.strip() for n in str(self.required or "").split(",") if n.strip())
        unknown = [n for n in names if n not in SOURCE_NAMES]
        if unknown:
            raise self.error("required", f"names unknown source(s) {', '.join(unknown)}; sources are "
                             f"{', '.join(SOURCE_NAMES)}")
        return names

    def interaction_weights(self) -> dict[str, float]:
        """The interactions export's weight per signal; signals not named weigh 0."""
        weights: dict[str, float] = {}
        for pair in filter(None, (p.strip() for p in str(self.export_weights).split(","))):
            name, _, raw = pair.partition("=")
            name = name.strip()
            if name not in INTERACTION_SIGNALS:
                raise self.error("export_weights", f"names an unknown signal {name!r}; signals are "
                                 f"{', '.join(INTERACTION_SIGNALS)}")
            try:
                weights[name] = float(raw)
            except ValueError:
                weights[name] = -1.0
            if not 0 <= weights[name] <= MAX_WEIGHT:  # NaN fails too
                raise self.error("export_weights", f"gives {name!r} the weight {raw.strip()!r}; weights are "
                                 f"numbers from 0 to {MAX_WEIGHT:g}, as in product_view=1,purchase=5")
        if not any(weights.values()):
            raise self.error("export_weights", "gives every signal weight 0, so the interactions export would be empty")
        return weights

    def export_scoring(self) -> Scoring:
        """How ``gold.product_signals`` scores rows for the interactions export: these weights and half-life."""
        return Scoring(self.interaction_weights(), self.export_half_life_days)

    def require_export_uri(self) -> str:
        if not self.export_uri:
            raise ConfigError(
                "RAPPORT_EXPORT_URI is not set: exports need an S3 location to publish to. Set RAPPORT_EXPORT_URI="
                "s3://bucket/prefix (or export_uri in the config file), with RAPPORT_S3_ENDPOINT_URL and the AWS "
                "credentials if the bucket is not on AWS."
            )
        return self.export_uri.rstrip("/")

    def require_pii_key(self) -> str:
        if not self.pii_key:
            raise ConfigError(
                "RAPPORT_PII_KEY is not set: Rapport needs a secret key to hash emails, phones and social handles. "
                "Generate one with `python -c 'import secrets; print(secrets.token_hex(32))'` and export it as "
                "RAPPORT_PII_KEY (or set pii_key in the config file). Keep it stable: changing it changes every hash."
            )
        return self.pii_key

    def pii_keys(self) -> tuple[str, ...]:
        """The chain of keys identifiers are hashed through, oldest first: the retired keys, then RAPPORT_PII_KEY."""
        current = self.require_pii_key()
        return (*[k.strip() for k in (self.pii_key_retired or "").split(",") if k.strip()], current)

    def error(self, name: str, problem: str, show_value: bool = True) -> ConfigError:
        setting = _setting(name)
        shown = repr(getattr(self, name)) if show_value and not setting.secret else "(hidden)"
        where = self.sources.get(name, "default")
        return ConfigError(f"{setting.env}={shown} (from {where}): {problem}. This setting is {setting.help}.")

    def describe(self) -> list[tuple[str, str, str]]:
        """(env var, value with secrets masked, source) for every setting, for `rapport config show`."""
        rows = []
        for setting in SETTINGS:
            value = getattr(self, setting.name)
            if setting.secret and value:
                shown = "****"
            else:
                shown = "" if value is None else str(value)
            rows.append((setting.env, shown, self.sources.get(setting.name, "default")))
        return rows

    def _check_root(self, name: str) -> None:
        value = getattr(self, name)
        scheme = urlparse(value).scheme
        if scheme == "s3":
            if not urlparse(value).netloc:
                raise self.error(name, "names no bucket; use s3://bucket/prefix")
        elif scheme not in ("", "file"):
            raise self.error(name, f"scheme '{scheme}://' is not supported; use a local folder or s3://bucket/prefix")


def _setting(name: str) -> Setting:
    return next(s for s in SETTINGS if s.name == name)


def _parse_int(name: str, raw: Any, source: str, minimum: int) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = None
    if value is None or value < minimum:
        raise ConfigError(
            f"{_setting(name).env}={raw!r} (from {source}): must be a whole number >= {minimum}. "
            f"This setting is {_setting(name).help}."
        )
    return value


def _read_config_file(path: Path) -> dict[str, Any]:
    import yaml

    if not path.exists():
        raise ConfigError(
            f"RAPPORT_CONFIG={str(path)!r}: no such file. Point RAPPORT_CONFIG at an existing YAML file, "
            f"or unset it (start from infra/rapport.example.yaml)."
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path}: not valid YAML ({exc}). Fix the file or unset RAPPORT_CONFIG.") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: must be a mapping of setting: value, got {type(data).__name__}.")
    known = {s.name for s in SETTINGS}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown setting(s) {', '.join(unknown)}. Known settings: {', '.join(sorted(known))}."
        )
    return {k: v for k, v in data.items() if v is not None}
