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
    Setting("engine", "RAPPORT_ENGINE", "embedded (Sail in-process), spark-local (JVM Spark from the pyspark wheel) or remote"),
    Setting("spark_remote", "SPARK_REMOTE", "Spark Connect URL of an existing server, e.g. sc://spark-host:15002"),
    Setting("late_days", "RAPPORT_LATE_DAYS", "how many days late an event may arrive and still be merged into its date"),
    Setting("identity_max_links", "RAPPORT_IDENTITY_MAX_LINKS",
            "how many users, emails or CRM ids one device or phone may link before it counts as shared (a kiosk)"),
    Setting("s3_endpoint_url", "RAPPORT_S3_ENDPOINT_URL", "S3 API endpoint (leave empty for AWS)"),
    Setting("s3_region", "RAPPORT_S3_REGION", "S3 region"),
    Setting("aws_access_key_id", "AWS_ACCESS_KEY_ID", "S3 access key id", secret=True),
    Setting("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "S3 secret access key", secret=True),
)


@dataclass(frozen=True)
class Config:
    lake_root: str = "./lake"
    landing_root: str = "./landing"
    pii_key: str | None = field(default=None, repr=False)
    engine: str = "embedded"
    spark_remote: str | None = None
    late_days: int = 7
    identity_max_links: int = 1
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    aws_access_key_id: str | None = field(default=None, repr=False)
    aws_secret_access_key: str | None = field(default=None, repr=False)
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

        if values.get("spark_remote") and "engine" not in values:
            values["engine"] = "remote"
            sources["engine"] = sources["spark_remote"]

        for name, minimum in (("late_days", 0), ("identity_max_links", 1)):
            if name in values:
                values[name] = _parse_int(name, values[name], sources[name], minimum=minimum)

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
        if self.s3_endpoint_url and urlparse(self.s3_endpoint_url).scheme not in ("http", "https"):
            raise self.error("s3_endpoint_url", "must start with http:// or https://")

    def require_pii_key(self) -> str:
        if not self.pii_key:
            raise ConfigError(
                "RAPPORT_PII_KEY is not set: Rapport needs a secret key to hash emails, phones and social handles. "
                "Generate one with `python -c 'import secrets; print(secrets.token_hex(32))'` and export it as "
                "RAPPORT_PII_KEY (or set pii_key in the config file). Keep it stable: changing it changes every hash."
            )
        return self.pii_key

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
