"""batch-dispatch, the operator command: status, run now, rerun, backfill, logs and DLQs of a stack."""
