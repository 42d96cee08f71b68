"""`python -m batch_dispatch_cli` runs the command (as `batch-dispatch` does)."""

from batch_dispatch_cli.app import main

main()
