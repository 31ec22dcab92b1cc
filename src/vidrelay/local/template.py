"""Read template.yaml as the local stack needs it: functions, their events and routes, and intrinsic values.

The local stack builds its resources and wires its events from this model, never from copies of the template,
so the laptop and the cloud cannot drift apart. Only the raw SAM template is read (no transform): the local
stack needs what the author wrote (functions, events, tables, queues), not what CloudFormation generates.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

__all__ = [
    "NO_VALUE",
    "AsyncInvokeSpec",
    "EventKind",
    "EventSpec",
    "FunctionSpec",
    "Parameter",
    "ResolveContext",
    "Template",
    "UnresolvableError",
    "find_template",
    "load_yaml",
    "parse_rate",
    "pseudo_parameters",
    "references",
    "resolve",
]

DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account, so ARNs we build match the ones moto returns

# ------------------------------------------------------------------------------------------- YAML loading


class CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that reads `!Ref`, `!GetAtt`, `!Sub`… into their long JSON forms."""


# YAML 1.1 would turn an unquoted AWSTemplateFormatVersion 2010-09-09 into a date; CloudFormation keeps it a
# string, and so do we.
CloudFormationLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        # `!GetAtt Table.StreamArn`; attribute names may contain dots themselves (`Endpoint.Address`).
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    return {f"Fn::{suffix}": value}


CloudFormationLoader.add_multi_constructor("!", _construct_intrinsic)


def load_yaml(text: str) -> dict[str, Any]:
    document = yaml.load(text, Loader=CloudFormationLoader)  # a SafeLoader subclass: no arbitrary objects
    if not isinstance(document, dict):
        raise ValueError("a CloudFormation template is a mapping at the top level")
    return document


def find_template(start: Path | None = None) -> Path:
    """template.yaml in `start` (default: the working directory) or a parent, else the repository's own."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "template.yaml"
        if candidate.is_file():
            return candidate
    # src/vidrelay/local/template.py -> repository root, for a source checkout run from elsewhere.
    candidate = Path(__file__).resolve().parents[3] / "template.yaml"
    if candidate.is_file():
        return candidate
    raise FileNotFoundError(f"no template.yaml in {here} or its parents")


# ------------------------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    default: Any = None

    def coerce(self, value: Any) -> Any:
        """Give a value the Python type its CloudFormation type implies (overrides arrive as strings)."""
        if value is None:
            return None
        if self.type == "Number":
            number = float(value)
            return int(number) if number.is_integer() else number
        if self.type.startswith("List<") or self.type == "CommaDelimitedList":
            if isinstance(value, list):
                return [str(item) for item in value]
            return [item.strip() for item in str(value).split(",")] if str(value) else []
        return str(value)


EventKind = Literal["http", "sqs", "schedule", "s3", "sns"]


@dataclass(frozen=True)
class EventSpec:
    name: str
    kind: EventKind
    path: str | None = None
    method: str | None = None
    queue: str | None = None  # logical id of the SQS queue
    batch_size: int | None = None
    report_batch_item_failures: bool = False
    # ScalingConfig.MaximumConcurrency of an SQS event source: how many invocations Lambda runs at once for it.
    max_concurrency: int | None = None
    schedule: str | None = None  # e.g. "rate(1 minute)"
    bucket: str | None = None  # logical id of the S3 bucket
    s3_events: tuple[str, ...] = ()
    s3_prefix: str | None = None
    s3_suffix: str | None = None
    topic: str | None = None  # logical id of the SNS topic
    filter_policy: dict[str, Any] | None = None
    filter_policy_scope: str = "MessageAttributes"


@dataclass(frozen=True)
class AsyncInvokeSpec:
    """How Lambda treats an asynchronous invocation (SNS, S3 direct, EventBridge): `EventInvokeConfig`, with
    Lambda's own defaults (two retries, six hours) when the function says nothing."""

    max_retries: int = 2
    max_event_age_s: int = 21_600
    on_failure: str | None = None  # logical id of the SQS queue taking what failed every try


@dataclass
class FunctionSpec:
    logical_id: str
    code_uri: str
    handler: str
    timeout_s: int
    memory_mb: int
    # Globals merged with the function's own, still as intrinsics (ResourceMap.environment_for resolves).
    environment: dict[str, Any]
    events: list[EventSpec]
    runtime: str = ""
    async_invoke: AsyncInvokeSpec = field(default_factory=AsyncInvokeSpec)

    @property
    def handler_module(self) -> str:
        return self.handler.rpartition(".")[0]

    @property
    def handler_function(self) -> str:
        return self.handler.rpartition(".")[2]


# SQS event source mappings read 10 messages at a time unless told otherwise.
_DEFAULT_SQS_BATCH_SIZE = 10


@dataclass
class Template:
    resources: dict[str, dict[str, Any]]
    parameters: dict[str, Parameter] = field(default_factory=dict)
    globals_function: dict[str, Any] = field(default_factory=dict)
    conditions: dict[str, Any] = field(default_factory=dict)
    mappings: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @classmethod
    def load(cls, path: str | Path) -> Template:
        path = Path(path)
        return cls.parse(path.read_text(encoding="utf-8"), path=path)

    @classmethod
    def parse(cls, text: str, *, path: Path | None = None) -> Template:
        document = load_yaml(text)
        parameters = {
            name: Parameter(name=name, type=str(spec.get("Type", "String")), default=spec.get("Default"))
            for name, spec in (document.get("Parameters") or {}).items()
        }
        return cls(
            resources=dict(document.get("Resources") or {}),
            parameters=parameters,
            globals_function=dict((document.get("Globals") or {}).get("Function") or {}),
            conditions=dict(document.get("Conditions") or {}),
            mappings=dict(document.get("Mappings") or {}),
            outputs=dict(document.get("Outputs") or {}),
            path=path,
        )

    # -- parameters and resolution

    def parameter_values(self, overrides: dict[str, str] | None = None) -> dict[str, Any]:
        overrides = overrides or {}
        unknown = set(overrides) - set(self.parameters)
        if unknown:
            raise KeyError(f"unknown template parameters: {sorted(unknown)}")
        values = {}
        for name, parameter in self.parameters.items():
            raw = overrides.get(name, parameter.default)
            if raw is not None:
                values[name] = parameter.coerce(raw)
        return values

    def context(
        self,
        *,
        region: str = "us-east-1",
        stack_name: str = "vidrelay-local",
        parameter_overrides: dict[str, str] | None = None,
        account_id: str = DEFAULT_ACCOUNT_ID,
    ) -> ResolveContext:
        """A context knowing parameters, pseudo parameters and conditions, but no resources yet."""
        return ResolveContext(
            parameters=self.parameter_values(parameter_overrides),
            pseudo=pseudo_parameters(region=region, stack_name=stack_name, account_id=account_id),
            condition_definitions=self.conditions,
            mappings=self.mappings,
        )

    def resources_of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {lid: res for lid, res in self.resources.items() if res.get("Type") == resource_type}

    # -- functions, events, routes

    def functions(self) -> list[FunctionSpec]:
        context = self.context()
        return [
            self._function_spec(logical_id, resource, context)
            for logical_id, resource in self.resources_of_type("AWS::Serverless::Function").items()
        ]

    def function(self, logical_id: str) -> FunctionSpec:
        for spec in self.functions():
            if spec.logical_id == logical_id:
                return spec
        raise KeyError(f"no AWS::Serverless::Function {logical_id!r} in the template")

    def routes(self) -> list[tuple[str, str, str]]:
        """(method, path, function logical id) of every HTTP API event, in template order."""
        return [
            (event.method or "ANY", event.path or "/", function.logical_id)
            for function in self.functions()
            for event in function.events
            if event.kind == "http"
        ]

    def _function_spec(self, logical_id: str, resource: dict[str, Any], context: ResolveContext) -> FunctionSpec:
        properties = _merge_globals(self.globals_function, resource.get("Properties") or {})
        variables = (properties.get("Environment") or {}).get("Variables") or {}
        events = [_event_spec(logical_id, name, event) for name, event in (properties.get("Events") or {}).items()]
        # Lambda's own defaults when neither Globals nor the function say otherwise.
        return FunctionSpec(
            logical_id=logical_id,
            code_uri=str(resolve(properties.get("CodeUri", ""), context)),
            handler=str(resolve(properties.get("Handler", ""), context)),
            timeout_s=int(resolve(properties.get("Timeout", 3), context)),
            memory_mb=int(resolve(properties.get("MemorySize", 128), context)),
            environment=dict(variables),
            events=events,
            runtime=str(resolve(properties.get("Runtime", ""), context)),
            async_invoke=_async_invoke_spec(logical_id, properties.get("EventInvokeConfig") or {}, context),
        )


def _is_intrinsic(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and _is_intrinsic_key(next(iter(value)))


def _is_intrinsic_key(key: str) -> bool:
    return key in ("Ref", "Condition") or key.startswith("Fn::")


def _merge_globals(globals_value: Any, own_value: Any) -> Any:
    """SAM's Globals rules: maps merge, lists add up (Globals first), for anything else the function wins."""
    if isinstance(globals_value, dict) and isinstance(own_value, dict):
        if _is_intrinsic(globals_value) or _is_intrinsic(own_value):
            return own_value
        merged = dict(globals_value)
        for key, value in own_value.items():
            merged[key] = _merge_globals(globals_value[key], value) if key in globals_value else value
        return merged
    if isinstance(globals_value, list) and isinstance(own_value, list):
        return [*globals_value, *own_value]
    return own_value


def _logical_id_of(value: Any, what: str) -> str:
    """The resource a SAM event points at: `!Ref X`, `!GetAtt X.Arn`, or a bare logical id."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    raise ValueError(f"{what}: expected !Ref or !GetAtt of a resource in this template, got {value!r}")


def _max_concurrency(scaling: Any, where: str) -> int | None:
    if scaling is None:
        return None
    if not isinstance(scaling, dict) or not isinstance(scaling.get("MaximumConcurrency"), int):
        raise ValueError(f"{where}.ScalingConfig: want {{MaximumConcurrency: <int>}}, got {scaling!r}")
    return int(scaling["MaximumConcurrency"])


def _async_invoke_spec(function_id: str, config: dict[str, Any], context: ResolveContext) -> AsyncInvokeSpec:
    on_failure = ((config.get("DestinationConfig") or {}).get("OnFailure")) or {}
    if on_failure and on_failure.get("Type", "SQS") != "SQS":
        raise ValueError(f"{function_id}.EventInvokeConfig: only an SQS on-failure destination is emulated locally")
    return AsyncInvokeSpec(
        max_retries=int(resolve(config.get("MaximumRetryAttempts", 2), context)),
        max_event_age_s=int(resolve(config.get("MaximumEventAgeInSeconds", 21_600), context)),
        on_failure=_logical_id_of(on_failure["Destination"], f"{function_id}.EventInvokeConfig")
        if on_failure.get("Destination")
        else None,
    )


def _event_spec(function_id: str, name: str, event: dict[str, Any]) -> EventSpec:
    kind = event.get("Type")
    properties = event.get("Properties") or {}
    where = f"{function_id}.Events.{name}"
    if kind in ("HttpApi", "Api"):
        return EventSpec(
            name=name,
            kind="http",
            path=str(properties.get("Path", "/")),
            method=str(properties.get("Method", "ANY")).upper(),
        )
    if kind == "SQS":
        return EventSpec(
            name=name,
            kind="sqs",
            queue=_logical_id_of(properties.get("Queue"), where),
            batch_size=int(properties.get("BatchSize", _DEFAULT_SQS_BATCH_SIZE)),
            report_batch_item_failures="ReportBatchItemFailures" in (properties.get("FunctionResponseTypes") or []),
            max_concurrency=_max_concurrency(properties.get("ScalingConfig"), where),
        )
    if kind in ("Schedule", "ScheduleV2"):
        expression = properties.get("Schedule") if kind == "Schedule" else properties.get("ScheduleExpression")
        return EventSpec(name=name, kind="schedule", schedule=str(expression))
    if kind == "S3":
        events = properties.get("Events")
        rules = ((properties.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []
        filters = {str(rule.get("Name", "")).lower(): str(rule.get("Value", "")) for rule in rules}
        return EventSpec(
            name=name,
            kind="s3",
            bucket=_logical_id_of(properties.get("Bucket"), where),
            s3_events=tuple(events) if isinstance(events, list) else (str(events),),
            s3_prefix=filters.get("prefix"),
            s3_suffix=filters.get("suffix"),
        )
    if kind == "SNS":
        policy = properties.get("FilterPolicy")
        return EventSpec(
            name=name,
            kind="sns",
            topic=_logical_id_of(properties.get("Topic"), where),
            filter_policy=dict(policy) if policy else None,
            filter_policy_scope=str(properties.get("FilterPolicyScope", "MessageAttributes")),
        )
    # Failing loudly beats a local stack that silently never fires an event the cloud would.
    raise ValueError(f"{where}: event type {kind!r} is not emulated by the local stack")


# ------------------------------------------------------------------------------------------- schedules

_RATE = re.compile(r"^\s*rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)\s*$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def parse_rate(expression: str) -> float:
    """Seconds between runs of an EventBridge `rate(...)` expression (cron is not emulated locally)."""
    match = _RATE.match(expression)
    if not match:
        raise ValueError(f"not a rate() expression: {expression!r}")
    count, unit = int(match.group(1)), match.group(2).rstrip("s")
    if count <= 0:
        raise ValueError(f"rate must be positive: {expression!r}")
    return float(count * _UNIT_SECONDS[unit])


# ------------------------------------------------------------------------------------------- resolution


class _NoValue:
    """`Ref: AWS::NoValue`: the property is removed, as CloudFormation does."""

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE: Any = _NoValue()


class UnresolvableError(ValueError):
    """An intrinsic names something the context does not know (a resource not created, an import…)."""


def pseudo_parameters(*, region: str, stack_name: str, account_id: str = DEFAULT_ACCOUNT_ID) -> dict[str, Any]:
    stack_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"vidrelay-local:{account_id}:{region}:{stack_name}")
    return {
        "AWS::Region": region,
        "AWS::AccountId": account_id,
        "AWS::StackName": stack_name,
        "AWS::StackId": f"arn:aws:cloudformation:{region}:{account_id}:stack/{stack_name}/{stack_uuid}",
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::NotificationARNs": [],
    }


@dataclass
class ResolveContext:
    """Everything `resolve` may look up. `refs`/`attrs` are filled in as resources are created."""

    parameters: dict[str, Any]
    pseudo: dict[str, Any]
    refs: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    condition_definitions: dict[str, Any] = field(default_factory=dict)
    mappings: dict[str, Any] = field(default_factory=dict)
    exports: dict[str, Any] = field(default_factory=dict)
    _conditions: dict[str, bool] = field(default_factory=dict, repr=False)

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        for source in (self.parameters, self.pseudo, self.refs):
            if name in source:
                return source[name]
        raise UnresolvableError(f"Ref {name!r}: no such parameter, pseudo parameter or created resource")

    def get_att(self, resource: str, attribute: str) -> Any:
        try:
            return self.attrs[resource][attribute]
        except KeyError:
            raise UnresolvableError(f"GetAtt {resource}.{attribute}: not known for this resource") from None

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            if name not in self.condition_definitions:
                raise UnresolvableError(f"condition {name!r} is not defined")
            self._conditions[name] = bool(resolve(self.condition_definitions[name], self))
        return self._conditions[name]


_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def resolve(value: Any, context: ResolveContext) -> Any:
    """Evaluate the intrinsic functions in `value` (recursively); `AWS::NoValue` entries disappear."""
    if isinstance(value, dict):
        if _is_intrinsic(value):
            key, argument = next(iter(value.items()))
            return _resolve_intrinsic(key, argument, context)
        resolved_map = {key: resolve(item, context) for key, item in value.items()}
        return {key: item for key, item in resolved_map.items() if item is not NO_VALUE}
    if isinstance(value, list):
        resolved_list = [resolve(item, context) for item in value]
        return [item for item in resolved_list if item is not NO_VALUE]
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise UnresolvableError(f"expected a string, got {value!r}")
    return str(value)


def _resolve_intrinsic(key: str, argument: Any, context: ResolveContext) -> Any:
    if key == "Ref":
        return context.ref(str(argument))
    if key == "Condition":
        return context.condition(str(argument))
    if key == "Fn::GetAtt":
        resource, attribute = argument if isinstance(argument, list) else str(argument).split(".", 1)
        return context.get_att(str(resolve(resource, context)), str(resolve(attribute, context)))
    if key == "Fn::Sub":
        return _resolve_sub(argument, context)
    if key == "Fn::Join":
        delimiter, items = argument
        return _as_text(resolve(delimiter, context)).join(_as_text(item) for item in resolve(items, context))
    if key == "Fn::Select":
        index, items = argument
        return resolve(items, context)[int(resolve(index, context))]
    if key == "Fn::Split":
        delimiter, source = argument
        return _as_text(resolve(source, context)).split(_as_text(resolve(delimiter, context)))
    if key == "Fn::If":
        name, when_true, when_false = argument
        return resolve(when_true if context.condition(str(name)) else when_false, context)
    if key == "Fn::Equals":
        left, right = (_as_text(resolve(item, context)) for item in argument)
        return left == right
    if key == "Fn::Not":
        return not bool(resolve(argument[0], context))
    if key == "Fn::And":
        return all(bool(resolve(item, context)) for item in argument)
    if key == "Fn::Or":
        return any(bool(resolve(item, context)) for item in argument)
    if key == "Fn::FindInMap":
        map_name, top, second = (_as_text(resolve(item, context)) for item in argument[:3])
        try:
            return context.mappings[map_name][top][second]
        except KeyError:
            raise UnresolvableError(f"FindInMap {map_name}/{top}/{second}: no such entry") from None
    if key == "Fn::ImportValue":
        name = _as_text(resolve(argument, context))
        if name not in context.exports:
            raise UnresolvableError(f"ImportValue {name!r}: no other stack exports it locally")
        return context.exports[name]
    if key == "Fn::Base64":
        return base64.b64encode(_as_text(resolve(argument, context)).encode()).decode()
    if key == "Fn::GetAZs":
        region = _as_text(resolve(argument, context)) or context.pseudo["AWS::Region"]
        return [f"{region}{zone}" for zone in "abc"]
    if key == "Fn::ToJsonString":
        return json.dumps(resolve(argument, context), separators=(",", ":"))
    raise UnresolvableError(f"intrinsic function {key} is not supported locally")


def _resolve_sub(argument: Any, context: ResolveContext) -> str:
    if isinstance(argument, list):
        text, variables = argument[0], {name: resolve(v, context) for name, v in (argument[1] or {}).items()}
    else:
        text, variables = argument, {}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name.startswith("!"):  # `${!Literal}` is CloudFormation's escape for a literal `${Literal}`
            return "${" + name[1:] + "}"
        if name in variables:
            return _as_text(variables[name])
        if "." in name:
            resource, attribute = name.split(".", 1)
            return _as_text(context.get_att(resource, attribute))
        return _as_text(context.ref(name))

    return _SUB_VARIABLE.sub(replace, str(text))


def references(value: Any) -> set[str]:
    """Names that `value` refers to through Ref, GetAtt and Sub (resources, parameters, pseudo parameters)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, argument in value.items():
            if key == "Ref" and isinstance(argument, str):
                found.add(argument)
            elif key == "Fn::GetAtt":
                target = argument[0] if isinstance(argument, list) else str(argument).split(".", 1)[0]
                found.add(str(target))
            elif key == "Fn::Sub":
                text, variables = (argument[0], argument[1] or {}) if isinstance(argument, list) else (argument, {})
                for name in _SUB_VARIABLE.findall(str(text)):
                    name = name.strip()
                    if not name.startswith("!") and name not in variables:
                        found.add(name.split(".", 1)[0])
                found |= references(variables)
            else:
                found |= references(argument)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found
