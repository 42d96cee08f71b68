"""Submitting jobs exactly once, from schedule ticks and from S3 uploads (per object, or array mode)."""
