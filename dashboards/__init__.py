"""Grafana dashboards as code (grafanalib), and the JSON they build for import."""
