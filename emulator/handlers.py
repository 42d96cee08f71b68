"""What Lambda does around a handler, shared by in-process invocations and worker processes.

The context object, importing `module.attribute` from a function's CodeUri, the environment Lambda
sets, where layers are mounted, and how a raised exception is reported.
"""

from __future__ import annotations

import importlib.util
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.moto_server import ACCOUNT_ID, REGION
from emulator.sam import REPO_ROOT
from emulator.stack import FunctionInfo, Stack


@dataclass
class LocalContext:
    """The parts of Lambda's context object our handlers (and Powertools) read."""

    function_name: str
    memory_limit_in_mb: int = 256
    timeout_seconds: float = 30.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


@dataclass
class Invocation:
    result: Any = None
    error: dict[str, str] | None = None
    attempts: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {"result": self.result, "error": self.error}


def load_handler(logical_id: str, code_dir: Path, handler: str) -> Callable[[Any, Any], Any]:
    """Import a function's handler (`module.attribute`) from its CodeUri, as Lambda's init does."""
    module_file, _, attribute = handler.rpartition(".")
    path = code_dir / f"{module_file.replace('.', '/')}.py"
    spec = importlib.util.spec_from_file_location(f"_fn_{logical_id}", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load handler {handler} from {code_dir}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    loaded: Callable[[Any, Any], Any] = getattr(module, attribute)
    return loaded


def handler_error(logical_id: str, exc: BaseException) -> dict[str, str]:
    """What Lambda reports for a handler that raised (errorType, errorMessage), also on stderr."""
    print(f"[emulator] {logical_id} raised {type(exc).__name__}: {exc}", file=sys.stderr)
    return {"type": type(exc).__name__, "message": str(exc)}


def environment_values(info: FunctionInfo) -> dict[str, str]:
    """The function's deployed environment variables plus what Lambda itself sets."""
    return {
        **info.environment,
        "AWS_LAMBDA_FUNCTION_NAME": info.physical_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
    }


def layer_python_dirs(stack: Stack) -> list[str]:
    """Lambda mounts layers at /opt; Python code is under python/ (ARCHITECTURE.md layout).

    ContentUri is relative to the repository, wherever the template being deployed lives.
    """
    dirs = []
    for resource in stack.sam_template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::LayerVersion":
            content = resource["Properties"].get("ContentUri")
            if isinstance(content, str):
                dirs.append(str((REPO_ROOT / content / "python").resolve()))
    return dirs
