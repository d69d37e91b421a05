"""The marketing team's report: one self-contained HTML page built from gold (``rapport report``), and a
readable page per customer timeline (``rapport report customer``).

- ``data``: what each section shows, as small aggregates the engine computes from gold (and the ops tables'
  counts for freshness and quality); nothing personal leaves gold, and gold holds nothing personal.
- ``charts``: Vega-Lite charts (Altair), rendered to SVG by vl-convert, so the page needs no script and no
  network; a colour-blind-safe palette (Okabe and Ito).
- ``page``: the HTML (Jinja2), numbers formatted for people.
- ``build``: the step (``rapport_curate`` runs it after the gold gate) and the CLI.
"""
