"""Alert rules (generated and user-defined), their evaluator, and the notifiers: Alertmanager and webhooks."""
