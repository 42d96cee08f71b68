"""The emulator's runtime counts each function's invocations running at once, as Lambda's
ConcurrentExecutions metric does: benchmarks check a reserved concurrency against it."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from emulator.environments import ExecutionEnvironments
from emulator.runtime import LambdaRuntime
from emulator.stack import FunctionInfo, Stack

HANDLER = """
import threading, time
inside = 0
most = 0
lock = threading.Lock()

def lambda_handler(event, context):
    global inside, most
    with lock:
        inside += 1
        most = max(most, inside)
    time.sleep(0.05)
    with lock:
        inside -= 1
    return {"most_at_once_seen_by_the_handler": most}
"""


IN_WHICH_PROCESS = """
import os

def lambda_handler(event, context):
    if event.get("fail"):
        raise RuntimeError("failed")
    return {"pid": os.getpid()}
"""


def runtime_with_sleepy_function(code_dir: Path) -> LambdaRuntime:
    return runtime_with_function(code_dir, "SleepyFunction", HANDLER)


def runtime_with_function(code_dir: Path, logical_id: str, code: str) -> LambdaRuntime:
    (code_dir / "app.py").write_text(code, encoding="utf-8")
    function = FunctionInfo(
        logical_id=logical_id,
        code_dir=code_dir,
        handler="app.lambda_handler",
        physical_name=logical_id.lower(),
        environment={},
        timeout=30,
        triggers={},
        dead_letter_queue=None,
    )
    stack = Stack(
        name="test",
        sam_template={"Resources": {}},
        cfn_template={"Resources": {}},
        parameters={},
        physical_ids={},
        outputs={},
        functions={logical_id: function},
    )
    return LambdaRuntime(stack)


def test_the_peak_is_the_most_invocations_that_ran_at_once(tmp_path: Path):
    runtime = runtime_with_sleepy_function(tmp_path)
    start = threading.Barrier(4)

    def invoke_three_times(_worker: int) -> int:
        start.wait()
        results = [runtime.invoke("SleepyFunction", {}).result for _ in range(3)]
        return max(r["most_at_once_seen_by_the_handler"] for r in results)

    with ThreadPoolExecutor(max_workers=4) as pool:
        seen_by_handler = max(pool.map(invoke_three_times, range(4)))

    assert runtime.concurrency.peak("SleepyFunction") == seen_by_handler == 4
    assert runtime.concurrency.now("SleepyFunction") == 0
    assert runtime.concurrency.peak("OtherFunction") == 0


def test_invocations_one_after_another_peak_at_one(tmp_path: Path):
    runtime = runtime_with_sleepy_function(tmp_path)

    for _ in range(3):
        runtime.invoke("SleepyFunction", {})

    assert runtime.concurrency.peak("SleepyFunction") == 1


def test_an_asynchronous_invocation_in_worker_processes_runs_and_is_retried_there(tmp_path: Path):
    runtime = runtime_with_function(tmp_path, "WorkerFunction", IN_WHICH_PROCESS)

    with ExecutionEnvironments(runtime.stack, "WorkerFunction", 2) as environments:
        succeeded = runtime.invoke_async("WorkerFunction", {}, environments=environments)
        failed = runtime.invoke_async("WorkerFunction", {"fail": True}, 2, environments=environments)

    assert succeeded.result["pid"] in environments.pids
    assert succeeded.result["pid"] != os.getpid()
    assert (failed.attempts, failed.error["type"]) == (3, "RuntimeError")
    assert runtime.concurrency.peak("WorkerFunction") == 1
