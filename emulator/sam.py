"""Load template.yaml and run the SAM transform offline, the way `sam validate` does.

Used by the emulator (to deploy the template into moto) and by the template tests (to check the
CloudFormation that `sam deploy` would create for each parameter choice).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from samtranslator.parser.parser import Parser
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_ROOT / "template.yaml"

# Local code locations are replaced by S3 URIs, as `sam package` would do.
_LOCAL_CODE_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


class _NoManagedPolicies:
    """samtranslator asks for the AWS managed policy map only when a template names one by short name."""

    def load(self) -> dict[str, str]:
        return {}


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """Parse a SAM/CloudFormation YAML template, short-form intrinsics (!Ref, !Sub...) included."""
    return yaml_parse(path.read_text(encoding="utf-8"))


def local_code_paths(template: dict[str, Any]) -> dict[str, str]:
    """Logical id -> local CodeUri/ContentUri of every function and layer that ships local code."""
    paths: dict[str, str] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        prop = _LOCAL_CODE_PROPERTIES.get(resource.get("Type", ""))
        if not prop:
            continue
        value = resource.get("Properties", {}).get(prop) or (
            template.get("Globals", {}).get("Function", {}).get(prop)
        )
        if isinstance(value, str) and not value.startswith("s3://"):
            paths[logical_id] = value
    return paths


def transform_template(
    template: dict[str, Any] | None = None,
    parameter_values: dict[str, Any] | None = None,
    code_bucket: str = "batch-dispatch-code",
) -> dict[str, Any]:
    """Return the CloudFormation template SAM would deploy.

    Local code paths become `s3://<code_bucket>/<logical id>.zip`; the caller uploads those objects
    when it really deploys (the emulator does).
    """
    sam_template = copy.deepcopy(template if template is not None else load_template())
    for logical_id in local_code_paths(sam_template):
        resource = sam_template["Resources"][logical_id]
        prop = _LOCAL_CODE_PROPERTIES[resource["Type"]]
        resource.setdefault("Properties", {})[prop] = f"s3://{code_bucket}/{logical_id}.zip"
    Parser.validate_datatypes(sam_template)
    return transform(sam_template, dict(parameter_values or {}), _NoManagedPolicies())
