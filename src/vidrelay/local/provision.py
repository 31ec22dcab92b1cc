"""Create the template's tables, buckets, topics, queues and subscriptions in a moto server.

Everything comes from the resources' own Properties in template.yaml, so the local stack has the same
keys, indexes, redrive policies and subscriptions as the deployed one. Resource types AWS would run for us
(IAM, alarms, log groups, layers, the HTTP API, the functions themselves) are not created; the local stack
runs functions from `Template.functions()` and wires their events itself.

Physical names are a pure function of (stack name, logical id), so a fresh moto gets the same names every time
and a second run against the same moto finds what the first one made.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from vidrelay.local.template import (
    NO_VALUE,
    FunctionSpec,
    ResolveContext,
    Template,
    UnresolvableError,
    references,
    resolve,
)

__all__ = ["ProvisionError", "ResourceMap", "physical_name", "provision"]

logger = logging.getLogger(__name__)


class ProvisionError(RuntimeError):
    """The template cannot be created locally as written (a cycle, a missing required property…)."""


# ------------------------------------------------------------------------------------------- naming

# Per resource type: (longest name AWS accepts, characters it accepts, whether it must be lower case).
_NAME_RULES: dict[str, tuple[int, str, bool]] = {
    "AWS::S3::Bucket": (63, r"[^a-z0-9-]", True),
    "AWS::SQS::Queue": (80, r"[^A-Za-z0-9_-]", False),
    "AWS::SNS::Topic": (256, r"[^A-Za-z0-9_-]", False),
    "AWS::DynamoDB::Table": (255, r"[^A-Za-z0-9_.-]", False),
    "AWS::Serverless::Function": (64, r"[^A-Za-z0-9_-]", False),
}
_DEFAULT_NAME_RULE = (128, r"[^A-Za-z0-9_-]", False)
_SUFFIX_LENGTH = 12


def physical_name(stack_name: str, logical_id: str, resource_type: str = "", *, reserve: int = 0) -> str:
    """`<stack>-<LogicalId>-<SUFFIX>` like CloudFormation's, but the suffix is a hash instead of random.

    Buckets are lower case (`<stack>-<logicalid>-<suffix>`), as S3 requires. `reserve` keeps room for a
    suffix the caller appends (".fifo").
    """
    max_length, disallowed, lower = _NAME_RULES.get(resource_type, _DEFAULT_NAME_RULE)
    digest = hashlib.sha256(f"{stack_name}/{logical_id}".encode()).hexdigest()[:_SUFFIX_LENGTH]
    suffix = digest if lower else digest.upper()
    stem = f"{stack_name}-{logical_id}"
    if lower:
        stem = stem.lower()
    stem = re.sub(r"-+", "-", re.sub(disallowed, "-", stem)).strip("-")
    stem = stem[: max_length - reserve - len(suffix) - 1].rstrip("-")
    return f"{stem}-{suffix}"


# ------------------------------------------------------------------------------------------- resource map


@dataclass
class ResourceMap:
    """Physical names and attributes of what `provision` created, and a resolver for the template's values."""

    template: Template
    context: ResolveContext
    endpoint_url: str
    region: str
    stack_name: str
    created: list[str] = field(default_factory=list)  # emulated logical ids, in creation order

    def ref(self, logical_id: str) -> str:
        return str(self.context.ref(logical_id))

    def attr(self, logical_id: str, name: str) -> str:
        return str(self.context.get_att(logical_id, name))

    def queue_url(self, logical_id: str) -> str:
        resource_type = self.template.resources.get(logical_id, {}).get("Type")
        if resource_type != "AWS::SQS::Queue":
            raise KeyError(f"{logical_id!r} is not an AWS::SQS::Queue in the template")
        return self.attr(logical_id, "QueueUrl")

    def resolve(self, value: Any) -> Any:
        return resolve(value, self.context)

    def environment_for(self, function: FunctionSpec | str) -> dict[str, str]:
        """The function's environment as Lambda would see it: Globals merged, intrinsics resolved, strings."""
        spec = self.template.function(function) if isinstance(function, str) else function
        environment: dict[str, str] = {}
        for name, value in spec.environment.items():
            resolved = self.resolve(value)
            if resolved is NO_VALUE:
                continue
            if isinstance(resolved, bool):
                environment[name] = "true" if resolved else "false"
            elif isinstance(resolved, (dict, list)):
                raise ProvisionError(f"{spec.logical_id}: environment variable {name} is not a string")
            else:
                environment[name] = str(resolved)
        return environment


# ------------------------------------------------------------------------------------------- provisioning


class _Clients:
    """boto3 clients for the moto server, built once per service."""

    def __init__(self, endpoint_url: str, region: str) -> None:
        self._endpoint_url = endpoint_url
        self._region = region
        self._clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            # Fixed fake credentials: moto accepts anything, and a developer's real ones must never be sent.
            self._clients[service] = boto3.client(
                service,  # type: ignore[call-overload]
                endpoint_url=self._endpoint_url,
                region_name=self._region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        return self._clients[service]


# (ref value, GetAtt attributes) of one created resource.
_Created = tuple[str, dict[str, str]]
_Creator = Callable[[_Clients, str, dict[str, Any], str, ResolveContext], _Created]


def provision(
    template: Template,
    *,
    endpoint_url: str,
    region: str = "us-east-1",
    stack_name: str = "vidrelay-local",
    parameter_overrides: dict[str, str] | None = None,
) -> ResourceMap:
    """Create every emulated resource of `template` in the moto server at `endpoint_url`; safe to re-run."""
    context = template.context(region=region, stack_name=stack_name, parameter_overrides=parameter_overrides)
    clients = _Clients(endpoint_url, region)
    resources = {
        logical_id: resource
        for logical_id, resource in template.resources.items()
        if "Condition" not in resource or context.condition(str(resource["Condition"]))
    }
    emulated = {lid: res for lid, res in resources.items() if res.get("Type") in _CREATORS}

    # What AWS would run for us still gets a stable name, so references to it (FunctionName) resolve.
    for logical_id, resource in resources.items():
        if logical_id not in emulated:
            _name_skipped(logical_id, str(resource.get("Type")), context)

    resource_map = ResourceMap(template, context, endpoint_url, region, stack_name)
    for logical_id in _creation_order(emulated):
        resource = emulated[logical_id]
        resource_type = str(resource["Type"])
        try:
            properties = resolve(resource.get("Properties") or {}, context)
        except UnresolvableError as error:
            raise ProvisionError(f"{logical_id}: {error}") from error
        name = physical_name(stack_name, logical_id, resource_type)
        ref, attrs = _CREATORS[resource_type](clients, logical_id, properties, name, context)
        context.refs[logical_id] = ref
        context.attrs[logical_id] = attrs
        resource_map.created.append(logical_id)
        logger.debug("provisioned %s %s -> %s", resource_type, logical_id, ref)
    return resource_map


def _name_skipped(logical_id: str, resource_type: str, context: ResolveContext) -> None:
    name = physical_name(context.pseudo["AWS::StackName"], logical_id, resource_type)
    context.refs[logical_id] = name
    if resource_type == "AWS::Serverless::Function":
        region, account = context.pseudo["AWS::Region"], context.pseudo["AWS::AccountId"]
        context.attrs[logical_id] = {"Arn": f"arn:aws:lambda:{region}:{account}:function:{name}"}


def _creation_order(resources: dict[str, dict[str, Any]]) -> list[str]:
    """Logical ids ordered so that what a resource refers to is created before it (else template order)."""
    dependencies: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        depends_on = resource.get("DependsOn") or []
        named = references(resource.get("Properties") or {}) | set(
            [depends_on] if isinstance(depends_on, str) else depends_on
        )
        dependencies[logical_id] = {name for name in named if name in resources and name != logical_id}

    order: list[str] = []
    state: dict[str, str] = {}

    def visit(logical_id: str, path: tuple[str, ...]) -> None:
        if state.get(logical_id) == "done":
            return
        if state.get(logical_id) == "visiting":
            raise ProvisionError(f"circular references: {' -> '.join((*path, logical_id))}")
        state[logical_id] = "visiting"
        for dependency in sorted(dependencies[logical_id], key=list(resources).index):
            visit(dependency, (*path, logical_id))
        state[logical_id] = "done"
        order.append(logical_id)

    for logical_id in resources:
        visit(logical_id, ())
    return order


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _flag(value: Any) -> str:
    """CloudFormation booleans and numbers as the strings the SQS/SNS attribute APIs want."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower()
    return str(value)


def _json_attribute(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _warn_unemulated(logical_id: str, properties: dict[str, Any], handled: set[str]) -> None:
    for name in sorted(set(properties) - handled):
        logger.warning("%s.%s is not emulated by the local stack", logical_id, name)


# -- DynamoDB

_TABLE_PROPERTIES = {
    "TableName",
    "AttributeDefinitions",
    "KeySchema",
    "BillingMode",
    "ProvisionedThroughput",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "StreamSpecification",
    "SSESpecification",
    "TimeToLiveSpecification",
    "PointInTimeRecoverySpecification",
    "Tags",
    # Deletion protection would only get in the way of throwing a local table away.
    "DeletionProtectionEnabled",
}
_INDEX_FIELDS = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput")


def _create_table(
    clients: _Clients, logical_id: str, properties: dict[str, Any], name: str, context: ResolveContext
) -> _Created:
    dynamodb = clients("dynamodb")
    _warn_unemulated(logical_id, properties, _TABLE_PROPERTIES)
    table_name = str(properties.get("TableName") or name)
    request: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
        "BillingMode": properties.get("BillingMode", "PROVISIONED"),
    }
    if "ProvisionedThroughput" in properties:
        request["ProvisionedThroughput"] = properties["ProvisionedThroughput"]
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if properties.get(kind):
            request[kind] = [{key: index[key] for key in _INDEX_FIELDS if key in index} for index in properties[kind]]
    if "StreamSpecification" in properties:
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": properties["StreamSpecification"]["StreamViewType"],
        }
    sse = properties.get("SSESpecification") or {}
    if sse:
        request["SSESpecification"] = {"Enabled": bool(sse.get("SSEEnabled"))} | {
            key: sse[key] for key in ("SSEType", "KMSMasterKeyId") if key in sse
        }
    if properties.get("Tags"):
        request["Tags"] = properties["Tags"]
    try:
        dynamodb.create_table(**request)
    except ClientError as error:
        if _error_code(error) != "ResourceInUseException":
            raise
    description = dynamodb.describe_table(TableName=table_name)["Table"]

    ttl = properties.get("TimeToLiveSpecification") or {}
    if ttl.get("Enabled"):
        current = dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            dynamodb.update_time_to_live(
                TableName=table_name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
    pitr = properties.get("PointInTimeRecoverySpecification") or {}
    if pitr.get("PointInTimeRecoveryEnabled"):
        dynamodb.update_continuous_backups(
            TableName=table_name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )

    attrs = {"Arn": str(description["TableArn"])}
    if description.get("LatestStreamArn"):
        attrs["StreamArn"] = str(description["LatestStreamArn"])
    return table_name, attrs


# -- S3

_BUCKET_PROPERTIES = {
    "BucketName",
    "BucketEncryption",
    "PublicAccessBlockConfiguration",
    "OwnershipControls",
    "LifecycleConfiguration",
    "VersioningConfiguration",
    "Tags",
    "NotificationConfiguration",
}


def _create_bucket(
    clients: _Clients, logical_id: str, properties: dict[str, Any], name: str, context: ResolveContext
) -> _Created:
    s3 = clients("s3")
    _warn_unemulated(logical_id, properties, _BUCKET_PROPERTIES)
    bucket = str(properties.get("BucketName") or name)
    region = context.pseudo["AWS::Region"]
    request: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":  # us-east-1 is the one region S3 refuses an explicit LocationConstraint for
        request["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**request)
    except ClientError as error:
        if _error_code(error) != "BucketAlreadyOwnedByYou":
            raise

    if "BucketEncryption" in properties:
        rules = [_encryption_rule(rule) for rule in properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]]
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in properties:
        s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=properties["PublicAccessBlockConfiguration"]
        )
    if "OwnershipControls" in properties:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=properties["OwnershipControls"])
    if "VersioningConfiguration" in properties:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=properties["VersioningConfiguration"])
    if "LifecycleConfiguration" in properties:
        rules = [_lifecycle_rule(logical_id, rule) for rule in properties["LifecycleConfiguration"]["Rules"]]
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    if properties.get("Tags"):
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": properties["Tags"]})
    if "NotificationConfiguration" in properties:
        # moto delivers S3 events to SQS itself (with S3's URL-encoded keys and its s3:TestEvent on setup), so
        # the intake queue gets what it would get in AWS and the router feeds it to its function as any queue.
        notification = _notification_configuration(logical_id, properties["NotificationConfiguration"])
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=notification)

    attrs = {
        "Arn": f"arn:aws:s3:::{bucket}",
        "DomainName": f"{bucket}.s3.amazonaws.com",
        "RegionalDomainName": f"{bucket}.s3.{region}.amazonaws.com",
    }
    return bucket, attrs


# CloudFormation's destination list and field -> the S3 API's.
_NOTIFICATION_DESTINATIONS = {
    "QueueConfigurations": "QueueArn",
    "TopicConfigurations": "TopicArn",
}


def _notification_configuration(logical_id: str, configuration: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation NotificationConfiguration (`Event`, `Queue`, `Filter.S3Key.Rules`) in the S3 API's
    shape (`Events`, `QueueArn`, `Filter.Key.FilterRules`)."""
    converted: dict[str, Any] = {}
    for kind, arn_field in _NOTIFICATION_DESTINATIONS.items():
        destinations = []
        for entry in configuration.get(kind) or []:
            destination: dict[str, Any] = {
                arn_field: entry[arn_field.removesuffix("Arn")],
                "Events": [entry["Event"]],
            }
            rules = ((entry.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []
            if rules:
                destination["Filter"] = {
                    "Key": {"FilterRules": [{"Name": rule["Name"], "Value": rule["Value"]} for rule in rules]}
                }
            destinations.append(destination)
        if destinations:
            converted[kind] = destinations
    # Lambda destinations would need the function to exist in moto; the local stack runs functions itself.
    _warn_unemulated(f"{logical_id}.NotificationConfiguration", configuration, set(_NOTIFICATION_DESTINATIONS))
    return converted


def _encryption_rule(rule: dict[str, Any]) -> dict[str, Any]:
    # The one field CloudFormation names differently from the S3 API.
    renamed = {"ServerSideEncryptionByDefault": "ApplyServerSideEncryptionByDefault"}
    return {renamed.get(key, key): value for key, value in rule.items()}


def _lifecycle_rule(logical_id: str, rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule (flat `ExpirationInDays`, `Prefix`) in the S3 API's nested shape."""
    converted: dict[str, Any] = {
        "Status": rule.get("Status", "Enabled"),
        "Filter": {"Prefix": rule.get("Prefix", "")},
    }
    if "Id" in rule:
        converted["ID"] = rule["Id"]
    expiration: dict[str, Any] = {}
    if "ExpirationInDays" in rule:
        expiration["Days"] = int(rule["ExpirationInDays"])
    if "ExpiredObjectDeleteMarker" in rule:
        expiration["ExpiredObjectDeleteMarker"] = bool(rule["ExpiredObjectDeleteMarker"])
    if expiration:
        converted["Expiration"] = expiration
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        converted["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    if "NoncurrentVersionExpirationInDays" in rule:
        converted["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(rule["NoncurrentVersionExpirationInDays"])}
    if "Transitions" in rule:
        converted["Transitions"] = [
            {"Days": int(t["TransitionInDays"]), "StorageClass": t["StorageClass"]} for t in rule["Transitions"]
        ]
    handled = {
        "Id",
        "Status",
        "Prefix",
        "ExpirationInDays",
        "ExpiredObjectDeleteMarker",
        "AbortIncompleteMultipartUpload",
        "NoncurrentVersionExpirationInDays",
        "Transitions",
    }
    _warn_unemulated(f"{logical_id}.LifecycleConfiguration", rule, handled)
    return converted


# -- SNS

_TOPIC_ATTRIBUTES = (
    "DisplayName",
    "KmsMasterKeyId",
    "FifoTopic",
    "ContentBasedDeduplication",
    "SignatureVersion",
)


def _create_topic(
    clients: _Clients, logical_id: str, properties: dict[str, Any], name: str, context: ResolveContext
) -> _Created:
    _warn_unemulated(logical_id, properties, {"TopicName", "Tags", *_TOPIC_ATTRIBUTES})
    fifo = _flag(properties.get("FifoTopic", False)) == "true"
    if "TopicName" in properties:
        topic_name = str(properties["TopicName"])
    elif fifo:  # FIFO topic names must end in ".fifo"
        stack_name = context.pseudo["AWS::StackName"]
        topic_name = physical_name(stack_name, logical_id, "AWS::SNS::Topic", reserve=5) + ".fifo"
    else:
        topic_name = name
    attributes = {key: _flag(properties[key]) for key in _TOPIC_ATTRIBUTES if key in properties}
    request: dict[str, Any] = {"Name": topic_name, "Attributes": attributes}
    if properties.get("Tags"):
        request["Tags"] = properties["Tags"]
    # CreateTopic is idempotent for the same name and attributes.
    arn = str(clients("sns").create_topic(**request)["TopicArn"])
    return arn, {"TopicArn": arn, "TopicName": topic_name}


_SUBSCRIPTION_ATTRIBUTES = (
    "RawMessageDelivery",
    "FilterPolicy",
    "FilterPolicyScope",
    "RedrivePolicy",
    "DeliveryPolicy",
)


def _create_subscription(
    clients: _Clients, logical_id: str, properties: dict[str, Any], name: str, context: ResolveContext
) -> _Created:
    sns = clients("sns")
    _warn_unemulated(logical_id, properties, {"TopicArn", "Protocol", "Endpoint", "Region", *_SUBSCRIPTION_ATTRIBUTES})
    topic_arn, protocol, endpoint = (str(properties[key]) for key in ("TopicArn", "Protocol", "Endpoint"))
    attributes = {
        key: _flag(value) if key in ("RawMessageDelivery", "FilterPolicyScope") else _json_attribute(value)
        for key, value in ((key, properties[key]) for key in _SUBSCRIPTION_ATTRIBUTES if key in properties)
    }
    existing = [
        subscription["SubscriptionArn"]
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn)
        for subscription in page["Subscriptions"]
        if subscription["Protocol"] == protocol and subscription["Endpoint"] == endpoint
    ]
    if existing:
        arn = str(existing[0])
        for key, value in attributes.items():
            sns.set_subscription_attributes(SubscriptionArn=arn, AttributeName=key, AttributeValue=value)
    else:
        response = sns.subscribe(
            TopicArn=topic_arn,
            Protocol=protocol,
            Endpoint=endpoint,
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )
        arn = str(response["SubscriptionArn"])
    return arn, {}


# -- SQS

_QUEUE_ATTRIBUTES = (
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "SqsManagedSseEnabled",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
)


def _create_queue(
    clients: _Clients, logical_id: str, properties: dict[str, Any], name: str, context: ResolveContext
) -> _Created:
    sqs = clients("sqs")
    _warn_unemulated(logical_id, properties, {"QueueName", "Tags", *_QUEUE_ATTRIBUTES})
    fifo = _flag(properties.get("FifoQueue", False)) == "true"
    if "QueueName" in properties:
        queue_name = str(properties["QueueName"])
    elif fifo:  # FIFO queue names must end in ".fifo"
        stack_name = context.pseudo["AWS::StackName"]
        queue_name = physical_name(stack_name, logical_id, "AWS::SQS::Queue", reserve=5) + ".fifo"
    else:
        queue_name = name
    attributes = {
        key: _json_attribute(properties[key]) if key.startswith("Redrive") else _flag(properties[key])
        for key in _QUEUE_ATTRIBUTES
        if key in properties
    }
    request: dict[str, Any] = {"QueueName": queue_name, "Attributes": attributes}
    if properties.get("Tags"):
        request["tags"] = {tag["Key"]: tag["Value"] for tag in properties["Tags"]}
    try:
        url = str(sqs.create_queue(**request)["QueueUrl"])
    except ClientError as error:
        # Same name, other attributes (the template changed since the last run): update in place.
        if _error_code(error) not in ("QueueAlreadyExists", "QueueNameExists"):
            raise
        url = str(sqs.get_queue_url(QueueName=queue_name)["QueueUrl"])
        updatable = {key: value for key, value in attributes.items() if key != "FifoQueue"}
        if updatable:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=updatable)
    arn = str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])
    return url, {"Arn": arn, "QueueName": queue_name, "QueueUrl": url}


def _create_queue_policy(
    clients: _Clients, logical_id: str, properties: dict[str, Any], name: str, context: ResolveContext
) -> _Created:
    policy = _json_attribute(properties["PolicyDocument"])
    for url in properties["Queues"]:
        clients("sqs").set_queue_attributes(QueueUrl=str(url), Attributes={"Policy": policy})
    return name, {}


# AWS::S3::BucketPolicy is left out on purpose: moto evaluates bucket policies, and the results bucket's
# deny-non-TLS statement would refuse every request to the plain-HTTP local endpoint.
_CREATORS: dict[str, _Creator] = {
    "AWS::DynamoDB::Table": _create_table,
    "AWS::S3::Bucket": _create_bucket,
    "AWS::SNS::Topic": _create_topic,
    "AWS::SNS::Subscription": _create_subscription,
    "AWS::SQS::Queue": _create_queue,
    "AWS::SQS::QueuePolicy": _create_queue_policy,
}
