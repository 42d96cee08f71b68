"""Adapters to AWS services: clients, AWS Batch jobs, the idempotency store, console links."""
