"""Alert rules, their evaluator and the Alertmanager client (issue 8; nothing here yet)."""
