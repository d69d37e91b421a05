"""What the collector lands from Snowplow trackers and the platforms' webhooks, in the shape refine reads.

Each function takes a bronze line (JSON text) and returns the same event as the JSON text refine already reads
for its source, or the line itself when it is not of that form, so every check, the quarantine and the
lineage stay one code path. The mappings (docs/collector.md):

**Snowplow → Segment** (``{"source": "snowplow", "received_at", "ip", "user_agent", "payload": {...}}``):

| Snowplow | Segment |
|---|---|
| ``e=pv`` page view | ``page``: ``url``, ``page`` (title), ``refr`` → ``context.page`` |
| ``e=se`` structured event | ``track``: ``se_ac`` → ``event``, ``se_ca`` → ``properties.category``, ``se_la`` → ``properties.product_id``, ``se_va`` → ``properties.price`` |
| ``e=ue`` mobile ``screen_view`` | ``screen``: its ``name`` |
| ``e=ue`` self-describing event | ``track``: the event schema's name → ``event`` (``SNOWPLOW_EVENTS`` maps e-commerce names to Segment's; Snowplow's e-commerce action uses its ``type``), its data → ``properties`` |
| ``eid``, ``uid``, ``duid`` (else ``nuid``, ``tnuid``) | ``messageId``, ``userId``, ``anonymousId`` |
| ``ttm`` or ``dtm``, ``stm``, the collector's time | ``timestamp``, ``sentAt``, ``receivedAt`` |
| ``ua``, ``ip`` (else the request's), ``tv``, ``p`` in ``mob``/``app`` | ``context.userAgent``, ``context.ip``, ``context.library``, ``context.app`` |

Other event types (page pings, legacy transactions) keep ``type`` ``snowplow:<e>`` and are quarantined as
``unknown_event_type``.

**Platform webhooks → social interactions** (``{"platform", "event_id", "interaction", "actor", "target", "text",
"occurred_at", "collected_at"}``):

- Meta, Facebook Page ``feed`` changes: ``item`` (``comment``, ``reaction``, ``share``, ``like``) is the interaction
  when ``verb`` is ``add`` (else ``<item>_<verb>``, not an interaction); ``from`` is the actor (Meta sends no
  handle); the comment id, else reaction, post, actor and time, is the event id; ``created_time`` the time.
- Meta, Instagram ``comments``: the comment's ``from`` (id, username), ``media.id``, ``text``; the entry's time.
  Instagram ``mentions`` carry no actor (only media and comment ids): they are quarantined as ``missing_ids``
  until the Graph API is asked who wrote them, which Rapport does not do.
- X (Account Activity): ``favorite_events`` are likes, ``follow_events`` follows (or unfollows, not an
  interaction), ``tweet_create_events`` replies, quotes, reposts or mentions; the account's own tweets are
  ``post``, not an interaction.
- TikTok: its developer webhooks carry account events (``authorization.removed``, ``video.publish.completed``,
  ``portability.download.ready``), not audience interactions: they land and are verified, then quarantined as
  ``unknown_interaction``. TikTok comments come through its Business API, as ordinary social lines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas.clickstream import PROPERTIES

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

# Snowplow self-describing event names (and Snowplow e-commerce action types) -> Segment e-commerce names
SNOWPLOW_EVENTS = {
    "product_view": "Product Viewed", "product_viewed": "Product Viewed", "add_to_cart": "Product Added",
    "product_added": "Product Added", "remove_from_cart": "Product Removed", "list_view": "Product List Viewed",
    "checkout_step": "Checkout Started", "checkout_started": "Checkout Started", "transaction": "Order Completed",
    "order_completed": "Order Completed", "site_search": "Products Searched", "products_searched": "Products Searched",
    "product_shared": "Product Shared", "social_interaction": "Product Shared",
    "add_to_wishlist": "Product Added to Wishlist", "product_reviewed": "Product Reviewed",
}


def _map_sql(d: dict[str, str], column_sql: str) -> str:
    return "CASE " + " ".join(f"WHEN {column_sql} = '{k}' THEN '{v}'" for k, v in d.items()) + f" ELSE {column_sql} END"


def _millis_iso(sql: str) -> str:
    return (f"date_format(timestamp_millis(try_cast({sql} AS BIGINT)), \"yyyy-MM-dd'T'HH:mm:ss.SSS'Z'\")")


def _seconds_iso(sql: str) -> str:
    return (f"date_format(timestamp_seconds(try_cast({sql} AS BIGINT)), \"yyyy-MM-dd'T'HH:mm:ss'Z'\")")


def snowplow_json(df: "DataFrame", value: str = "value", out: str = "v") -> "DataFrame":
    """``df`` with ``out``: a Snowplow envelope in ``value`` as Segment JSON text; any other line unchanged.

    Built in three projections: whether the line is a Snowplow envelope, its payload parsed once into a map, the
    unstructured event decoded once; the Segment line reads those columns. Written as one expression (the payload's
    parse inlined at each of its thirty uses), planning it cost 0.7 s a refine whatever the rows (of a 1.2 s plan)."""
    from pyspark.sql import functions as F

    def g(k: str) -> str:
        return f"_sp['{k}']"

    ue_b64 = g("ue_px")
    ue = "_sp_ue"
    inner_schema = f"get_json_object({ue}, '$.data.schema')"
    name = f"regexp_extract({inner_schema}, '^iglu:[^/]+/([^/]+)/', 1)"
    name = f"CASE WHEN {name} = 'snowplow_ecommerce_action' THEN get_json_object({ue}, '$.data.data.type') ELSE {name} END"
    screen = f"{g('e')} = 'ue' AND {name} = 'screen_view'"
    kind = (f"CASE WHEN {screen} THEN 'screen' WHEN {g('e')} = 'pv' THEN 'page' WHEN {g('e')} IN ('se', 'ue') THEN 'track' "
            f"ELSE concat('snowplow:', coalesce({g('e')}, 'none')) END")
    props = PROPERTIES.simpleString()
    se_props = (f"from_json(to_json(named_struct('category', {g('se_ca')}, 'product_id', {g('se_la')}, 'price', "
                f"try_cast({g('se_va')} AS DOUBLE))), '{props}')")
    ue_props = f"from_json(get_json_object({ue}, '$.data.data'), '{props}')"
    app = (f"CASE WHEN {g('p')} IN ('mob', 'app', 'tv', 'cnsl', 'iot') THEN named_struct('name', {g('aid')}, "
           "'version', CAST(NULL AS STRING), 'build', CAST(NULL AS STRING)) END")
    context = (f"named_struct('page', named_struct('url', {g('url')}, 'title', {g('page')}, 'referrer', {g('refr')}), "
               f"'userAgent', coalesce({g('ua')}, get_json_object({value}, '$.user_agent')), "
               f"'ip', coalesce({g('ip')}, get_json_object({value}, '$.ip')), "
               f"'library', named_struct('name', 'snowplow', 'version', {g('tv')}), 'app', {app})")
    device_time = _millis_iso(f"coalesce({g('ttm')}, {g('dtm')})")
    segment = (f"to_json(named_struct('type', {kind}, 'messageId', {g('eid')}, "
               f"'anonymousId', coalesce({g('duid')}, {g('nuid')}, {g('tnuid')}), 'userId', {g('uid')}, "
               f"'event', CASE WHEN {screen} THEN NULL WHEN {g('e')} = 'se' THEN {g('se_ac')} "
               f"WHEN {g('e')} = 'ue' THEN {_map_sql(SNOWPLOW_EVENTS, name)} END, "
               f"'name', CASE WHEN {g('e')} = 'pv' THEN {g('page')} "
               f"WHEN {screen} THEN get_json_object({ue}, '$.data.data.name') END, "
               f"'properties', CASE {g('e')} WHEN 'se' THEN {se_props} WHEN 'ue' THEN {ue_props} END, "
               f"'context', {context}, 'timestamp', {device_time}, 'sentAt', {_millis_iso(g('stm'))}, "
               f"'receivedAt', get_json_object({value}, '$.received_at')))")
    is_snowplow = f"get_json_object({value}, '$.source') = 'snowplow' AND get_json_object({value}, '$.payload') IS NOT NULL"
    # a line without the word is not parsed to find out: CASE evaluates the JSON test only where the cheap one
    # holds (1.4 s of the 28 s parse of 1.1M clickstream lines)
    df = df.select("*", F.expr(f"CASE WHEN instr({value}, 'snowplow') = 0 THEN false ELSE coalesce({is_snowplow}, false) "
                               "END").alias("_is_sp"))
    df = df.select("*", F.expr(f"CASE WHEN _is_sp THEN from_json(get_json_object({value}, '$.payload'), "
                               "'map<string,string>') END").alias("_sp"))
    df = df.select("*", F.expr(
        f"coalesce({g('ue_pr')}, CASE WHEN {ue_b64} IS NOT NULL THEN decode(unbase64(rpad(translate({ue_b64}, '-_', "
        f"'+/'), cast(ceil(length({ue_b64}) / 4) * 4 AS INT), '=')), 'UTF-8') END)").alias("_sp_ue"))
    return df.select("*", F.expr(f"CASE WHEN _is_sp THEN {segment} ELSE {value} END").alias(out)).drop(
        "_is_sp", "_sp", "_sp_ue")


def _struct(platform: str, event_id: str, interaction: str, actor: tuple[str, str, str],
            target: tuple[str, str], text: str, occurred: str) -> str:
    """A social line (``schemas.social.EVENT``) as a SQL struct; every argument is SQL."""
    null = "CAST(NULL AS STRING)"
    return (f"named_struct('platform', {platform}, 'event_id', {event_id}, 'interaction', {interaction}, "
            f"'actor', named_struct('id', {actor[0]}, 'handle', {actor[1]}, 'display_name', {actor[2]}), "
            f"'target', named_struct('type', {target[0]}, 'id', {target[1]}, 'url', {null}, 'product_id', {null}), "
            f"'text', {text}, 'occurred_at', {occurred}, 'collected_at', {{collected}})")


def social_json(value: str = "value") -> "Column":
    """A Meta, X or TikTok webhook line as a social line (JSON text); any other line unchanged."""
    from pyspark.sql import functions as F

    def j(path: str) -> str:
        return f"get_json_object({value}, '{path}')"

    null = "CAST(NULL AS STRING)"
    verb, item = f"coalesce({j('$.value.verb')}, 'add')", j("$.value.item")
    facebook = _struct(
        "'facebook'",
        f"coalesce({j('$.value.comment_id')}, concat_ws(':', {item}, {j('$.value.post_id')}, "
        f"coalesce({j('$.value.from.id')}, {j('$.value.sender_id')}), {j('$.value.reaction_type')}, "
        f"{j('$.value.created_time')}))",
        f"CASE WHEN {j('$.field')} = 'feed' THEN CASE WHEN {verb} = 'add' THEN {item} ELSE concat({item}, '_', {verb}) END "
        f"WHEN {j('$.field')} = 'mention' THEN 'mention' ELSE concat('field:', coalesce({j('$.field')}, 'none')) END",
        (f"coalesce({j('$.value.from.id')}, {j('$.value.sender_id')})", null, j("$.value.from.name")),
        ("'post'", j("$.value.post_id")), j("$.value.message"),
        _seconds_iso(f"coalesce({j('$.value.created_time')}, {j('$.entry_time')})"))
    instagram = _struct(
        "'instagram'", f"coalesce({j('$.value.id')}, {j('$.value.comment_id')}, {j('$.value.media_id')})",
        f"CASE {j('$.field')} WHEN 'comments' THEN 'comment' WHEN 'mentions' THEN 'mention' "
        f"ELSE concat('field:', coalesce({j('$.field')}, 'none')) END",
        (j("$.value.from.id"), j("$.value.from.username"), null),
        ("'post'", f"coalesce({j('$.value.media.id')}, {j('$.value.media_id')})"), j("$.value.text"),
        _seconds_iso(j("$.entry_time")))
    tweet = j("$.event")
    x_like = _struct(
        "'x'", j("$.event.id"), "'like'",
        (j("$.event.user.id_str"), j("$.event.user.screen_name"), j("$.event.user.name")),
        ("'post'", j("$.event.favorited_status.id_str")), null, _millis_iso(j("$.event.timestamp_ms")))
    x_tweet = _struct(
        "'x'", j("$.event.id_str"),
        f"CASE WHEN {j('$.event.user.id_str')} = {j('$.for_user_id')} THEN 'post' "
        f"WHEN {j('$.event.retweeted_status.id_str')} IS NOT NULL THEN 'repost' "
        f"WHEN {j('$.event.is_quote_status')} = 'true' THEN 'quote' "
        f"WHEN {j('$.event.in_reply_to_status_id_str')} IS NOT NULL THEN 'reply' ELSE 'mention' END",
        (j("$.event.user.id_str"), j("$.event.user.screen_name"), j("$.event.user.name")),
        (f"CASE WHEN coalesce({j('$.event.in_reply_to_status_id_str')}, {j('$.event.quoted_status_id_str')}, "
         f"{j('$.event.retweeted_status.id_str')}) IS NULL THEN 'account' ELSE 'post' END",
         f"coalesce({j('$.event.in_reply_to_status_id_str')}, {j('$.event.quoted_status_id_str')}, "
         f"{j('$.event.retweeted_status.id_str')}, {j('$.for_user_id')})"),
        j("$.event.text"), _millis_iso(j("$.event.timestamp_ms")))
    x_follow = _struct(
        "'x'", f"concat_ws(':', {j('$.event.type')}, {j('$.event.source.id')}, {j('$.event.target.id')}, "
               f"{j('$.event.created_timestamp')})",
        j("$.event.type"), (j("$.event.source.id"), j("$.event.source.screen_name"), j("$.event.source.name")),
        ("'account'", j("$.event.target.id")), null, _millis_iso(j("$.event.created_timestamp")))
    x_other = _struct(
        "'x'", f"coalesce({j('$.event.id')}, sha2({tweet}, 256))", f"concat('kind:', coalesce({j('$.kind')}, 'none'))",
        (null, null, null), ("'account'", j("$.for_user_id")), null, null)
    tiktok = _struct(
        "'tiktok'", f"concat_ws(':', {j('$.event.event')}, {j('$.event.user_openid')}, {j('$.event.create_time')})",
        j("$.event.event"), (j("$.event.user_openid"), null, null), ("'account'", j("$.event.client_key")), null,
        _seconds_iso(j("$.event.create_time")))
    source, kind = j("$.source"), j("$.kind")
    cases = [
        (f"{source} = 'meta' AND {j('$.object')} = 'instagram'", instagram),
        (f"{source} = 'meta'", facebook),
        (f"{source} = 'x' AND {kind} = 'favorite_events'", x_like),
        (f"{source} = 'x' AND {kind} = 'tweet_create_events'", x_tweet),
        (f"{source} = 'x' AND {kind} = 'follow_events'", x_follow),
        (f"{source} = 'x'", x_other),
        (f"{source} = 'tiktok'", tiktok),
    ]
    collected = j("$.received_at")
    expr = "CASE " + " ".join(f"WHEN {cond} THEN to_json({s.format(collected=collected)})" for cond, s in cases)
    return F.expr(expr + f" ELSE {value} END")


def is_webhook_sql(value: str = "value") -> str:
    """The line is a platform webhook envelope (its ``collected_at`` is the collector's, a transport field)."""
    return f"coalesce(get_json_object({value}, '$.source') IN ('meta', 'x', 'tiktok'), false)"
