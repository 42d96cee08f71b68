"""Print one output of a deployed stack: python scripts/stack_output.py --stack-name NAME OutputKey."""

from __future__ import annotations

import argparse
import sys

import boto3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--region", default=None)
    parser.add_argument("key")
    args = parser.parse_args(argv)
    stack = boto3.client("cloudformation", region_name=args.region).describe_stacks(StackName=args.stack_name)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Stacks"][0].get("Outputs", [])}
    if args.key not in outputs:
        sys.stderr.write(f"stack {args.stack_name} has no output {args.key}\n")
        return 1
    sys.stdout.write(outputs[args.key] + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
