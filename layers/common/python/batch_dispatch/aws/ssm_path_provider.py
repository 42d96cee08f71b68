"""Powertools' SSMProvider, reading a parameter path with GetParametersByPath page by page.

SSMProvider.get_multiple asks botocore for a paginator, and botocore's first `get_paginator` in an
execution environment lists the data directory of every AWS service it knows to check the name
(a cost in every cold start that reads the job-type registry: docs/benchmarks.md#cold-start).
Following NextToken here does the same reads without that listing. Caching, max_age, transforms and
errors stay Powertools' (`_get_multiple` is the method its custom providers implement).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parameters import SSMProvider


class SSMPathProvider(SSMProvider):
    def _get_multiple(
        self, path: str, decrypt: bool | None = None, recursive: bool = False, **sdk_options: Any
    ) -> dict[str, str]:
        request: dict[str, Any] = {
            **sdk_options,
            "Path": path,
            "WithDecryption": bool(decrypt),
            "Recursive": recursive,
        }
        parameters: dict[str, str] = {}
        while True:
            page = self.client.get_parameters_by_path(**request)
            for parameter in page.get("Parameters", []):
                name = str(parameter["Name"])
                parameters[name.removeprefix(path).lstrip("/")] = str(parameter["Value"])
            if not page.get("NextToken"):
                return parameters
            request["NextToken"] = page["NextToken"]
