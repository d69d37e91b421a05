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

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = REPO_ROOT / "infra" / "rapport.yaml"
ENGINES = ("embedded", "spark-local", "remote")
MIN_PII_KEY_LENGTH = 16
EXPORT_FORMATS = ("parquet", "jsonl")
# what a customer did with a product, as the interactions export names it: timeline event types, plus
# "purchase" for each product line of a kept order
INTERACTION_SIGNALS = ("product_view", "wishlist", "add_to_cart", "like", "comment", "pin", "repin", "share",
                       "mention", "review", "purchase")
DEFAULT_EXPORT_WEIGHTS = ("product_view=1,wishlist=2,add_to_cart=3,like=1,comment=1,pin=2,repin=2,share=3,mention=2,"
                          "review=4,purchase=5")


class ConfigError(ValueError):
    """A setting is missing or wrong; the message says which and how to fix it."""


@dataclass(frozen=True)
class Setting:
    name: str  # field name, also the key in the YAML file
    env: str
    help: str
    secret: bool = False


SETTINGS = (
    Setting("lake_root", "RAPPORT_LAKE_ROOT", "where Delta tables live: a folder or s3://bucket/prefix"),
    Setting("landing_root", "RAPPORT_LANDING_ROOT", "where raw source files land: a folder or s3://bucket/prefix"),
    Setting("pii_key", "RAPPORT_PII_KEY", "key for hashing emails, phones and handles (HMAC-SHA256)", secret=True),
    Setting("pii_key_file", "RAPPORT_PII_KEY_FILE",
            "a file holding the PII key (a mounted secret), read when RAPPORT_PII_KEY is not set"),
    Setting("pii_key_retired", "RAPPORT_PII_KEY_RETIRED",
            "the keys a rotation retired, oldest first, comma-separated: stored hashes are wrapped in each later key, "
            "so new values are hashed through the same chain (rapport privacy rotate-key says what to set)", secret=True),
    Setting("pii_key_next", "RAPPORT_PII_KEY_NEXT", "the new key for `rapport privacy rotate-key`", secret=True),
    Setting("crm_ids", "RAPPORT_CRM_IDS",
            "how CRM customer ids are kept past bronze: hashed (keyed, like any identifier; the default) or plain (the "
            "configuration declares them non-personal, e.g. opaque numbers)"),
    Setting("engine", "RAPPORT_ENGINE", "embedded (Sail in-process), spark-local (JVM Spark from the pyspark wheel) or remote"),
    Setting("spark_remote", "SPARK_REMOTE", "Spark Connect URL of an existing server, e.g. sc://spark-host:15002"),
    Setting("required", "RAPPORT_SOURCES",
            "sources that must be present, comma-separated (e.g. clickstream,orders): a required source that has "
            "never landed fails the quality gates; any other source may be absent, and absent means empty"),
    Setting("landing_layouts", "RAPPORT_LANDING_LAYOUTS",
            "layout of each source's landing folder, as source=layout pairs separated by commas "
            "(layouts: rapport, segment-s3, rudderstack-s3; default rapport)"),
    Setting("landing_paths", "RAPPORT_LANDING_PATHS",
            "where a source's files are when not in <landing root>/<source>, as source=folder pairs separated by "
            "commas (a folder, s3://bucket/prefix, or a path under the landing root)"),
    Setting("quality_suites", "RAPPORT_QUALITY_SUITES",
            "folder of the quality suites (one YAML per table); default quality/suites of this checkout"),
    Setting("earliest_event", "RAPPORT_EARLIEST_EVENT",
            "the earliest date an event may claim (YYYY-MM-DD); earlier times are quarantined as bad_timestamp"),
    Setting("quarantine_max_share", "RAPPORT_QUARANTINE_MAX_SHARE",
            "the share of a window's lines one quarantine reason may hold before the silver gate fails (systemic "
            "trouble, not a bad row): a number for every reason (0.2, the suites' default), reason=share pairs, or "
            "both (0.2,too_late=0.6); at most 50 lines of a reason never fail"),
    Setting("late_days", "RAPPORT_LATE_DAYS", "how many days late an event may arrive and still be merged into its date"),
    Setting("identity_max_links", "RAPPORT_IDENTITY_MAX_LINKS",
            "how many users, emails or CRM ids one device or phone may link before it counts as shared (a kiosk)"),
    Setting("sql_role", "RAPPORT_SQL_ROLE",
            "what `rapport sql` may read: analyst (silver, gold, ops without raw personal data) or engineer (all)"),
    Setting("raw_retention_days", "RAPPORT_RAW_RETENTION_DAYS",
            "days raw lines (bronze, quarantine) keep their personal data after their landing date was refined and "
            "reconciled; then only lineage and counts stay (0 keeps them for ever)"),
    Setting("engine_memory", "RAPPORT_ENGINE_MEMORY",
            "the embedded engine's memory pool: a share of this machine's memory (12.5%), a size (8g, 512m) or "
            "unbounded; past it, sorts, joins and aggregations spill to disk instead of exhausting the machine"),
    Setting("report_currency", "RAPPORT_REPORT_CURRENCY",
            "the ISO 4217 currency the shop's revenue is in, for amounts in the marketing report (default USD)"),
    Setting("lease_wait_seconds", "RAPPORT_LEASE_WAIT_SECONDS",
            "how long a run waits for another run writing the same lake to finish before it gives up"),
    Setting("lease_ttl_seconds", "RAPPORT_LEASE_TTL_SECONDS",
            "after how long a lake lease whose holder never released it (a killed run) is taken over"),
    Setting("collector_write_keys", "RAPPORT_COLLECTOR_WRITE_KEYS",
            "write keys the collector accepts and the site each names: key=site,key2=site2", secret=True),
    Setting("collector_spool", "RAPPORT_COLLECTOR_SPOOL",
            "the collector's local folder for open files; default the landing root when it is a folder (with an "
            "s3:// landing root, closed files are uploaded from here)"),
    Setting("collector_max_event_kb", "RAPPORT_COLLECTOR_MAX_EVENT_KB", "largest event the collector accepts, in KB"),
    Setting("collector_max_request_kb", "RAPPORT_COLLECTOR_MAX_REQUEST_KB",
            "largest request body the collector accepts (after gzip inflation), in KB"),
    Setting("collector_max_batch", "RAPPORT_COLLECTOR_MAX_BATCH", "most events in one batch request"),
    Setting("collector_commit_ms", "RAPPORT_COLLECTOR_COMMIT_MS",
            "how long the collector gathers requests into one write and fsync, at most, in milliseconds"),
    Setting("collector_queue_events", "RAPPORT_COLLECTOR_QUEUE_EVENTS",
            "events waiting to be written before the collector answers 503 (backpressure)"),
    Setting("collector_min_free_mb", "RAPPORT_COLLECTOR_MIN_FREE_MB",
            "free disk under the spool below which the collector answers 503"),
    Setting("collector_roll_seconds", "RAPPORT_COLLECTOR_ROLL_SECONDS",
            "how long a landing file stays open before the collector closes it for ingest (it closes at the hour too)"),
    Setting("shopify_webhook_secret", "RAPPORT_SHOPIFY_WEBHOOK_SECRET",
            "the Shopify app's secret, to verify X-Shopify-Hmac-Sha256", secret=True),
    Setting("meta_app_secret", "RAPPORT_META_APP_SECRET", "the Meta app secret, to verify X-Hub-Signature-256",
            secret=True),
    Setting("meta_verify_token", "RAPPORT_META_VERIFY_TOKEN", "the token Meta echoes when it verifies the webhook",
            secret=True),
    Setting("x_consumer_secret", "RAPPORT_X_CONSUMER_SECRET",
            "the X app's consumer secret, for the CRC check and x-twitter-webhooks-signature", secret=True),
    Setting("tiktok_client_secret", "RAPPORT_TIKTOK_CLIENT_SECRET", "the TikTok app's client secret, to verify "
            "TikTok-Signature", secret=True),
    Setting("tiktok_tolerance_seconds", "RAPPORT_TIKTOK_TOLERANCE_SECONDS",
            "how old a TikTok-Signature timestamp may be before the delivery is refused as a replay"),
    Setting("s3_endpoint_url", "RAPPORT_S3_ENDPOINT_URL", "S3 API endpoint (leave empty for AWS)"),
    Setting("s3_region", "RAPPORT_S3_REGION", "S3 region"),
    Setting("s3_max_attempts", "RAPPORT_S3_MAX_ATTEMPTS",
            "attempts per S3 request before giving up: throttling and 5xx answers are retried with back-off"),
    Setting("aws_access_key_id", "AWS_ACCESS_KEY_ID", "S3 access key id", secret=True),
    Setting("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "S3 secret access key", secret=True),
    Setting("export_uri", "RAPPORT_EXPORT_URI", "where exports are published: s3://bucket/prefix"),
    Setting("export_format", "RAPPORT_EXPORT_FORMAT", "file format of the interactions and customer_features exports: "
            "parquet or jsonl (timelines are always JSON lines)"),
    Setting("export_keep", "RAPPORT_EXPORT_KEEP", "how many complete snapshots of each export to keep"),
    Setting("export_half_life_days", "RAPPORT_EXPORT_HALF_LIFE_DAYS",
            "days after which an interaction counts half in the interactions export (exponential time decay)"),
    Setting("export_weights", "RAPPORT_EXPORT_WEIGHTS",
            "weight of each signal in the interactions export, as signal=weight pairs separated by commas "
            f"(signals: {', '.join(INTERACTION_SIGNALS)}; 0 leaves a signal out)"),
    Setting("export_multipart_mb", "RAPPORT_EXPORT_MULTIPART_MB",
            "file size in MB from which exports upload in parts (at least 5, the S3 minimum part size)"),
)


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
            if weights[name] < 0 or weights[name] != weights[name]:
                raise self.error("export_weights", f"gives {name!r} the weight {raw.strip()!r}; weights are "
                                 "numbers >= 0, as in product_view=1,purchase=5")
        if not any(weights.values()):
            raise self.error("export_weights", "gives every signal weight 0, so the interactions export would be empty")
        return weights

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
