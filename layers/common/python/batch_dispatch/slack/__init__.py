"""Slack: message blocks, webhook delivery, and posting each message once."""
