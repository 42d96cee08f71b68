"""The template as CloudFormation sees it, offline: transforms, Conditions, Rules and policies.

Shared by the template tests. `sam_template()` is the template once AWS::LanguageExtensions has
expanded its Fn::ForEach loops (what the SAM transform receives); `transformed()` is what the SAM
transform makes of it; `deploy()` is what CloudFormation would then create for a parameter choice
(Conditions, Fn::If and parameter Refs evaluated, everything else kept); `rules_refusing()` evaluates
the template's `Rules` the way CloudFormation does before it creates anything.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from typing import Any

from emulator.sam import REPO_ROOT, load_template, transform_template

TEMPLATE_PATH = REPO_ROOT / "template.yaml"
JOB_TYPE_TEMPLATE_PATH = REPO_ROOT / "job-types" / "job-type.yaml"
REGION = "us-east-1"
NO_VALUE = object()

COMPUTE_TYPES = ["FARGATE", "EC2", "SPOT"]
VPC_MODES = ["CreatePublic", "CreatePrivateWithNat", "Existing"]
EXISTING_NETWORK = {
    "SubnetIds": "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
    "SecurityGroupIds": "sg-0123456789abcdef0",
}
# Every function of template.yaml by logical id, written out (not read from the template) so that a
# function lost from the template fails the tests that go through this list.
FUNCTIONS = [
    "ScheduleSubmitFunction",
    "S3SubmitFunction",
    "FailureNotifyFunction",
    "StormDigestFunction",
    "SlackActionsFunction",
    "WatchdogFunction",
]


@cache
def sam_template() -> dict[str, Any]:
    return load_template()


@cache
def job_type_template() -> dict[str, Any]:
    """job-types/job-type.yaml, the template of each job type's nested stack (plain CloudFormation)."""
    return load_template(JOB_TYPE_TEMPLATE_PATH)


@cache
def _transformed(params: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    return transform_template(copy.deepcopy(sam_template()), parameter_values=dict(params))


def parameter_values(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """Every parameter's value as CloudFormation passes it: strings, lists for CommaDelimitedList."""
    values: dict[str, Any] = {}
    for name, spec in template["Parameters"].items():
        raw = str(overrides.get(name, spec.get("Default")))
        values[name] = raw.split(",") if spec["Type"] == "CommaDelimitedList" else raw
    return values


class Resolver:
    """Evaluates what CloudFormation evaluates before creating resources: Conditions, Fn::If,
    AWS::NoValue, Refs to parameters and Fn::FindInMap of known keys. Everything else (resource Refs,
    GetAtt, Sub) is kept."""

    def __init__(self, template: dict[str, Any], overrides: dict[str, str]) -> None:
        self.params = parameter_values(template, overrides)
        self.mappings = template.get("Mappings", {})
        self.condition_defs = template.get("Conditions", {})
        self.conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = bool(self._evaluate(self.condition_defs[name]))
        return self.conditions[name]

    def _evaluate(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((fn, arg),) = node.items()
            if fn == "Fn::Equals":
                return self._evaluate(arg[0]) == self._evaluate(arg[1])
            if fn == "Fn::Not":
                return not self._evaluate(arg[0])
            if fn == "Fn::And":
                return all(self._evaluate(a) for a in arg)
            if fn == "Fn::Or":
                return any(self._evaluate(a) for a in arg)
            if fn == "Condition":
                return self.condition(arg)
            if fn == "Ref" and arg in self.params:
                return self.params[arg]
            if fn == "Fn::Join":
                return arg[0].join(self._evaluate(arg[1]))
            if fn == "Fn::Split":
                return str(self._evaluate(arg[1])).split(arg[0])
            if fn == "Fn::Select":
                return self._evaluate(arg[1])[int(arg[0])]
            if fn == "Fn::Sub" and isinstance(arg, str):  # parameters only, as Conditions allow
                return re.sub(r"\$\{([^}!]+)\}", lambda m: str(self.params[m.group(1)]), arg)
        return node

    def resolve(self, node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"Fn::If"}:
                name, if_true, if_false = node["Fn::If"]
                return self.resolve(if_true if self.condition(name) else if_false)
            if set(node) == {"Ref"}:
                if node["Ref"] == "AWS::NoValue":
                    return NO_VALUE
                if node["Ref"] in self.params:
                    return self.params[node["Ref"]]
            if set(node) == {"Fn::FindInMap"}:
                keys = [self.resolve(key) for key in node["Fn::FindInMap"]]
                if all(isinstance(key, str) for key in keys):
                    mapping, top, second = keys
                    return self.mappings[mapping][top][second]
            resolved = {key: self.resolve(value) for key, value in node.items()}
            return {key: value for key, value in resolved.items() if value is not NO_VALUE}
        if isinstance(node, list):
            return [item for item in (self.resolve(i) for i in node) if item is not NO_VALUE]
        return node


@cache
def _deployed(params: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    template = _transformed(params)
    resolver = Resolver(template, dict(params))
    resources = {
        logical_id: resolver.resolve(resource)
        for logical_id, resource in template["Resources"].items()
        if "Condition" not in resource or resolver.condition(resource["Condition"])
    }
    return {"Resources": resources, "Conditions": dict(resolver.conditions)}


def deploy(**overrides: str) -> dict[str, Any]:
    """The resources CloudFormation would create for these parameters, conditions applied."""
    return _deployed(tuple(sorted(overrides.items())))


def transformed(**overrides: str) -> dict[str, Any]:
    """The CloudFormation template after the SAM transform, before Conditions are evaluated."""
    return _transformed(tuple(sorted(overrides.items())))


def combination(compute_type: str, vpc_mode: str, **overrides: str) -> dict[str, str]:
    """Parameter overrides for a ComputeType x VpcMode choice (with the subnets Existing needs)."""
    chosen = {"ComputeType": compute_type, "VpcMode": vpc_mode, **overrides}
    if vpc_mode == "Existing":
        chosen = {**EXISTING_NETWORK, **chosen}
    return chosen


def props(resources: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return dict(resources["Resources"][logical_id]["Properties"])


def of_type(resources: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in resources["Resources"].items() if v["Type"] == resource_type}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _branches(node: Any) -> list[Any]:
    """Both outcomes of an unevaluated Fn::If (a transformed template keeps them), else the node."""
    if isinstance(node, dict) and set(node) == {"Fn::If"}:
        return [b for branch in node["Fn::If"][1:] for b in _branches(branch)]
    if isinstance(node, dict) and node == {"Ref": "AWS::NoValue"}:
        return []
    return [node]


def all_policy_statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every statement of every identity and resource policy in the template, with its owner.

    On a template whose Conditions are not applied, a policy behind Fn::If counts with both outcomes.
    """
    found: list[tuple[str, dict[str, Any]]] = []
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        policies = [p for entry in _branches(properties.get("Policies", [])) for p in as_list(entry)]
        documents = [p["PolicyDocument"] for q in policies for p in _branches(q) if isinstance(p, dict)]
        if "PolicyDocument" in properties:
            documents.append(properties["PolicyDocument"])
        for document in documents:
            for entry in as_list(document.get("Statement", [])):
                found.extend((logical_id, statement) for statement in _branches(entry))
    return found


def role_statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """A role's inline statements, those of the customer managed policies attached to it and those of
    the AWS::IAM::Policy resources that name it."""
    attached = {
        arn["Ref"]
        for arn in template["Resources"][role]["Properties"].get("ManagedPolicyArns", [])
        if isinstance(arn, dict) and "Ref" in arn
    }
    attached |= {
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::IAM::Policy"
        and {"Ref": role} in resource.get("Properties", {}).get("Roles", [])
    }
    return [s for owner, s in all_policy_statements(template) if owner == role or owner in attached]


# ------------------------------------------------------------------------------------------------
# Rules: CloudFormation evaluates them over the raw template before it creates anything.
# ------------------------------------------------------------------------------------------------
class RuleEvaluator:
    """The rule-specific intrinsics the template uses, over parameter values (strings and lists)."""

    def __init__(self, template: dict[str, Any], overrides: dict[str, str]) -> None:
        self.params = parameter_values(template, overrides)

    def __call__(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self(item) for item in node]
        if not isinstance(node, dict):
            return node
        ((fn, arg),) = node.items()
        if fn == "Ref":
            return self.params[arg]
        if fn == "Fn::Equals":
            left, right = self(arg[0]), self(arg[1])
            return str(left) == str(right)
        if fn == "Fn::Not":
            return not self(arg[0])
        if fn == "Fn::And":
            return all(self(a) for a in arg)
        if fn == "Fn::Or":
            return any(self(a) for a in arg)
        if fn == "Fn::Contains":
            return str(self(arg[1])) in [str(v) for v in self(arg[0])]
        if fn == "Fn::EachMemberEquals":
            return all(str(v) == str(self(arg[1])) for v in self(arg[0]))
        if fn == "Fn::EachMemberIn":
            allowed = [str(v) for v in self(arg[1])]
            return all(str(v) in allowed for v in self(arg[0]))
        raise NotImplementedError(f"rule intrinsic {fn} is not evaluated by this test helper")


def rules_refusing(**overrides: str) -> list[str]:
    """The AssertDescription of every rule assertion these parameters fail (empty: CloudFormation goes on)."""
    return rules_refusing_in(sam_template(), **overrides)


def rules_refusing_in(template: dict[str, Any], **overrides: str) -> list[str]:
    """`rules_refusing` for another template (a job type's)."""
    evaluate = RuleEvaluator(template, overrides)
    refused: list[str] = []
    for rule in template.get("Rules", {}).values():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"]):
            continue
        refused.extend(a["AssertDescription"] for a in rule["Assertions"] if not evaluate(a["Assert"]))
    return refused
