"""A deterministic, realistic event generator for Rapport's three sources.

``generate(Params(...), out)`` lands clickstream (Segment spec), social
interactions (8 platforms) and Shopify order webhooks as gzip JSON lines by
``source/dt=YYYY-MM-DD/hour=HH/``, plus reference data (CRM customers, products,
campaigns, campaign posts), the identity truth under ``_truth/`` and a
``manifest.json`` with the true count of every kind of line.
"""

from jobs.generate.run import GeneratorError, Params, generate

__all__ = ["GeneratorError", "Params", "generate"]
