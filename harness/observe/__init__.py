"""Watching the stack: Prometheus queries, Alertmanager webhooks, resource samples."""
