"""The declared pipeline: sources, tables, steps, windows, runs and leases; what every stage is built from."""
