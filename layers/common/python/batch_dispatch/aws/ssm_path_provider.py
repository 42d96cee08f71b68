"""A Powertools parameters provider for SSM that reads a parameter path with GetParametersByPath page by
page, following NextToken itself.

Powertools' SSMProvider.get_multiple asks botocore for a paginator, and botocore's first `get_paginator`
in an execution environment lists the data directory of every AWS service it knows to check the name
(a cost in every cold start that reads the job-type registry: docs/benchmarks.md#cold-start). This is a
custom provider as Powertools documents them (BaseProvider with `_get` and `_get_multiple`), so caching,
max_age, transforms and errors stay Powertools'.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parameters import BaseProvider


class SSMPathProvider(BaseProvider):
    def __init__(self, boto3_client: Any) -> None:
        super().__init__(client=boto3_client)
        self.client = boto3_client

    def _get(self, name: str, **sdk_options: Any) -> str:
        return str(self.client.get_parameter(**sdk_options, Name=name)["Parameter"]["Value"])

    def _get_multiple(self, path: str, recursive: bool = False, **sdk_options: Any) -> dict[str, str]:
        """name (after `path`) -> value of every parameter under `path`."""
        request: dict[str, Any] = {**sdk_options, "Path": path, "Recursive": recursive}
        parameters: dict[str, str] = {}
        while True:
            page = self.client.get_parameters_by_path(**request)
            for parameter in page.get("Parameters", []):
                name = str(parameter["Name"])
                parameters[name.removeprefix(path).lstrip("/")] = str(parameter["Value"])
            if not page.get("NextToken"):
                return parameters
            request["NextToken"] = page["NextToken"]
