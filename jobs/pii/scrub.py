"""The one scrubber: personal data out of free text, IPs cut to their network, query strings reduced.

Free text (search queries, page paths, titles, referrers, user agents, and anything gold builds from them)
is scrubbed before silver: emails, IP addresses, card-like numbers, phone numbers and @handles are
replaced by a marker (``<email>``, ``<ip>``, ``<card>``, ``<phone>``, ``<handle>``). The patterns are
defined once, below, and turned both into engine SQL (``scrub_sql``, what refine runs) and into Python
(``scrub``, what masks quality samples and reports); a test holds the two to the same answers.

The patterns are written for both regex engines (Rust's, under Sail, and Python's): no look-around, no
back-references in the pattern, a captured prefix where a boundary is needed. Over-scrubbing is chosen
over leaking: a long number in a path (``/orders/4567891234``) becomes ``<phone>``.
"""

from __future__ import annotations

import re

from jobs.sql_text import sql_string

# (marker, pattern, keeps group 1): the prefix group keeps what preceded the match (a boundary)
PATTERNS: tuple[tuple[str, str, bool], ...] = (
    ("<email>", r"[A-Za-z0-9._%+-]+(@|%40)[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}", False),
    ("<ip>", r"(^|[^0-9A-Fa-f:])[0-9A-Fa-f]{0,4}(:[0-9A-Fa-f]{1,4})*::([0-9A-Fa-f]{1,4}(:[0-9A-Fa-f]{1,4})*)?", True),
    ("<ip>", r"(^|[^0-9A-Fa-f:])([0-9A-Fa-f]{1,4}:){3,7}[0-9A-Fa-f]{1,4}", True),
    ("<ip>", r"(^|[^0-9A-Za-z/.])[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}", True),
    ("<card>", r"(^|[^0-9])[0-9]([ -]?[0-9]){12,18}", True),
    ("<phone>", r"(^|[^0-9A-Za-z/.])\+?[0-9]([ ().-]{0,2}[0-9]){8,14}", True),  # 9 to 15 digits: not a date
    ("<handle>", r"(^|[^A-Za-z0-9_.@])@[A-Za-z0-9_.]{2,30}", True),
)
# query parameters a URL keeps in silver: campaign attribution and product references, nothing about a person
KEPT_PARAMETERS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "product_id", "sku",
                   "category")
_COMPILED = [(marker, re.compile(pattern), prefix) for marker, pattern, prefix in PATTERNS]


EMAIL = PATTERNS[0][1]


def scrub(text: str | None) -> str | None:
    """Python twin of ``scrub_sql``."""
    if text is None:
        return None
    for marker, rx, prefix in _COMPILED:
        text = rx.sub((lambda m, mk=marker: m.group(1) + mk) if prefix else marker, text)
    return text


def mask(value, column_class: str = "none"):
    """A value fit to show in a quality sample or a report: hidden for raw, hashed and free-text columns,
    scrubbed otherwise (numbers and other non-text values stay as they are)."""
    if value is None:
        return None
    if column_class in ("raw", "hashed", "free_text"):
        return "<masked>"
    return scrub(value) if isinstance(value, str) else value


# one scan for every pattern at once: text none of them matches is left as it is, instead of going through seven
# replacements. Most text that holds a digit holds nothing to scrub (user agents, paths, titles); a guard on the
# characters a pattern needs let all of it through, and the parse of 1.1M events took 23.5-23.8 s with it against
# 20.1-20.2 s with this one. When no pattern matches a text, no replacement changes it: the answer is the text.
ANY = "|".join(f"({pattern})" for _, pattern, _ in PATTERNS)


def scrub_sql(column_sql: str) -> str:
    """Engine SQL: ``column_sql`` with every pattern replaced by its marker."""
    out = column_sql
    for marker, pattern, prefix in PATTERNS:
        out = f"regexp_replace({out}, {sql_string(pattern)}, {sql_string(('$1' if prefix else '') + marker)})"
    return f"CASE WHEN {column_sql} RLIKE {sql_string(ANY)} THEN {out} ELSE {column_sql} END"


def pseudonym_sql(column_sql: str, keyed_sql_fn) -> str:
    """Engine SQL for an id that may hold an email (sites send a user's email as userId; hostile input puts one
    anywhere): such an id is replaced by its keyed pseudonym (``h_`` + 32 hex digits; the same value always gives the
    same pseudonym, so links still work); other ids stay as they are. ``keyed_sql_fn(column_sql)`` is the pseudonym
    (``jobs.pii.keyring.pseudonym_sql``)."""
    return (f"CASE WHEN {column_sql} RLIKE {sql_string(EMAIL)} OR {column_sql} RLIKE '(^|[^A-Za-z0-9_.])@[A-Za-z0-9_.]{{2,30}}' "
            f"THEN {keyed_sql_fn(column_sql)} ELSE {column_sql} END")


def url_sql(column_sql: str) -> str:
    """Engine SQL: a URL with its fragment dropped and its query reduced to ``KEPT_PARAMETERS``, scrubbed."""
    base = f"regexp_replace({column_sql}, '[?#].*$', '')"
    # a parameter that is absent is NULL, which concat keeps NULL and concat_ws skips; a host that is not one
    # (an IDNA error, an empty host) gives NULL too, where Sail's parse_url failed the whole query
    kept = ", ".join(f"concat('{p}=', try_parse_url({column_sql}, 'QUERY', '{p}'))" for p in KEPT_PARAMETERS)
    query = f"concat_ws('&', {kept})"
    # most URLs have no query at all: they are not parsed
    return scrub_sql(f"CASE WHEN {column_sql} IS NULL THEN NULL WHEN instr({column_sql}, '?') = 0 THEN {base} "
                     f"WHEN {query} = '' THEN {base} ELSE concat({base}, '?', {query}) END")


def ip_address_sql(column_sql: str) -> str:
    """Engine SQL: the address an IP field gives, lower-cased (the first of a forwarded list, its port and
    brackets cut, an IPv4-mapped IPv6 address as its IPv4 one), not yet checked: ``ip_network_sql`` reads it."""
    first = f"trim(element_at(split(coalesce({column_sql}, ''), ','), 1))"
    v4_port = f"regexp_extract({first}, '^([0-9]{{1,3}}(\\\\.[0-9]{{1,3}}){{3}})(:[0-9]{{1,5}})?$', 1)"
    bracketed = f"regexp_extract({first}, '^\\\\[([0-9A-Fa-f:.]+)\\\\](:[0-9]{{1,5}})?$', 1)"
    given = (f"lower(CASE WHEN {v4_port} <> '' THEN {v4_port} WHEN {bracketed} <> '' THEN {bracketed} "
             f"ELSE {first} END)")
    return f"regexp_replace({given}, '^::ffff:([0-9]+(\\\\.[0-9]+){{3}})$', '$1')"  # IPv4-mapped IPv6


def ip_network_sql(address: str) -> str:
    """Engine SQL: an IP address cut to its network (IPv4 /24 as ``a.b.c.0``, IPv6 /48 as ``a:b:c::``), parsed;
    anything that is not an address becomes NULL. ``address`` is a column holding ``ip_address_sql`` of the field:
    it is read a dozen times here, and written inline it made the plan of one column cost 0.15 s to plan."""
    addr = address
    octets = f"split({addr}, '\\\\.')"
    v4_ok = (f"({addr} RLIKE '^[0-9]{{1,3}}(\\\\.[0-9]{{1,3}}){{3}}$' AND "
             f"forall({octets}, o -> try_cast(o AS INT) BETWEEN 0 AND 255))")
    v4 = f"concat_ws('.', slice({octets}, 1, 3), array('0'))"
    halves = f"split({addr}, '::')"
    head = f"CASE WHEN element_at({halves}, 1) = '' THEN array() ELSE split(element_at({halves}, 1), ':') END"
    groups = f"split({addr}, ':')"
    v6_ok = (f"({addr} RLIKE '^[0-9a-f:]+$' AND size({halves}) <= 2 AND size({groups}) BETWEEN 3 AND 8 AND "
             f"forall(filter({groups}, g -> g <> ''), g -> length(g) <= 4) AND "
             f"(size({halves}) = 2 OR size({groups}) = 8))")
    v6 = f"concat(concat_ws(':', slice(concat({head}, array('0', '0', '0')), 1, 3)), '::')"
    return f"CASE WHEN {v4_ok} THEN {v4} WHEN {v6_ok} THEN {v6} END"
