"""Load template.yaml as CloudFormation processes it, and run the SAM transform offline.

CloudFormation runs the template's transforms in order: `AWS::LanguageExtensions` expands the
`Fn::ForEach` loops, then `AWS::Serverless-2016-10-31` (samtranslator) turns SAM resources into
CloudFormation. `load_template` does the first step, `transform_template` the second. Used by the
emulator (to deploy the template into moto), by the template tests (to check what `sam deploy` would
create for each parameter choice) and by `make lint` (checkov reads the expanded template:
`python -m emulator.sam --output FILE`).
"""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from samcli.lib.cfn_language_extensions import (
    ProcessingPipeline,
    TemplateParsingProcessor,
    TemplateProcessingContext,
)
from samcli.lib.cfn_language_extensions.processors import ForEachProcessor
from samtranslator.parser.parser import Parser
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import intrinsics_multi_constructor

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"

# Local code locations are replaced by S3 URIs, as `sam package` would do.
_LOCAL_CODE_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}

# What AWS::LanguageExtensions also resolves at deploy time and expand_language_extensions does not:
# a template using one must teach it first, or the emulator would deploy something CloudFormation does not.
_NOT_EXPANDED = {"Fn::Length", "Fn::ToJsonString"}


class _NoManagedPolicies:
    """samtranslator asks for the AWS managed policy map only when a template names one by short name."""

    def load(self) -> dict[str, str]:
        return {}


# libyaml's parser when PyYAML was built with it (its wheels are), else the pure-Python one.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _TemplateLoader(_SafeLoader):
    """samtranslator's YAML reading (short-form intrinsics become `{"Fn::...": ...}`), on libyaml's
    parser: the same documents, parsed several times faster."""


_TemplateLoader.add_multi_constructor("!", intrinsics_multi_constructor)


def read_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """Parse a SAM/CloudFormation YAML (or JSON) template as written, short-form intrinsics included.
    A copy of the parse: one deploy reads the same file several times, and a caller may change its copy."""
    stat = path.stat()
    return copy.deepcopy(_parsed(path.resolve(), stat.st_mtime_ns, stat.st_size))


@lru_cache(maxsize=16)
def _parsed(path: Path, _mtime_ns: int, _size: int) -> dict[str, Any]:
    """The file's parse, kept while the file is unchanged (its time and size are part of the key)."""
    document: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=_TemplateLoader)  # noqa: S506 - a safe loader
    return document


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as the SAM transform receives it: read, then its language extensions expanded."""
    return expand_language_extensions(read_template(path))


def _transforms(template: dict[str, Any]) -> list[str]:
    declared = template.get("Transform", [])
    return [declared] if isinstance(declared, str) else list(declared)


def _literal(node: Any) -> Any:
    """`{"Fn::Sub": "text"}` with no variable left (a name a loop built) -> "text"; anything else as is."""
    text = node.get("Fn::Sub") if isinstance(node, dict) and len(node) == 1 else None
    return text if isinstance(text, str) and "${" not in text else node


def _resolve_names(node: Any) -> Any:
    """Under the transform, Ref and Fn::GetAtt may name their resource with an intrinsic function (how a
    loop builds `Ref: !Sub "${Queue}"`); CloudFormation resolves it to the plain name, which moto needs."""
    if isinstance(node, dict):
        resolved = {key: _resolve_names(value) for key, value in node.items()}
        if set(resolved) == {"Ref"}:
            return {"Ref": _literal(resolved["Ref"])}
        if set(resolved) == {"Fn::GetAtt"} and isinstance(resolved["Fn::GetAtt"], list):
            name, *attribute = resolved["Fn::GetAtt"]
            return {"Fn::GetAtt": [_literal(name), *attribute]}
        return resolved
    if isinstance(node, list):
        return [_resolve_names(item) for item in node]
    return node


def _unexpanded_extensions(node: Any) -> Iterator[str]:
    """What the expansion left that only the transform understands."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _NOT_EXPANDED or str(key).startswith("Fn::ForEach::"):
                yield key
            elif key == "Fn::FindInMap" and isinstance(value, list) and len(value) > 3:
                yield "Fn::FindInMap with DefaultValue"
            elif key == "Ref" and not isinstance(value, str):
                yield "Ref of an intrinsic function"
            elif key == "Fn::GetAtt" and isinstance(value, list) and value and not isinstance(value[0], str):
                yield "Fn::GetAtt of an intrinsic function"
            yield from _unexpanded_extensions(value)
    elif isinstance(node, list):
        for item in node:
            yield from _unexpanded_extensions(item)


def expand_language_extensions(template: dict[str, Any]) -> dict[str, Any]:
    """Expand the `Fn::ForEach` loops as the AWS::LanguageExtensions transform does, and nothing else.

    samcli's default pipeline (`process_template`) also resolves every other intrinsic it can, offline
    and without the stack's real values (pseudo parameters, resource attributes). Here only the loops
    are expanded (with samcli's own parsing and ForEach processors), and a Ref or Fn::GetAtt whose
    resource a loop named with `!Sub` gets the plain name; Ref, Sub, GetAtt, If and FindInMap are
    otherwise left for CloudFormation (moto's, in the emulator) to resolve. The transform is taken off
    the template's `Transform` list, as CloudFormation does once it has run it. A template without the
    transform is returned as a copy.
    """
    expanded = copy.deepcopy(template)
    transforms = _transforms(expanded)
    if LANGUAGE_EXTENSIONS not in transforms:
        return expanded
    context = TemplateProcessingContext(fragment=expanded)
    ProcessingPipeline([TemplateParsingProcessor(), ForEachProcessor()]).process_template(context)
    fragment: dict[str, Any] = _resolve_names(context.fragment)
    unexpanded = sorted(set(_unexpanded_extensions(fragment)))
    if unexpanded:
        raise ValueError(f"emulator.sam expands Fn::ForEach only; the template also uses {unexpanded}")
    remaining = [name for name in transforms if name != LANGUAGE_EXTENSIONS]
    if remaining:
        fragment["Transform"] = remaining[0] if len(remaining) == 1 else remaining
    else:
        del fragment["Transform"]
    return fragment


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

    Language extensions are expanded first if the template still has them. Local code paths become
    `s3://<code_bucket>/<logical id>.zip`; the caller uploads those objects when it really deploys
    (the emulator does).
    """
    sam_template = expand_language_extensions(template if template is not None else load_template())
    for logical_id in local_code_paths(sam_template):
        resource = sam_template["Resources"][logical_id]
        prop = _LOCAL_CODE_PROPERTIES[resource["Type"]]
        resource.setdefault("Properties", {})[prop] = f"s3://{code_bucket}/{logical_id}.zip"
    Parser.validate_datatypes(sam_template)
    return transform(sam_template, dict(parameter_values or {}), _NoManagedPolicies())


def main(argv: Sequence[str] | None = None) -> int:
    """Write a template with its language extensions expanded, as JSON (for checkov in `make lint`)."""
    parser = argparse.ArgumentParser(
        prog="python -m emulator.sam",
        description="Expand a template's Fn::ForEach loops (AWS::LanguageExtensions) and write it as JSON.",
    )
    parser.add_argument("template", nargs="?", type=Path, default=TEMPLATE_PATH)
    parser.add_argument("--output", type=Path, required=True, help="file to write (JSON)")
    args = parser.parse_args(argv)
    expanded = load_template(args.template)
    args.output.write_text(json.dumps(expanded, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
