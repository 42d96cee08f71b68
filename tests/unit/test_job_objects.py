"""Counting the objects jobs ran (what bench/burst.py and the burst tests count): an array job runs one
object per child that ran, child i the object on line i of its manifest; never its manifest's lines."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from emulator.job_objects import manifest_objects, objects_run

BUCKET = "intake"
MANIFEST = [(BUCKET, f"incoming/{name}.csv") for name in ("a", "b", "c", "d")]


def manifest_body(objects: list[tuple[str, str]]) -> bytes:
    return "\n".join(json.dumps({"bucket": b, "key": k}) for b, k in objects).encode()


def array_job(job_id: str, size: int) -> dict[str, Any]:
    return {
        "jobId": job_id,
        "status": "SUCCEEDED",
        "arrayProperties": {"size": size},
        "parameters": {
            "manifestBucket": BUCKET,
            "manifestKey": f"manifests/{job_id}.jsonl",
            "objectCount": "4",
        },
    }


def child(parent: str, index: int, status: str = "SUCCEEDED") -> dict[str, Any]:
    return {"jobId": f"{parent}:{index}", "status": status}


def count(jobs: list[dict[str, Any]], children: dict[str, list[dict[str, Any]]]) -> Counter[tuple[str, str]]:
    manifests = {f"manifests/{job['jobId']}.jsonl": manifest_body(MANIFEST) for job in jobs}
    return objects_run(
        jobs,
        lambda job_id: children.get(job_id, []),
        lambda _bucket, key: manifest_objects(manifests[key]),
    )


def test_each_child_that_ran_runs_the_object_on_its_line_of_the_manifest():
    runs = count([array_job("p", 4)], {"p": [child("p", i) for i in (3, 0, 2, 1)]})

    assert runs == Counter(MANIFEST)


def test_an_array_job_one_child_short_leaves_that_childs_object_unrun():
    # Given an array job of 4 over a 4-line manifest whose child 2 never came to be
    runs = count([array_job("p", 4)], {"p": [child("p", i) for i in (0, 1, 3)]})

    # Then the object on line 2 was not run (the bench reports it lost), the others once
    assert runs == Counter([MANIFEST[0], MANIFEST[1], MANIFEST[3]])
    assert MANIFEST[2] not in runs


def test_an_array_smaller_than_its_manifest_runs_only_the_lines_it_has_children_for():
    runs = count([array_job("p", 3)], {"p": [child("p", i) for i in range(4)]})

    assert runs == Counter(MANIFEST[:3])


def test_a_child_that_has_not_run_yet_does_not_count():
    runs = count([array_job("p", 2)], {"p": [child("p", 0), child("p", 1, status="RUNNABLE")]})

    assert runs == Counter([MANIFEST[0]])


def test_a_failed_child_ran_its_object():
    runs = count([array_job("p", 1)], {"p": [child("p", 0, status="FAILED")]})

    assert runs == Counter([MANIFEST[0]])


def test_per_object_jobs_count_once_each_and_jobs_without_an_object_not_at_all():
    jobs = [
        {"jobId": "1", "status": "SUCCEEDED", "parameters": {"bucket": BUCKET, "key": "incoming/x.csv"}},
        {"jobId": "2", "status": "SUCCEEDED", "parameters": {"bucket": BUCKET, "key": "incoming/x.csv"}},
        {"jobId": "3", "status": "SUCCEEDED", "parameters": {"scheduledTime": "2026-11-23T12:00:00Z"}},
        {"jobId": "4", "status": "SUCCEEDED", "parameters": {"bucket": "none", "key": "none"}},
    ]

    assert count(jobs, {}) == Counter({(BUCKET, "incoming/x.csv"): 2})


def test_a_child_index_comes_from_array_properties_when_batch_reports_it():
    runs = count(
        [array_job("p", 4)], {"p": [{"jobId": "p:9", "status": "SUCCEEDED", "arrayProperties": {"index": 1}}]}
    )

    assert runs == Counter([MANIFEST[1]])
