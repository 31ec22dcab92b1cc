"""template.yaml is the single source of truth: it lints clean, and says what the architecture promises.

The SAM template is translated offline with samtranslator, so these checks see the CloudFormation that would
deploy (generated roles, the HTTP API's routes), not only what the author typed.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from vidrelay.local.template import (
    NO_VALUE,
    Template,
    UnresolvableError,
    load_yaml,
    parse_rate,
    references,
    resolve,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

EXPECTED_ROUTES = {
    ("POST", "/v1/videos"),
    ("GET", "/v1/videos"),
    ("GET", "/v1/videos/{video_id}"),
    ("DELETE", "/v1/videos/{video_id}"),
    ("GET", "/v1/videos/{video_id}/content"),
    ("GET", "/v1/videos/{video_id}/content_url"),
    ("GET", "/v1/models"),
    ("GET", "/v1/models/{model_id}"),
    ("POST", "/v1/videos/{video_id}/remix"),
    ("GET", "/docs/{asset}"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/console"),
    ("GET", "/console/{asset}"),
    ("GET", "/v1/videos/{video_id}/deliveries"),
    ("GET", "/v1/usage"),
    ("POST", "/v1/uploads"),
    ("POST", "/v1/videos/{video_id}/deliveries/{delivery_id}/redeliver"),
    ("POST", "/v1/webhook_endpoints"),
    ("GET", "/v1/webhook_endpoints"),
    ("GET", "/v1/webhook_endpoints/{endpoint_id}"),
    ("DELETE", "/v1/webhook_endpoints/{endpoint_id}"),
    ("POST", "/v1/webhook_endpoints/{endpoint_id}/rotate_secret"),
    ("POST", "/v1/webhook_endpoints/{endpoint_id}/test"),
}

# What each function's own statements may name: its tables, buckets, topics, queues and secrets, nothing else.
# Every function that talks to an upstream reads the keys of the three families (and the optional failover
# accounts secret), and nothing else secret.
UPSTREAM_KEYS = {
    "UpstreamVideosApiKeyParameter",
    "UpstreamGenerationsApiKeyParameter",
    "UpstreamChatApiKeyParameter",
    "UpstreamAccountsSecretArn",
}
EXPECTED_POLICY_TARGETS = {
    "ApiFunction": {
        "JobsTable",
        "ResultsBucket",
        "IntakeBucket",
        "VideoEventsTopic",
        "WebhookQueue",
        "StreamQueue",
        *UPSTREAM_KEYS,
    },
    "PollerFunction": {
        "JobsTable",
        "ResultsBucket",
        "VideoEventsTopic",
        "DownloadQueue",
        "StreamQueue",
        *UPSTREAM_KEYS,
    },
    "DownloaderFunction": {"JobsTable", "ResultsBucket", "VideoEventsTopic", *UPSTREAM_KEYS},
    "StreamerFunction": {"JobsTable", "ResultsBucket", "VideoEventsTopic", "DownloadQueue", *UPSTREAM_KEYS},
    "NotifierFunction": {"JobsTable", "WebhookQueue", "WebhookDeadLetterQueue"},
    "IntakeFunction": {
        "JobsTable",
        "IntakeBucket",
        "IntakeQueue",
        "ResultsBucket",
        "VideoEventsTopic",
        "StreamQueue",
        *UPSTREAM_KEYS,
    },
}

# Managed policies SAM attaches by itself (logs, X-Ray, and polling the SQS event source); nothing else.
SAM_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
}

PSEUDO_PARAMETERS = {"AWS::Partition", "AWS::Region", "AWS::AccountId", "AWS::URLSuffix", "AWS::StackName"}


# ------------------------------------------------------------------------------------------- helpers


def _executable(name: str) -> str:
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (pip install -e '.[dev]')")
    return found


def _tool_env() -> dict[str, str]:
    # `sam validate` needs a region even offline; telemetry would try the network.
    return {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}


@contextmanager
def _region(region: str) -> Iterator[None]:
    previous = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region
    try:
        yield
    finally:
        if previous is None:
            del os.environ["AWS_DEFAULT_REGION"]
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous


class _BundledPolicies:
    """samtranslator's managed-policy loader, without asking IAM (the map ships with samtranslator)."""

    def load(self) -> dict[str, str]:
        from samtranslator.internal.managed_policies import get_bundled_managed_policy_map

        return get_bundled_managed_policy_map("aws") or {}


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return load_yaml(TEMPLATE.read_text())


@pytest.fixture(scope="module")
def cfn(raw: dict[str, Any]) -> dict[str, Any]:
    from samtranslator.translator.transform import transform

    sam = copy.deepcopy(raw)
    for resource in sam["Resources"].values():
        properties = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            if key in properties:  # `sam package` would have uploaded these; the translator wants s3:// URIs
                properties[key] = "s3://vidrelay-artifacts/placeholder.zip"
    with _region("us-east-1"):
        return transform(sam, {}, _BundledPolicies())  # type: ignore[arg-type]


def _of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {lid: res for lid, res in template["Resources"].items() if res["Type"] == resource_type}


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement a role can have: both branches of a conditional (Fn::If) one are checked."""
    found: list[dict[str, Any]] = []
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            branches = statement["Fn::If"][1:] if "Fn::If" in statement else [statement]
            found.extend(b for b in branches if isinstance(b, dict) and "Effect" in b)
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _is_documented_wildcard(statement: dict[str, Any]) -> bool:
    """The one exception: kms:Decrypt of the AWS-managed aws/ssm key, whose id is unknown at deploy time."""
    condition = statement.get("Condition", {}).get("StringEquals", {})
    return _as_list(statement["Action"]) == ["kms:Decrypt"] and "kms:ViaService" in condition


# ------------------------------------------------------------------------------------------- linters


def test_cfn_lint_reports_nothing() -> None:
    result = subprocess.run(
        [_executable("cfn-lint"), str(TEMPLATE)], cwd=ROOT, env=_tool_env(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_passes() -> None:
    result = subprocess.run(
        [_executable("sam"), "validate", "--lint", "--template", str(TEMPLATE)],
        cwd=ROOT,
        env=_tool_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------------------- functions


def test_every_function_runs_python_313_on_arm64(cfn: dict[str, Any]) -> None:
    functions = _of_type(cfn, "AWS::Lambda::Function")

    assert set(functions) == set(EXPECTED_POLICY_TARGETS)
    for logical_id, function in functions.items():
        assert function["Properties"]["Runtime"] == "python3.13", logical_id
        assert function["Properties"]["Architectures"] == ["arm64"], logical_id
        assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}, logical_id


def test_the_http_api_serves_exactly_the_public_routes(cfn: dict[str, Any]) -> None:
    (api,) = _of_type(cfn, "AWS::ApiGatewayV2::Api").values()
    paths = api["Properties"]["Body"]["paths"]

    routes = {(method.upper(), path) for path, methods in paths.items() for method in methods}

    # Plus one catch-all, so what no route matches is answered by the function in the OpenAI error shape.
    assert routes == EXPECTED_ROUTES | {("X-AMAZON-APIGATEWAY-ANY-METHOD", "/$default")}


def test_the_local_stack_reads_the_same_routes_as_the_deployed_api() -> None:
    routes = Template.load(TEMPLATE).routes()

    assert {(method, path) for method, path, _ in routes} == EXPECTED_ROUTES | {("ANY", "$default")}
    assert {function for _, _, function in routes} == {"ApiFunction"}


def test_every_operation_of_the_contract_is_routed_to_the_api() -> None:
    from vidrelay_core.contract.operations import OPERATIONS

    assert {(op.method, op.path) for op in OPERATIONS} <= EXPECTED_ROUTES
    served_elsewhere = {
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/{asset}"),
        ("GET", "/console"),
        ("GET", "/console/{asset}"),
    }
    assert EXPECTED_ROUTES - {(op.method, op.path) for op in OPERATIONS} == served_elsewhere


def test_sqs_consumers_report_partial_batch_failures(cfn: dict[str, Any]) -> None:
    mappings = _of_type(cfn, "AWS::Lambda::EventSourceMapping")
    by_queue = {
        (m["Properties"]["FunctionName"]["Ref"], m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]): m["Properties"]
        for m in mappings.values()
    }

    assert set(by_queue) == {
        ("DownloaderFunction", "DownloadQueue"),
        ("NotifierFunction", "WebhookQueue"),
        ("StreamerFunction", "StreamQueue"),
        ("IntakeFunction", "IntakeQueue"),
        ("IntakeFunction", "IntakeResultsQueue"),
    }
    assert by_queue["DownloaderFunction", "DownloadQueue"]["BatchSize"] == 1
    notifier = by_queue["NotifierFunction", "WebhookQueue"]
    assert notifier["BatchSize"] == 10 and notifier["ScalingConfig"] == {"MaximumConcurrency": 20}
    assert by_queue["StreamerFunction", "StreamQueue"]["BatchSize"] == 1
    assert by_queue["IntakeFunction", "IntakeQueue"]["BatchSize"] == 5
    for properties in by_queue.values():
        assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_queues_outlast_their_consumers_timeouts(raw: dict[str, Any]) -> None:
    resources = raw["Resources"]
    # A message must not reappear while its consumer may still be working on it.
    for queue, function in (
        ("DownloadQueue", "DownloaderFunction"),
        ("WebhookQueue", "NotifierFunction"),
        ("StreamQueue", "StreamerFunction"),
        ("IntakeQueue", "IntakeFunction"),
        ("IntakeResultsQueue", "IntakeFunction"),
    ):
        timeout = resources[function]["Properties"].get("Timeout", raw["Globals"]["Function"]["Timeout"])
        assert resources[queue]["Properties"]["VisibilityTimeout"] > timeout


# ------------------------------------------------------------------------------------------- least privilege


def test_function_policies_name_no_wildcard_resources(cfn: dict[str, Any]) -> None:
    for logical_id, role in _of_type(cfn, "AWS::IAM::Role").items():
        for statement in _statements(role):
            for action in _as_list(statement["Action"]):
                assert "*" not in action, f"{logical_id}: wildcard action {action}"
            for resource in _as_list(statement["Resource"]):
                assert resource != "*", f"{logical_id}: Resource '*' in {statement.get('Sid')}"
                named = references(resource) - PSEUDO_PARAMETERS
                if not named:
                    assert _is_documented_wildcard(statement), f"{logical_id}: {statement}"


def test_each_function_policy_names_only_its_own_resources(cfn: dict[str, Any]) -> None:
    roles = _of_type(cfn, "AWS::IAM::Role")

    for function, expected in EXPECTED_POLICY_TARGETS.items():
        named = set().union(*(references(s["Resource"]) for s in _statements(roles[f"{function}Role"])))
        assert named - PSEUDO_PARAMETERS == expected, function


def test_roles_carry_only_the_managed_policies_sam_adds_itself(cfn: dict[str, Any]) -> None:
    # SAM attaches AWSLambdaSQSQueueExecutionRole (Resource "*") to SQS-triggered functions and offers no switch;
    # only a hand-written role would avoid it. It grants receive/delete on queues, nothing on data.
    for logical_id, role in _of_type(cfn, "AWS::IAM::Role").items():
        managed = set(role["Properties"].get("ManagedPolicyArns", []))
        assert managed <= SAM_MANAGED_POLICIES, logical_id


def test_the_ssm_parameter_arn_keeps_the_leading_slash_once(raw: dict[str, Any]) -> None:
    statements = raw["Resources"]["ApiFunction"]["Properties"]["Policies"][0]["Statement"]
    (ssm,) = [s for s in statements if s.get("Action") == "ssm:GetParameter"]
    context = Template.load(TEMPLATE).context(region="eu-west-1")

    arns = resolve(ssm["Resource"], context)

    assert arns == [
        f"arn:aws:ssm:eu-west-1:123456789012:parameter/vidrelay/upstream/{family}/api-key"
        for family in ("videos", "generations", "chat")
    ]


def test_results_bucket_is_private_encrypted_and_tls_only(raw: dict[str, Any]) -> None:
    resources = raw["Resources"]
    bucket = resources["ResultsBucket"]["Properties"]
    (deny,) = resources["ResultsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]

    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule == {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert resources["ResultsBucket"]["DeletionPolicy"] == "Retain"


# ------------------------------------------------------------------------------------------- S3 intake


def _intake_bucket_name(context: Any) -> str:
    bucket = load_yaml(TEMPLATE.read_text())["Resources"]["IntakeBucket"]
    return str(resolve(bucket["Properties"]["BucketName"], context))


def test_intake_bucket_is_private_encrypted_and_expires_what_it_holds(raw: dict[str, Any]) -> None:
    resources = raw["Resources"]
    bucket = resources["IntakeBucket"]["Properties"]
    statements = {s["Sid"]: s for s in resources["IntakeBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]}

    assert len(bucket["PublicAccessBlockConfiguration"]) == 4 and all(bucket["PublicAccessBlockConfiguration"].values())
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    expiring = {r.get("Prefix") for r in bucket["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in r}
    assert expiring == {"inbox/", "outbox/"}
    deny = statements["DenyInsecureTransport"]
    assert (deny["Effect"], deny["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})
    assert resources["IntakeBucket"]["DeletionPolicy"] == "Retain"


def test_intake_bucket_notifies_the_intake_queue_of_inbox_uploads_only(raw: dict[str, Any]) -> None:
    resources = raw["Resources"]
    (notification,) = resources["IntakeBucket"]["Properties"]["NotificationConfiguration"]["QueueConfigurations"]

    assert notification["Event"] == "s3:ObjectCreated:*"
    assert notification["Queue"] == {"Fn::GetAtt": ["IntakeQueue", "Arn"]}
    assert notification["Filter"] == {"S3Key": {"Rules": [{"Name": "prefix", "Value": "inbox/"}]}}


def test_the_intake_queue_policy_names_the_bucket_without_a_cycle(raw: dict[str, Any]) -> None:
    resources = raw["Resources"]
    (statement,) = resources["IntakeQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    context = Template.load(TEMPLATE).context(region="eu-west-1", stack_name="prod")

    # The policy names the bucket by the same !Sub name, never by Ref/GetAtt (which would close a cycle: the
    # bucket's notification refers to the queue), and exists before S3 validates the destination.
    assert "IntakeBucket" not in references(resources["IntakeQueuePolicy"])
    assert resources["IntakeBucket"]["DependsOn"] == "IntakeQueuePolicy"
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    source_arn = resolve(statement["Condition"]["ArnLike"]["aws:SourceArn"], context)
    assert source_arn == f"arn:aws:s3:::{_intake_bucket_name(context)}"
    assert resolve(statement["Condition"]["StringEquals"]["aws:SourceAccount"], context) == "123456789012"


def test_the_intake_bucket_name_is_valid_and_differs_per_stack() -> None:
    template = Template.load(TEMPLATE)
    names = {_intake_bucket_name(template.context(stack_name=stack)) for stack in ("vidrelay", "vidrelay-staging")}

    assert len(names) == 2
    for name in names:
        assert 3 <= len(name) <= 63 and name == name.lower() and name.startswith("vidrelay-intake-123456789012-")


def test_tenants_may_write_only_their_inbox_and_read_only_their_outbox(raw: dict[str, Any]) -> None:
    statements = {
        s["Sid"]: s for s in raw["Resources"]["IntakeBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    }
    context = Template.load(TEMPLATE).context()
    context.attrs["IntakeBucket"] = {"Arn": "arn:aws:s3:::intake"}
    tagged = {"Null": {"aws:PrincipalTag/vidrelay-tenant": "false"}}
    own_inbox = "arn:aws:s3:::intake/inbox/${aws:PrincipalTag/vidrelay-tenant}/*"
    own_outbox = "arn:aws:s3:::intake/outbox/${aws:PrincipalTag/vidrelay-tenant}/*"

    def resolved(sid: str, key: str) -> Any:
        return resolve(statements[sid][key], context)

    assert resolved("TenantWritesOwnInbox", "Resource") == own_inbox
    assert resolved("TenantReadsOwnOutbox", "Resource") == own_outbox
    assert resolved("TenantWritesOwnInbox", "Principal") == {"AWS": "arn:aws:iam::123456789012:root"}
    # The Deny statements hold whatever a tenant's own IAM policy says: outside its prefixes, nothing.
    assert statements["DenyWritesOutsideOwnInbox"]["Effect"] == "Deny"
    assert resolved("DenyWritesOutsideOwnInbox", "NotResource") == own_inbox
    assert resolved("DenyReadsOutsideOwnOutbox", "NotResource") == own_outbox
    assert set(statements["DenyTenantsEverythingElse"]["NotAction"]) == {
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:GetObject",
        "s3:ListBucket",
    }
    listing = statements["DenyListingOtherFolders"]["Condition"]["StringNotLike"]["s3:prefix"]
    assert listing == ["inbox/${aws:PrincipalTag/vidrelay-tenant}/*", "outbox/${aws:PrincipalTag/vidrelay-tenant}/*"]
    for sid, statement in statements.items():
        if sid != "DenyInsecureTransport":
            # Only tagged principals (tenants) are concerned: the intake function and admins are not tagged.
            assert tagged["Null"].items() <= statement["Condition"]["Null"].items(), sid


def test_intake_results_queue_gets_only_terminal_events_of_intake_jobs(raw: dict[str, Any]) -> None:
    resources = raw["Resources"]
    subscription = resources["IntakeResultsSubscription"]["Properties"]
    (statement,) = resources["IntakeResultsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]

    assert subscription["RawMessageDelivery"] is True
    assert subscription["Endpoint"] == {"Fn::GetAtt": ["IntakeResultsQueue", "Arn"]}
    assert subscription["FilterPolicy"] == {
        "origin": ["intake"],
        "type": ["video.completed", "video.failed", "video.canceled", "video.expired"],
    }
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": "VideoEventsTopic"}}}


def test_the_intake_function_writes_outbox_only_and_reads_inbox_only(cfn: dict[str, Any]) -> None:
    role = _of_type(cfn, "AWS::IAM::Role")["IntakeFunctionRole"]
    s3 = {
        (action, str(resource))
        for statement in _statements(role)
        for action in _as_list(statement["Action"])
        if action.startswith("s3:")
        for resource in _as_list(statement["Resource"])
    }
    writes = {resource for action, resource in s3 if action == "s3:PutObject"}

    assert all("/outbox/*" in r or "/inputs/*" in r for r in writes), writes
    assert not any(action == "s3:DeleteObject" and "IntakeBucket" in resource for action, resource in s3)


# ------------------------------------------------------------------------------------------- data and queues


def test_jobs_table_has_the_sparse_inflight_and_tenant_indexes(raw: dict[str, Any]) -> None:
    table = raw["Resources"]["JobsTable"]
    properties = table["Properties"]
    types = {a["AttributeName"]: a["AttributeType"] for a in properties["AttributeDefinitions"]}
    indexes = {
        index["IndexName"]: (
            [(key["AttributeName"], key["KeyType"]) for key in index["KeySchema"]],
            index["Projection"]["ProjectionType"],
        )
        for index in properties["GlobalSecondaryIndexes"]
    }

    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert indexes == {
        "inflight": ([("inflight_shard", "HASH"), ("next_check_at", "RANGE")], "KEYS_ONLY"),
        "by_tenant": ([("tenant_pk", "HASH"), ("created_key", "RANGE")], "KEYS_ONLY"),
    }
    assert types == {
        "pk": "S",
        "sk": "S",
        "inflight_shard": "S",
        "next_check_at": "N",
        "tenant_pk": "S",
        "created_key": "S",
    }
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at_ttl", "Enabled": True}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


@pytest.mark.parametrize(
    ("queue", "dead_letter_queue", "max_receives"),
    [
        ("DownloadQueue", "DownloadDeadLetterQueue", 5),
        ("WebhookQueue", "WebhookDeadLetterQueue", 100),
        ("IntakeQueue", "IntakeDeadLetterQueue", 50),
        ("IntakeResultsQueue", "IntakeDeadLetterQueue", 10),
    ],
)
def test_work_queues_redrive_to_their_dead_letter_queues(
    raw: dict[str, Any], queue: str, dead_letter_queue: str, max_receives: int
) -> None:
    resources = raw["Resources"]

    redrive = resources[queue]["Properties"]["RedrivePolicy"]

    assert redrive == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dead_letter_queue, "Arn"]},
        "maxReceiveCount": max_receives,
    }
    assert resources[dead_letter_queue]["Properties"]["MessageRetentionPeriod"] == 1209600


@pytest.mark.parametrize(
    ("alarm", "watched"),
    [
        ("DownloadDeadLetterAlarm", "DownloadDeadLetterQueue"),
        ("WebhookDeadLetterAlarm", "WebhookDeadLetterQueue"),
        ("IntakeDeadLetterAlarm", "IntakeDeadLetterQueue"),
        ("ApiErrorsAlarm", "ApiFunction"),
    ],
)
def test_alarms_watch_dead_letters_and_api_errors(raw: dict[str, Any], alarm: str, watched: str) -> None:
    properties = raw["Resources"][alarm]["Properties"]

    assert raw["Resources"][alarm]["Type"] == "AWS::CloudWatch::Alarm"
    assert references(properties["Dimensions"]) == {watched}
    assert properties["ComparisonOperator"] == "GreaterThanThreshold"
    assert properties["Threshold"] == 0
    assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_the_alarm_email_subscription_exists_only_when_an_address_is_given(raw: dict[str, Any]) -> None:
    template = Template.load(TEMPLATE)
    condition = raw["Resources"]["AlarmEmailSubscription"]["Condition"]

    assert template.context().condition(condition) is False
    assert template.context(parameter_overrides={"AlarmEmail": "ops@example.com"}).condition(condition) is True


def test_webhook_queue_receives_raw_events_from_the_topic_only(raw: dict[str, Any]) -> None:
    resources = raw["Resources"]
    subscription = resources["WebhookQueueSubscription"]["Properties"]
    (statement,) = resources["WebhookQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]

    assert subscription["Protocol"] == "sqs"
    assert subscription["RawMessageDelivery"] is True
    assert subscription["Endpoint"] == {"Fn::GetAtt": ["WebhookQueue", "Arn"]}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": "VideoEventsTopic"}}}


def test_outputs_give_the_api_base_url_and_resource_names(cfn: dict[str, Any]) -> None:
    outputs = cfn["Outputs"]

    assert set(outputs) >= {
        "ApiUrl",
        "JobsTableName",
        "ResultsBucketName",
        "VideoEventsTopicArn",
        "DownloadQueueUrl",
        "WebhookQueueUrl",
        "IntakeBucketName",
    }
    assert outputs["ApiUrl"]["Value"]["Fn::Sub"].endswith("/v1")


# ------------------------------------------------------------------------------------------- template model


def test_functions_merge_globals_with_their_own_settings() -> None:
    poller = Template.load(TEMPLATE).function("PollerFunction")

    assert (poller.code_uri, poller.handler, poller.timeout_s, poller.memory_mb) == (
        "functions/poller/",
        "app.lambda_handler",
        70,
        256,
    )
    assert poller.environment["VIDRELAY_POLLER_SWEEP_SECONDS"] == "50"
    assert poller.environment["VIDRELAY_JOBS_TABLE"] == {"Ref": "JobsTable"}
    assert [(e.name, e.kind, e.schedule) for e in poller.events] == [("Sweep", "schedule", "rate(1 minute)")]


def test_sqs_events_name_their_queue_by_logical_id() -> None:
    downloader = Template.load(TEMPLATE).function("DownloaderFunction")

    (event,) = downloader.events

    assert (event.kind, event.queue, event.batch_size, event.report_batch_item_failures) == (
        "sqs",
        "DownloadQueue",
        1,
        True,
    )


def test_short_tags_load_as_long_form_intrinsics() -> None:
    document = load_yaml(
        """
        AWSTemplateFormatVersion: 2010-09-09
        A: !Ref Thing
        B: !GetAtt Queue.Arn
        C: !GetAtt [Queue, QueueName]
        D: !Sub "${AWS::Region}-x"
        E: !Sub ["${A}-${B}", {A: !Ref X, B: y}]
        F: !If [Cond, !Join ["-", [a, b]], !Ref AWS::NoValue]
        G: !Not [!Equals [!Ref P, ""]]
        H: !Select [1, !Split [",", "a,b"]]
        I: !Base64 text
        J: !Condition Cond
        K: !GetAtt Db.Endpoint.Address
        """
    )

    assert document["AWSTemplateFormatVersion"] == "2010-09-09"  # a string, not a date
    assert document["A"] == {"Ref": "Thing"}
    assert document["B"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert document["C"] == {"Fn::GetAtt": ["Queue", "QueueName"]}
    assert document["D"] == {"Fn::Sub": "${AWS::Region}-x"}
    assert document["E"] == {"Fn::Sub": ["${A}-${B}", {"A": {"Ref": "X"}, "B": "y"}]}
    assert document["F"]["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    assert document["G"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "P"}, ""]}]}
    assert document["H"] == {"Fn::Select": [1, {"Fn::Split": [",", "a,b"]}]}
    assert document["I"] == {"Fn::Base64": "text"}
    assert document["J"] == {"Condition": "Cond"}
    assert document["K"] == {"Fn::GetAtt": ["Db", "Endpoint.Address"]}


def test_resolve_evaluates_intrinsics_against_the_context() -> None:
    context = Template.load(TEMPLATE).context(region="eu-west-1", stack_name="demo")
    context.refs["Queue"] = "https://queue.example/q"
    context.attrs["Queue"] = {"Arn": "arn:aws:sqs:eu-west-1:123456789012:q"}
    context.condition_definitions = {"Yes": {"Fn::Equals": ["a", "a"]}}

    value = {
        "url": {"Ref": "Queue"},
        "arn": {"Fn::GetAtt": ["Queue", "Arn"]},
        "sub": {"Fn::Sub": "${AWS::StackName}/${Queue.Arn}/${!Literal}/${RetentionDays}"},
        "join": {"Fn::Join": [",", [{"Ref": "AWS::Region"}, "b"]]},
        "pick": {"Fn::Select": [1, {"Fn::Split": ["/", "a/b/c"]}]},
        "gone": {"Fn::If": ["Yes", {"Ref": "AWS::NoValue"}, "kept"]},
        "list": ["x", {"Ref": "AWS::NoValue"}],
    }

    assert resolve(value, context) == {
        "url": "https://queue.example/q",
        "arn": "arn:aws:sqs:eu-west-1:123456789012:q",
        "sub": "demo/arn:aws:sqs:eu-west-1:123456789012:q/${Literal}/30",
        "join": "eu-west-1,b",
        "pick": "b",
        "list": ["x"],
    }
    assert resolve({"Ref": "AWS::NoValue"}, context) is NO_VALUE


def test_resolve_refuses_what_it_cannot_know() -> None:
    context = Template.load(TEMPLATE).context()

    with pytest.raises(UnresolvableError, match="NotCreated"):
        resolve({"Ref": "NotCreated"}, context)
    with pytest.raises(UnresolvableError, match="ImportValue"):
        resolve({"Fn::ImportValue": "other-stack-output"}, context)


def test_parameter_overrides_take_the_parameter_type() -> None:
    template = Template.load(TEMPLATE)

    assert template.parameter_values()["RetentionDays"] == 30
    assert template.parameter_values({"RetentionDays": "7"})["RetentionDays"] == 7
    with pytest.raises(KeyError, match="Nope"):
        template.parameter_values({"Nope": "1"})


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60.0),
        ("rate(5 minutes)", 300.0),
        ("rate(1 hour)", 3600.0),
        ("rate(2 days)", 172800.0),
    ],
)
def test_parse_rate_reads_eventbridge_rates(expression: str, seconds: float) -> None:
    assert parse_rate(expression) == seconds


def test_parse_rate_rejects_cron() -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate("cron(0 12 * * ? *)")
