"""Event and table schemas, as data.

Raw sources are read with these explicit schemas, never inferred. Timestamps and
amounts stay strings in the raw schemas so that unparseable values can be told
apart from missing ones and quarantined with a reason.
"""
