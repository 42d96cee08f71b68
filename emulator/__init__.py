"""Local, no-AWS, no-Docker batch-dispatch: template.yaml deployed into moto, handlers in-process.

Never shipped to Lambda. See `python -m emulator --help`.
"""
