"""Configuration: defaults, file < environment, and errors that name the setting and the fix."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from jobs.config import Config, ConfigError

pytestmark = pytest.mark.unit
NO_FILE: dict = {}


def load(env: dict) -> Config:
    """Load from ``env`` alone: an empty config file, so a developer's infra/rapport.yaml cannot leak in."""
    return Config.load(env=env, config_file=os.devnull)


def test_defaults_need_nothing():
    cfg = load(NO_FILE)
    assert cfg.lake_root == "./lake" and cfg.landing_root == "./landing"
    assert cfg.engine == "embedded" and cfg.late_days == 7 and cfg.pii_key is None


def test_environment_beats_file_beats_default(tmp_path):
    f = tmp_path / "rapport.yaml"
    f.write_text("lake_root: s3://team-lake/rapport\nlate_days: 3\nlanding_root: /data/landing\n")
    cfg = Config.load(env={"RAPPORT_CONFIG": str(f), "RAPPORT_LATE_DAYS": "5"})
    assert cfg.lake_root == "s3://team-lake/rapport"
    assert cfg.landing_root == "/data/landing"
    assert cfg.late_days == 5
    assert cfg.sources["late_days"] == "env RAPPORT_LATE_DAYS"
    assert cfg.sources["lake_root"] == f"file {f}"
    assert cfg.sources["engine"] == "default"


def test_spark_remote_selects_the_remote_engine():
    cfg = load({"SPARK_REMOTE": "sc://spark.internal:15002"})
    assert cfg.engine == "remote" and cfg.spark_remote == "sc://spark.internal:15002"


@pytest.mark.parametrize(
    "env, names",
    [
        ({"RAPPORT_ENGINE": "flink"}, ["RAPPORT_ENGINE='flink'", "embedded, spark-local, remote"]),
        ({"RAPPORT_ENGINE": "remote"}, ["SPARK_REMOTE is not set"]),
        ({"SPARK_REMOTE": "http://host:15002"}, ["SPARK_REMOTE=", "sc://host:port"]),
        ({"RAPPORT_LATE_DAYS": "a week"}, ["RAPPORT_LATE_DAYS='a week'", "whole number"]),
        ({"RAPPORT_LATE_DAYS": "-1"}, ["RAPPORT_LATE_DAYS='-1'"]),
        ({"RAPPORT_LAKE_ROOT": "gs://bucket/x"}, ["RAPPORT_LAKE_ROOT='gs://bucket/x'", "s3://bucket/prefix"]),
        ({"RAPPORT_LANDING_ROOT": "s3://"}, ["RAPPORT_LANDING_ROOT", "names no bucket"]),
        ({"RAPPORT_S3_ENDPOINT_URL": "localhost:9000"}, ["RAPPORT_S3_ENDPOINT_URL", "http://"]),
        ({"RAPPORT_EXPORT_URI": "/srv/exports"}, ["RAPPORT_EXPORT_URI='/srv/exports'", "s3://bucket/prefix"]),
        ({"RAPPORT_EXPORT_FORMAT": "csv"}, ["RAPPORT_EXPORT_FORMAT='csv'", "parquet, jsonl"]),
        ({"RAPPORT_EXPORT_KEEP": "0"}, ["RAPPORT_EXPORT_KEEP='0'", ">= 1"]),
        ({"RAPPORT_EXPORT_MULTIPART_MB": "1"}, ["RAPPORT_EXPORT_MULTIPART_MB='1'", ">= 5"]),
        ({"RAPPORT_EXPORT_WEIGHTS": "view=1"}, ["unknown signal 'view'", "product_view"]),
        ({"RAPPORT_EXPORT_WEIGHTS": "purchase=-2"}, ["'purchase' the weight '-2'", "numbers from 0 to 1e+12"]),
        ({"RAPPORT_EXPORT_WEIGHTS": "purchase=1e13"}, ["'purchase' the weight '1e13'", "numbers from 0 to 1e+12"]),
        ({"RAPPORT_EXPORT_WEIGHTS": "purchase=0"}, ["every signal weight 0"]),
    ],
)
def test_wrong_values_fail_at_start_naming_setting_and_fix(env, names):
    with pytest.raises(ConfigError) as err:
        load({**env})
    for part in names:
        assert part in str(err.value)


def test_short_pii_key_is_rejected_without_echoing_it():
    with pytest.raises(ConfigError) as err:
        load({"RAPPORT_PII_KEY": "hunter2"})
    assert "RAPPORT_PII_KEY" in str(err.value) and "hunter2" not in str(err.value)
    assert "secrets.token_hex" in str(err.value)


def test_missing_pii_key_is_reported_when_needed():
    cfg = load(NO_FILE)
    with pytest.raises(ConfigError, match="RAPPORT_PII_KEY is not set"):
        cfg.require_pii_key()
    key = "k" * 32
    assert load({"RAPPORT_PII_KEY": key}).require_pii_key() == key


def test_secrets_are_masked_everywhere_they_could_show():
    cfg = load({"RAPPORT_PII_KEY": "s" * 20, "AWS_SECRET_ACCESS_KEY": "topsecretvalue"})
    assert "s" * 20 not in repr(cfg) and "topsecretvalue" not in repr(cfg)
    shown = dict((name, value) for name, value, _ in cfg.describe())
    assert shown["RAPPORT_PII_KEY"] == "****" and shown["AWS_SECRET_ACCESS_KEY"] == "****"


@pytest.mark.parametrize(
    "content, message",
    [("lake_root: [unclosed", "not valid YAML"), ("- a\n- b\n", "must be a mapping"), ("lake_rot: x\n", "unknown setting(s) lake_rot")],
)
def test_bad_config_files_are_explained(tmp_path, content, message):
    f = tmp_path / "rapport.yaml"
    f.write_text(content)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        Config.load(env={"RAPPORT_CONFIG": str(f)})


def test_missing_config_file_is_explained(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        Config.load(env={"RAPPORT_CONFIG": str(tmp_path / "nope.yaml")})


def test_cli_reports_config_errors_in_one_line_with_exit_2():
    proc = subprocess.run([sys.executable, "-m", "jobs.cli", "config", "show"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "RAPPORT_ENGINE": "flink"}, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("rapport: error: RAPPORT_ENGINE='flink'")
    assert "Traceback" not in proc.stderr


def test_export_weights_come_from_the_file_as_a_mapping_or_from_the_environment(tmp_path):
    path = tmp_path / "rapport.yaml"
    path.write_text("export_weights:\n  purchase: 10\n  product_view: 0.5\n")
    assert Config.load(env={}, config_file=path).interaction_weights() == {"purchase": 10.0, "product_view": 0.5}
    assert Config.load(env={"RAPPORT_EXPORT_WEIGHTS": "review=2, like=1"}, config_file=path).interaction_weights() == {
        "review": 2.0, "like": 1.0}
    assert load({}).interaction_weights()["purchase"] == 5.0  # the documented default
