"""Deploy template.yaml into moto and apply, from the same template, what moto's CloudFormation skips.

moto's CloudFormation creates most resources but silently skips some types and settings (see
ARCHITECTURE.md, "moto facts"). `Shim` reads the transformed template and applies those through
the regular APIs, so the local stack behaves like the deployed one. Nothing here is hard-coded to
our resources: every name, queue, rule and schedule is read from the template.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator import aws_clients
from emulator.moto_server import ACCOUNT_ID, REGION
from emulator.sam import REPO_ROOT, TEMPLATE_PATH, load_template, local_code_paths, transform_template

CODE_BUCKET = "batch-dispatch-emulator-code"
STACK_NAME = "batch-dispatch-local"
# moto's Batch needs a service role where AWS falls back to the service-linked role.
_BATCH_SERVICE_LINKED_ROLE = (
    f"arn:aws:iam::{ACCOUNT_ID}:role/aws-service-role/batch.amazonaws.com/AWSServiceRoleForBatch"
)


@dataclass
class FunctionInfo:
    logical_id: str
    code_dir: Path
    handler: str
    physical_name: str
    environment: dict[str, str]
    timeout: int
    triggers: dict[str, dict[str, Any]]  # SAM event name -> {"Type": ..., "Properties": ...}
    dead_letter_queue: str | None  # logical id of the function's async DLQ


@dataclass
class Stack:
    """What was deployed: physical ids by logical id, outputs, functions and the templates."""

    name: str
    sam_template: dict[str, Any]
    cfn_template: dict[str, Any]
    parameters: dict[str, str]
    physical_ids: dict[str, str]
    outputs: dict[str, str]
    functions: dict[str, FunctionInfo] = field(default_factory=dict)
    event_source_mappings: list[dict[str, Any]] = field(default_factory=list)
    nested: list[Stack] = field(default_factory=list)  # the nested applications' stacks (job types)
    function_urls: dict[str, str] = field(default_factory=dict)  # function logical id -> its URL

    def queue_url(self, logical_id: str) -> str:
        return self.physical_ids[logical_id]

    def queue_arn(self, logical_id: str) -> str:
        return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{self.physical_ids[logical_id].rsplit('/', 1)[-1]}"

    def queue_logical_id(self, arn_or_url: str) -> str | None:
        name = arn_or_url.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
        for logical_id, physical in self.physical_ids.items():
            if self.resource_type(logical_id) == "AWS::SQS::Queue" and physical.rsplit("/", 1)[-1] == name:
                return logical_id
        return None

    def resource_type(self, logical_id: str) -> str:
        return str(self.cfn_template["Resources"].get(logical_id, {}).get("Type", ""))

    def resources_of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.cfn_template["Resources"].items()
            if resource.get("Type") == resource_type
        }

    def dead_letter_queues(self) -> list[str]:
        """Logical ids of the queues the template uses as dead-letter targets (redrive, DLQ, on-failure)."""
        found: list[str] = []

        def visit(node: Any, key: str = "", parent: str = "") -> None:
            if isinstance(node, dict):
                for child_key, child in node.items():
                    visit(child, child_key, key)
            elif isinstance(node, list):
                for child in node:
                    visit(child, key, parent)
            # "Arn" names a dead-letter queue only inside a DeadLetterConfig (a rule's or a schedule's
            # target Arn is where events go: a queue there is a source queue, not a DLQ).
            dead_letter = key in {"deadLetterTargetArn", "TargetArn", "Destination"} or (
                key == "Arn" and parent == "DeadLetterConfig"
            )
            if dead_letter and isinstance(node, dict):
                ref = referenced_logical_id(node)
                if ref and self.resource_type(ref) == "AWS::SQS::Queue" and ref not in found:
                    found.append(ref)

        for resource in self.cfn_template["Resources"].values():
            props = resource.get("Properties", {})
            for name in ("RedrivePolicy", "DeadLetterConfig", "Target", "Targets", "DestinationConfig"):
                if name in props:
                    visit(props[name], name)
        return found


def referenced_logical_id(node: Any) -> str | None:
    """`{"Ref": X}` or `{"Fn::GetAtt": [X, ...]}` -> X."""
    if isinstance(node, dict):
        if "Ref" in node:
            return str(node["Ref"])
        if "Fn::GetAtt" in node:
            target = node["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else target.split(".")[0])
    return None


def _zip_directory(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(directory))
    return buffer.getvalue()


def default_parameters(sam_template: dict[str, Any]) -> dict[str, str]:
    return {
        name: str(spec["Default"]) if not isinstance(spec.get("Default"), list) else ",".join(spec["Default"])
        for name, spec in sam_template.get("Parameters", {}).items()
        if "Default" in spec
    }


@dataclass
class FunctionUrl:
    """An AWS::Lambda::Url of the template, which the emulator creates itself (moto's CloudFormation
    cannot), and the outputs that name it."""

    auth_type: str
    outputs: list[str]


def _prepare_for_moto(
    cfn: dict[str, Any],
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, FunctionUrl]]:
    """Work around moto gaps in the CloudFormation document, returning the event source mappings and
    the function URLs.

    - Managed compute environments get the service-linked role AWS would use.
    - Event source mappings are removed: moto would try to run the function in Docker on every
      message. The emulator polls those queues itself, with the mapping's own settings.
    - `Fn::GetAtt [Parameter, Value]` of an AWS::SSM::Parameter (moto has no such attribute) becomes
      the parameter's own Value expression, which is what CloudFormation returns.
    - moto's CloudFormation has no AWS::Lambda::Url: each becomes a String parameter under the same
      logical id and Condition, holding the target function's ARN, and the outputs naming its URL wait
      for the emulator to create it through Lambda's API (`_create_function_urls`).
    """
    mappings: list[dict[str, Any]] = []
    urls: dict[str, FunctionUrl] = {}
    cfn = _ssm_values_inlined(cfn)
    for logical_id, resource in list(cfn["Resources"].items()):
        if resource["Type"] == "AWS::Batch::ComputeEnvironment":
            resource["Properties"].setdefault("ServiceRole", _BATCH_SERVICE_LINKED_ROLE)
        elif resource["Type"] == "AWS::Lambda::EventSourceMapping":
            mappings.append({"LogicalId": logical_id, **resource["Properties"]})
            del cfn["Resources"][logical_id]
        elif resource["Type"] == "AWS::Lambda::Url":
            properties = resource["Properties"]
            urls[logical_id] = FunctionUrl(auth_type=properties["AuthType"], outputs=[])
            resource["Type"] = "AWS::SSM::Parameter"
            resource["Properties"] = {
                "Name": {"Fn::Sub": f"/emulator/${{AWS::StackName}}/function-urls/{logical_id}"},
                "Type": "String",
                "Value": properties["TargetFunctionArn"],
            }
    for key, output in list(cfn.get("Outputs", {}).items()):
        if referenced_logical_id(output.get("Value")) in urls:
            urls[str(referenced_logical_id(output["Value"]))].outputs.append(key)
            del cfn["Outputs"][key]
    return cfn, mappings, urls


def _create_function_urls(stack: Stack, urls: dict[str, FunctionUrl]) -> None:
    """Create each function URL whose stand-in the deploy created (its Condition held) through Lambda's
    API, and set the outputs that name it, as CloudFormation would."""
    ssm: Any = aws_clients.client("ssm")
    lambda_client: Any = aws_clients.client("lambda")
    for logical_id, url in urls.items():
        if logical_id not in stack.physical_ids:
            continue
        function_arn = ssm.get_parameter(Name=stack.physical_ids[logical_id])["Parameter"]["Value"]
        created = lambda_client.create_function_url_config(FunctionName=function_arn, AuthType=url.auth_type)
        (function,) = [f for f in stack.functions.values() if function_arn.endswith(f":{f.physical_name}")]
        stack.function_urls[function.logical_id] = created["FunctionUrl"]
        stack.outputs.update(dict.fromkeys(url.outputs, created["FunctionUrl"]))


def _ssm_values_inlined(cfn: dict[str, Any]) -> dict[str, Any]:
    values = {
        logical_id: resource.get("Properties", {}).get("Value")
        for logical_id, resource in cfn["Resources"].items()
        if resource.get("Type") == "AWS::SSM::Parameter"
    }

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            target = node.get("Fn::GetAtt")
            if (
                len(node) == 1
                and isinstance(target, list)
                and target[1:] == ["Value"]
                and target[0] in values
            ):
                return inline(values[target[0]])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    inlined: dict[str, Any] = inline(cfn)
    return inlined


def _function_code_dirs(sam_template: dict[str, Any]) -> dict[str, Path]:
    return {
        logical_id: (REPO_ROOT / path).resolve()
        for logical_id, path in local_code_paths(sam_template).items()
        if sam_template["Resources"][logical_id]["Type"] == "AWS::Serverless::Function"
    }


def deploy(
    parameter_overrides: dict[str, str] | None = None,
    template_path: Path = TEMPLATE_PATH,
    stack_name: str = STACK_NAME,
) -> Stack:
    """Transform and deploy the template into the moto server the environment points at."""
    sam_template = load_template(template_path)
    parameters = {**default_parameters(sam_template), **(parameter_overrides or {})}
    _ensure_batch_service_linked_role()
    s3 = aws_clients.client("s3")
    s3.create_bucket(Bucket=CODE_BUCKET)
    nested_templates = _package_nested_applications(sam_template, s3)
    cfn = transform_template(sam_template, parameters, code_bucket=CODE_BUCKET)
    cfn, mappings, urls = _prepare_for_moto(cfn)
    for logical_id, path in local_code_paths(sam_template).items():
        s3.put_object(Bucket=CODE_BUCKET, Key=f"{logical_id}.zip", Body=_zip_directory(REPO_ROOT / path))

    cloudformation = aws_clients.client("cloudformation")
    cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(cfn),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    _wait_for_stack(cloudformation, stack_name)
    described = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    physical_ids = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in _paginate(
            cloudformation, "list_stack_resources", "StackResourceSummaries", StackName=stack_name
        )
    }
    stack = Stack(
        name=stack_name,
        sam_template=sam_template,
        cfn_template=cfn,
        parameters=parameters,
        physical_ids=physical_ids,
        outputs={o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])},
        event_source_mappings=mappings,
    )
    stack.functions = _describe_functions(stack)
    _create_function_urls(stack, urls)
    stack.nested = [
        _describe_nested(cloudformation, physical_ids[logical_id], template)
        for logical_id, template in nested_templates.items()
        if logical_id in physical_ids
    ]
    return stack


def _package_nested_applications(sam_template: dict[str, Any], s3: Any) -> dict[str, dict[str, Any]]:
    """Upload each nested application's local template and point its Location at it, as `sam package`
    does; returns the child templates by the application's logical id.

    A local Location resolves from the repository, like the functions' code paths (so a template copy
    in a temporary directory still finds job-types/job-type.yaml).
    """
    children: dict[str, dict[str, Any]] = {}
    for logical_id, resource in sam_template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Application":
            continue
        location = resource.get("Properties", {}).get("Location")
        if not isinstance(location, str) or location.startswith(("https://", "s3://")):
            continue
        child = load_template(REPO_ROOT / location)
        key = f"{logical_id}.template.json"
        s3.put_object(Bucket=CODE_BUCKET, Key=key, Body=json.dumps(child).encode())
        resource["Properties"]["Location"] = f"https://s3.amazonaws.com/{CODE_BUCKET}/{key}"
        children[logical_id] = child
    return children


def _describe_nested(cloudformation: Any, stack_name: str, template: dict[str, Any]) -> Stack:
    described = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    return Stack(
        name=described["StackName"],
        sam_template=template,
        cfn_template=template,
        parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])},
        physical_ids={
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in _paginate(
                cloudformation, "list_stack_resources", "StackResourceSummaries", StackName=stack_name
            )
        },
        outputs={o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])},
    )


def _ensure_batch_service_linked_role() -> None:
    """AWS creates it in every account that uses Batch; moto checks that it exists."""
    iam = aws_clients.client("iam")
    try:
        iam.get_role(RoleName="AWSServiceRoleForBatch")
    except iam.exceptions.NoSuchEntityException:
        # create_service_linked_role in moto spells it AWSServiceRoleForbatch; AWS spells it this way.
        iam.create_role(
            RoleName="AWSServiceRoleForBatch",
            Path="/aws-service-role/batch.amazonaws.com/",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "batch.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )


def _paginate(client: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    return [item for page in client.get_paginator(operation).paginate(**kwargs) for item in page[key]]


def _wait_for_stack(cloudformation: Any, stack_name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"]
        if status.endswith("_COMPLETE") and "ROLLBACK" not in status:
            return
        if "FAILED" in status or "ROLLBACK" in status or time.monotonic() > deadline:
            events = cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"]
            reasons = [
                f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}"
                for e in events
                if "FAILED" in e.get("ResourceStatus", "")
            ]
            raise RuntimeError(f"stack {stack_name} ended in {status}: {reasons[:5]}")
        time.sleep(0.2)


def _describe_functions(stack: Stack) -> dict[str, FunctionInfo]:
    lambda_client = aws_clients.client("lambda")
    globals_function = stack.sam_template.get("Globals", {}).get("Function", {})
    functions: dict[str, FunctionInfo] = {}
    for logical_id, code_dir in _function_code_dirs(stack.sam_template).items():
        sam_props = stack.sam_template["Resources"][logical_id].get("Properties", {})
        physical = stack.physical_ids[logical_id]
        config = lambda_client.get_function_configuration(FunctionName=physical)
        dlq = None
        cfn_dlq = stack.cfn_template["Resources"][logical_id]["Properties"].get("DeadLetterConfig", {})
        if cfn_dlq:
            dlq = referenced_logical_id(cfn_dlq.get("TargetArn"))
        functions[logical_id] = FunctionInfo(
            logical_id=logical_id,
            code_dir=code_dir,
            handler=str(sam_props.get("Handler") or globals_function.get("Handler", "app.lambda_handler")),
            physical_name=physical,
            environment=dict(config.get("Environment", {}).get("Variables", {})),
            timeout=int(config.get("Timeout") or 3),
            triggers=dict(sam_props.get("Events", {})),
            dead_letter_queue=dlq,
        )
    return functions
