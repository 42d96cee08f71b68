"""Alerts from Batch events: failed jobs, blocked queues and failure storms."""
