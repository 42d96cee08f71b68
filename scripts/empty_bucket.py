"""Delete every object version and delete marker of a bucket (then, with --delete, the bucket itself).

The intake bucket is versioned and kept when the stack is deleted (DeletionPolicy: Retain); `make delete
EMPTY_BUCKET=1` calls this first. There is no undo.
"""

from __future__ import annotations

import argparse
import sys

import boto3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("bucket")
    parser.add_argument("--region", default=None)
    parser.add_argument("--delete", action="store_true", help="delete the bucket once it is empty")
    args = parser.parse_args(argv)
    s3 = boto3.client("s3", region_name=args.region)
    removed = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=args.bucket):
        keys = [
            {"Key": item["Key"], "VersionId": item["VersionId"]}
            for item in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        for start in range(0, len(keys), 1000):
            s3.delete_objects(
                Bucket=args.bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True}
            )
            removed += len(keys[start : start + 1000])
    if args.delete:
        s3.delete_bucket(Bucket=args.bucket)
    sys.stdout.write(f"removed {removed} object version(s) from {args.bucket}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
