"""PromQL with Prometheus 2.42 semantics: ``Engine`` (engine.py), results (value.py), ``PromQLError``."""
