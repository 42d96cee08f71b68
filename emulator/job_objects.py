"""Which uploaded objects the jobs in Batch ran, counted from what Batch reports.

A per-object job that ran ran the object in its `bucket`/`key` parameters. An array job runs one object per
child that ran: child `i` (of the job's `arrayProperties.size`) runs the object on line `i` of the
manifest the job names. Manifest lines without a child that ran are not counted, so an array job
short of a child shows that object as never run.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

ObjectId = tuple[str, str]  # (bucket, key)

# A child "ran" once it reached the end of a run, whatever the outcome.
RAN = frozenset({"SUCCEEDED", "FAILED"})

# The job definition's default for parameters a job leaves out (template.yaml)
_UNSET = "none"


def manifest_objects(body: bytes) -> list[ObjectId]:
    """The objects of a manifest (JSON lines with bucket and key), in line order."""
    lines = [json.loads(line) for line in body.decode("utf-8").splitlines() if line.strip()]
    return [(str(line["bucket"]), str(line["key"])) for line in lines]


def child_index(child: dict[str, Any]) -> int:
    """An array child's index: `arrayProperties.index`, or the `:<index>` its job id ends with."""
    index = child.get("arrayProperties", {}).get("index")
    return int(index) if index is not None else int(str(child["jobId"]).rsplit(":", 1)[1])


def objects_run(
    jobs: Iterable[dict[str, Any]],
    children_of: Callable[[str], list[dict[str, Any]]],
    manifest_of: Callable[[str, str], list[ObjectId]],
) -> Counter[ObjectId]:
    """How many times each object was run by `jobs` (described top-level jobs).

    `children_of(job_id)` lists an array job's children (ListJobs arrayJobId summaries: jobId, status);
    `manifest_of(bucket, key)` reads a manifest's objects.
    """
    runs: Counter[ObjectId] = Counter()
    for job in jobs:
        params = job.get("parameters", {})
        if params.get("manifestKey", _UNSET) != _UNSET:
            manifest = manifest_of(params["manifestBucket"], params["manifestKey"])
            size = int(job.get("arrayProperties", {}).get("size", 0))
            ran = {child_index(c) for c in children_of(job["jobId"]) if c.get("status") in RAN}
            runs.update(manifest[i] for i in sorted(ran) if i < min(size, len(manifest)))
        elif params.get("key", _UNSET) != _UNSET and job.get("status") in RAN:
            runs[(params["bucket"], params["key"])] += 1
    return runs
