"""batch-dispatch: submit AWS Batch jobs from schedules and S3 uploads; alert Slack on failures.

Shared by every function through the CommonLayer (mounted at /opt/python in Lambda).
"""

__version__ = "0.1.0"
