"""Every setting Rapport reads: its name, its environment variable and what it means (``jobs.config`` loads
them; the settings reference in the docs is generated from this list)."""

from __future__ import annotations

from dataclasses import dataclass

# what a customer did with a product, as the interactions export names it: timeline event types, plus
# "purchase" for each product line of a kept order
INTERACTION_SIGNALS = ("product_view", "wishlist", "add_to_cart", "like", "comment", "pin", "repin", "share",
                       "mention", "review", "purchase")
DEFAULT_EXPORT_WEIGHTS = ("product_view=1,wishlist=2,add_to_cart=3,like=1,comment=1,pin=2,repin=2,share=3,mention=2,"
                          "review=4,purchase=5")


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
    Setting("quality_docs", "RAPPORT_QUALITY_DOCS",
            "when the Data Docs pages of a passed gate are rendered: deferred (the quality.docs step, the CLI command "
            "that ran the gate, or `rapport quality docs`; a gate then never loads Great Expectations) or gate (in "
            "the gate); a failed gate's pages are always rendered at once"),
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
