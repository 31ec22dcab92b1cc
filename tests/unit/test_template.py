"""template.yaml is the single source of truth: it lints clean, and says what the architecture promises.

The SAM template is translated offline with samtranslator, so these checks see the CloudFormation that would
deploy (generated roles, the HTTP API's routes), not only what the author typed.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from vidrelay_core.config import Settings

from vidrelay.local.stack import _containers
from vidrelay.local.template import (
    NO_VALUE,
    AsyncInvokeSpec,
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
    # Its on-failure destination's SendMessage is the statement SAM adds for EventInvokeConfig.
    "ThumbnailerFunction": {"JobsTable", "ResultsBucket", "ThumbnailerDeadLetterQueue"},
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

# Every action each function may take, on what (resolved: a resource's logical id stands for its ARN or URL).
# Read from the code each function runs (functions/<name>/app.py -> wiring.Components); a test fails when a
# grant is widened (another action, index, prefix or bucket) as well as when one goes missing.
PARAMETER_ARN = "arn:aws:ssm:us-east-1:123456789012:parameter/vidrelay/upstream/{}/api-key"
UPSTREAM_KEY_ARNS = [PARAMETER_ARN.format(family) for family in ("videos", "generations", "chat")]
UPSTREAM_GRANTS = {
    *(("ssm:GetParameter", arn) for arn in UPSTREAM_KEY_ARNS),
    ("secretsmanager:GetSecretValue", "ACCOUNTS_SECRET"),
    ("kms:Decrypt", "arn:aws:kms:us-east-1:123456789012:key/*"),
}
JOB_WRITES = {
    ("dynamodb:GetItem", "JobsTable"),
    ("dynamodb:PutItem", "JobsTable"),
    ("dynamodb:UpdateItem", "JobsTable"),
}
# Every function that publishes events reads which event types the tenant's endpoints want (subscriptions.py),
# restricted to those attributes.
ENDPOINT_INTERESTS = ("dynamodb:Query", "JobsTable")
ENDPOINT_INTEREST_ATTRIBUTES = ["pk", "sk", "event_types", "disabled_at"]
EXPECTED_GRANTS: dict[str, set[tuple[str, str]]] = {
    "ApiFunction": {
        *JOB_WRITES,
        ("dynamodb:DeleteItem", "JobsTable"),  # a webhook endpoint
        ("dynamodb:Query", "JobsTable"),  # usage, endpoints, deliveries
        ("dynamodb:BatchGetItem", "JobsTable"),  # the jobs of a listing (the index holds keys only)
        ("dynamodb:TransactWriteItems", "JobsTable"),  # a new job with its idempotency record and counters
        ("dynamodb:Query", "JobsTable/index/by_tenant"),  # GET /v1/videos; not the poller's inflight index
        ("sqs:SendMessage", "WebhookQueue"),
        ("sqs:SendMessage", "StreamQueue"),
        ("s3:GetObject", "ResultsBucket/videos/*"),  # presigned content URLs
        ("s3:GetObject", "ResultsBucket/uploads/*"),  # s3:// references
        ("s3:GetObject", "IntakeBucket/inbox/*"),
        ("s3:PutObject", "ResultsBucket/inputs/*"),
        ("s3:PutObject", "ResultsBucket/uploads/*"),  # presigned uploads
        ("s3:DeleteObject", "ResultsBucket/videos/*"),  # DELETE /v1/videos/{id}
        ("s3:DeleteObject", "ResultsBucket/inputs/*"),
        ("sns:Publish", "VideoEventsTopic"),
        *UPSTREAM_GRANTS,
    },
    "PollerFunction": {
        *JOB_WRITES,
        ("dynamodb:Query", "JobsTable/index/inflight"),
        ("dynamodb:BatchGetItem", "JobsTable"),  # the due jobs (the index holds keys only)
        ENDPOINT_INTERESTS,
        ("sns:Publish", "VideoEventsTopic"),
        ("sqs:SendMessage", "DownloadQueue"),
        ("sqs:SendMessage", "StreamQueue"),
        ("s3:GetObject", "ResultsBucket/inputs/*"),
        ("s3:ListBucket", "ResultsBucket"),
        *UPSTREAM_GRANTS,
    },
    "DownloaderFunction": {
        *JOB_WRITES,
        ("s3:PutObject", "ResultsBucket/videos/*"),
        ("s3:AbortMultipartUpload", "ResultsBucket/videos/*"),
        ("s3:DeleteObject", "ResultsBucket/videos/*"),  # a video deleted or canceled while it was moving
        ENDPOINT_INTERESTS,
        ("sns:Publish", "VideoEventsTopic"),
        *UPSTREAM_GRANTS,
    },
    "StreamerFunction": {
        *JOB_WRITES,
        ENDPOINT_INTERESTS,
        ("sns:Publish", "VideoEventsTopic"),
        ("sqs:SendMessage", "DownloadQueue"),
        ("s3:GetObject", "ResultsBucket/inputs/*"),
        ("s3:ListBucket", "ResultsBucket"),
        *UPSTREAM_GRANTS,
    },
    "NotifierFunction": {
        *JOB_WRITES,
        ("dynamodb:Query", "JobsTable"),
        ("sqs:ChangeMessageVisibility", "WebhookQueue"),
        ("sqs:SendMessage", "WebhookQueue"),
        ("sqs:SendMessage", "WebhookDeadLetterQueue"),
    },
    "IntakeFunction": {
        *JOB_WRITES,
        ("dynamodb:TransactWriteItems", "JobsTable"),
        ("s3:GetObject", "IntakeBucket/inbox/*"),
        ("s3:GetObject", "IntakeBucket/outbox/*"),
        ("s3:PutObject", "IntakeBucket/outbox/*"),
        ("s3:ListBucket", "IntakeBucket"),
        ("s3:GetObject", "ResultsBucket/videos/*"),  # the server-side copy's source
        ("s3:GetObject", "ResultsBucket/uploads/*"),
        ("s3:PutObject", "ResultsBucket/inputs/*"),
        ("s3:DeleteObject", "ResultsBucket/inputs/*"),
        ("sqs:ChangeMessageVisibility", "IntakeQueue"),
        ("sqs:SendMessage", "IntakeQueue"),
        ("sqs:SendMessage", "StreamQueue"),
        ENDPOINT_INTERESTS,
        ("sns:Publish", "VideoEventsTopic"),
        *UPSTREAM_GRANTS,
    },
    "ThumbnailerFunction": {
        ("dynamodb:GetItem", "JobsTable"),
        ("dynamodb:UpdateItem", "JobsTable"),  # the previews, recorded once
        ("s3:GetObject", "ResultsBucket/videos/*.mp4"),
        ("s3:PutObject", "ResultsBucket/videos/*.thumbnail.webp"),
        ("s3:PutObject", "ResultsBucket/videos/*.spritesheet.jpg"),
        ("s3:DeleteObject", "ResultsBucket/videos/*.thumbnail.webp"),
        ("s3:DeleteObject", "ResultsBucket/videos/*.spritesheet.jpg"),
        ("sqs:SendMessage", "ThumbnailerDeadLetterQueue"),  # Lambda's on-failure destination
    },
}
# Every s3:ListBucket is scoped to the prefixes the function lists.
EXPECTED_LISTING_PREFIXES = {
    ("PollerFunction", "ResultsBucket"): ["inputs/*"],
    ("StreamerFunction", "ResultsBucket"): ["inputs/*"],
    ("IntakeFunction", "IntakeBucket"): ["inbox/*", "outbox/*"],
}
FUNCTION_NAMES = ("Api", "Poller", "Downloader", "Streamer", "Notifier", "Intake", "Thumbnailer")
# What checkov reports and template.yaml skips inline, each with its reason (a new kind of finding must be
# fixed, or skipped there with a reason and added here).
EXPECTED_CHECKOV_SKIPS = {
    "CKV_AWS_116",  # function dead-letter queues: no function is invoked asynchronously with work to keep
    "CKV_AWS_117",  # functions in a VPC: nothing private to reach, a NAT gateway for the upstreams
    "CKV_AWS_173",  # environment encryption with a customer key: no secret in the environment
    "CKV_AWS_158",  # log groups with a customer key: nothing secret is logged
    "CKV_AWS_27",  # queues: SSE-SQS, which the check does not recognise
    "CKV_AWS_26",  # the alarm topic: CloudWatch cannot publish to an aws/sns-encrypted topic
    "CKV_AWS_119",  # the table: the AWS-managed DynamoDB key
    "CKV_AWS_18",  # bucket access logs: CloudTrail data events
    "CKV_AWS_21",  # bucket versioning: a delete must delete; the intake's overwrites are its protocol
}


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
    """The one exception: kms:Decrypt of the AWS-managed aws/ssm key, whose id is unknown at deploy time, only
    through SSM and only for the named parameters."""
    condition = statement.get("Condition", {}).get("StringEquals", {})
    return _as_list(statement["Action"]) == ["kms:Decrypt"] and set(condition) == {
        "kms:ViaService",
        "kms:EncryptionContext:PARAMETER_ARN",
    }


def _named_context() -> Any:
    """Parameters at their defaults (the accounts secret given), every resource's Ref and Arn its logical id."""
    template = Template.load(TEMPLATE)
    context = template.context(parameter_overrides={"UpstreamAccountsSecretArn": "ACCOUNTS_SECRET"})
    for logical_id in template.resources:
        context.refs[logical_id] = logical_id
        context.attrs[logical_id] = {"Arn": logical_id}
    return context


def _grants(role: dict[str, Any]) -> set[tuple[str, str]]:
    context = _named_context()
    return {
        (action, str(resource))
        for statement in _statements(role)
        for action in _as_list(statement["Action"])
        for resource in _as_list(resolve(statement["Resource"], context))
    }


def _checkov() -> str | None:
    for candidate in (ROOT / ".venv/checkov/bin/checkov", Path(sys.executable).parent / "checkov"):
        if candidate.exists():
            return str(candidate)
    return shutil.which("checkov")


# ------------------------------------------------------------------------------------------- linters


def test_cfn_lint_reports_nothing() -> None:
    result = subprocess.run(
        [_executable("cfn-lint"), str(TEMPLATE)], cwd=ROOT, env=_tool_env(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_finds_nothing_that_is_not_skipped_with_a_reason() -> None:
    checkov = _checkov()
    if checkov is None:
        pytest.skip("checkov is not installed (make venv builds it in .venv/checkov)")
    result = subprocess.run(
        [checkov, "--file", str(TEMPLATE), "--framework", "cloudformation", "--skip-download", "--output", "json"],
        cwd=ROOT,
        env={**_tool_env(), "LOG_LEVEL": "ERROR"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    report = json.loads(result.stdout)
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    skipped = report["results"]["skipped_checks"]

    assert failed == [], failed
    assert report["summary"]["parsing_errors"] == 0
    assert {c["check_id"] for c in skipped} == EXPECTED_CHECKOV_SKIPS
    for check in skipped:
        reason = (check.get("check_result") or {}).get("suppress_comment") or ""
        assert len(reason) > 40, f"{check['check_id']} on {check['resource']} is skipped without a reason"


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


@pytest.mark.parametrize("function", sorted(EXPECTED_GRANTS))
def test_each_function_is_granted_exactly_what_its_code_uses(cfn: dict[str, Any], function: str) -> None:
    role = _of_type(cfn, "AWS::IAM::Role")[f"{function}Role"]

    assert _grants(role) == EXPECTED_GRANTS[function]


def test_publishers_query_the_table_only_for_the_endpoints_event_types(cfn: dict[str, Any]) -> None:
    for function in ("Poller", "Downloader", "Streamer", "Intake"):
        role = _of_type(cfn, "AWS::IAM::Role")[f"{function}FunctionRole"]
        (statement,) = [s for s in _statements(role) if s.get("Sid") == "EndpointInterests"]
        assert statement["Action"] == "dynamodb:Query", function
        assert statement["Condition"] == {
            "ForAllValues:StringEquals": {"dynamodb:Attributes": ENDPOINT_INTEREST_ATTRIBUTES},
            "StringEquals": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
        }, function
        # No other statement of theirs allows a Query on the table itself.
        others = [s for s in _statements(role) if s is not statement and "dynamodb:Query" in _as_list(s["Action"])]
        assert all("index/" in json.dumps(s["Resource"]) for s in others), function


def test_the_webhook_queue_takes_only_events_a_webhook_target_wants(raw: dict[str, Any]) -> None:
    properties = raw["Resources"]["WebhookQueueSubscription"]["Properties"]

    assert properties["FilterPolicy"] == {"webhooks": ["yes"]}


def test_every_bucket_listing_is_scoped_to_the_prefixes_listed(cfn: dict[str, Any]) -> None:
    context = _named_context()
    found = {}
    for logical_id, role in _of_type(cfn, "AWS::IAM::Role").items():
        for statement in _statements(role):
            if "s3:ListBucket" in _as_list(statement["Action"]):
                assert list(statement["Condition"]) == ["StringLike"], logical_id
                (bucket,) = _as_list(resolve(statement["Resource"], context))
                prefixes = _as_list(statement["Condition"]["StringLike"]["s3:prefix"])
                found[logical_id.removesuffix("Role"), bucket] = prefixes

    assert found == EXPECTED_LISTING_PREFIXES


def test_upstream_keys_are_decrypted_only_through_ssm_and_only_the_named_parameters(cfn: dict[str, Any]) -> None:
    context = _named_context()
    decrypting = set()
    for logical_id, role in _of_type(cfn, "AWS::IAM::Role").items():
        for statement in _statements(role):
            if any(action.startswith("kms:") for action in _as_list(statement["Action"])):
                assert statement["Action"] == "kms:Decrypt", logical_id
                assert resolve(statement["Condition"], context) == {
                    "StringEquals": {
                        "kms:ViaService": "ssm.us-east-1.amazonaws.com",
                        "kms:EncryptionContext:PARAMETER_ARN": UPSTREAM_KEY_ARNS,
                    }
                }, logical_id
                decrypting.add(logical_id.removesuffix("Role"))

    assert decrypting == {function for function, grants in EXPECTED_GRANTS.items() if grants >= UPSTREAM_GRANTS}


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


def test_the_thumbnailer_is_subscribed_to_completed_events_directly_with_async_retries(cfn: dict[str, Any]) -> None:
    subscriptions = {
        lid: r["Properties"]
        for lid, r in _of_type(cfn, "AWS::SNS::Subscription").items()
        if r["Properties"]["Protocol"] == "lambda"
    }
    (invoke_config,) = _of_type(cfn, "AWS::Lambda::EventInvokeConfig").values()
    mappings = _of_type(cfn, "AWS::Lambda::EventSourceMapping").values()

    # Straight from the topic: no queue, so nothing polls (and bills) while no video completes.
    assert list(subscriptions.values()) == [
        {
            "Endpoint": {"Fn::GetAtt": ["ThumbnailerFunction", "Arn"]},
            "Protocol": "lambda",
            "TopicArn": {"Ref": "VideoEventsTopic"},
            "FilterPolicy": {"type": ["video.completed"]},
        }
    ]
    assert not [m for m in mappings if m["Properties"]["FunctionName"] == {"Ref": "ThumbnailerFunction"}]
    assert invoke_config["Properties"]["FunctionName"] == {"Ref": "ThumbnailerFunction"}
    assert invoke_config["Properties"]["MaximumRetryAttempts"] == 2
    assert invoke_config["Properties"]["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["ThumbnailerDeadLetterQueue", "Arn"]}}
    }


def test_the_thumbnailer_reads_stored_mp4s_and_writes_only_their_previews(cfn: dict[str, Any]) -> None:
    role = _of_type(cfn, "AWS::IAM::Role")["ThumbnailerFunctionRole"]
    grants = {
        (action, json.dumps(resource))
        for statement in _statements(role)
        for action in _as_list(statement["Action"])
        for resource in _as_list(statement["Resource"])
    }
    s3 = {(action, resource) for action, resource in grants if action.startswith("s3:")}

    assert {(a, r) for a, r in s3 if a == "s3:GetObject"} == {
        ("s3:GetObject", '{"Fn::Sub": "${ResultsBucket.Arn}/videos/*.mp4"}')
    }
    writes = {r for a, r in s3 if a in ("s3:PutObject", "s3:DeleteObject")}
    assert writes == {
        '{"Fn::Sub": "${ResultsBucket.Arn}/videos/*.thumbnail.webp"}',
        '{"Fn::Sub": "${ResultsBucket.Arn}/videos/*.spritesheet.jpg"}',
    }
    assert {a for a, _ in grants if a.startswith("dynamodb:")} == {"dynamodb:GetItem", "dynamodb:UpdateItem"}


def test_only_the_thumbnailer_carries_the_decoder_layer_pinned_as_in_pyproject(raw: dict[str, Any]) -> None:
    functions = {lid: r for lid, r in raw["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    with_media = {lid for lid, r in functions.items() if {"Ref": "MediaLayer"} in r["Properties"].get("Layers", [])}
    media_pins = {
        line.strip() for line in (ROOT / "layers/media/requirements.txt").read_text().splitlines() if "==" in line
    }

    assert with_media == {"ThumbnailerFunction"}
    assert raw["Resources"]["MediaLayer"]["Properties"]["ContentUri"] == "layers/media/"
    assert media_pins and all(f'"{pin}"' in (ROOT / "pyproject.toml").read_text() for pin in media_pins)


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
        ("StreamDeadLetterAlarm", "StreamDeadLetterQueue"),
        ("IntakeDeadLetterAlarm", "IntakeDeadLetterQueue"),
        ("ThumbnailerDeadLetterAlarm", "ThumbnailerDeadLetterQueue"),
        ("ApiErrorsAlarm", "ApiFunction"),
        ("PollerErrorsAlarm", "PollerFunction"),
        ("StreamerErrorsAlarm", "StreamerFunction"),
        ("NotifierErrorsAlarm", "NotifierFunction"),
        ("IntakeErrorsAlarm", "IntakeFunction"),
    ],
)
def test_alarms_watch_dead_letters_and_function_errors(raw: dict[str, Any], alarm: str, watched: str) -> None:
    properties = raw["Resources"][alarm]["Properties"]

    assert raw["Resources"][alarm]["Type"] == "AWS::CloudWatch::Alarm"
    assert references(properties["Dimensions"]) == {watched}
    assert properties["ComparisonOperator"] == "GreaterThanThreshold"
    assert properties["Threshold"] == 0
    assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def _lambda_error_alarms(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        next(iter(references(alarm["Properties"]["Dimensions"]))): alarm["Properties"]
        for alarm in raw["Resources"].values()
        if alarm["Type"] == "AWS::CloudWatch::Alarm"
        and alarm["Properties"].get("Namespace") == "AWS/Lambda"
        and alarm["Properties"]["MetricName"] == "Errors"
    }


def test_every_function_has_an_error_alarm(raw: dict[str, Any]) -> None:
    alarms = _lambda_error_alarms(raw)

    assert set(alarms) == set(EXPECTED_GRANTS)
    for function, properties in alarms.items():
        assert properties["Dimensions"][0]["Name"] == "FunctionName", function
        assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}], function
        assert properties["TreatMissingData"] == "notBreaching", function


def test_the_downloader_alarms_on_failures_that_last_not_on_one_retried_download(raw: dict[str, Any]) -> None:
    # A retryable download failure raises on purpose (the message comes back): one is routine.
    properties = _lambda_error_alarms(raw)["DownloaderFunction"]

    assert properties["Threshold"] > 0
    assert properties["EvaluationPeriods"] == properties["DatapointsToAlarm"] >= 3


def test_the_stuck_job_alarm_fires_only_past_the_longest_a_job_may_legitimately_take(raw: dict[str, Any]) -> None:
    properties = raw["Resources"]["StuckJobsAlarm"]["Properties"]
    settings = Settings(jobs_table="t", results_bucket="b", events_topic_arn="arn:topic")
    # Past the maximum age a job is failed at its next check, but a downloading one may use every download lease
    # and wait out the longest backoff between them.
    attempts = settings.max_download_attempts
    longest_s = settings.max_job_age_s + attempts * settings.download_lease_s + (attempts - 1) * settings.retry_cap_s

    assert (properties["Namespace"], properties["MetricName"]) == ("vidrelay", "OldestInFlightJobAgeSeconds")
    assert properties["Statistic"] == "Maximum"
    assert longest_s < properties["Threshold"] <= longest_s + 3600
    assert properties["EvaluationPeriods"] == properties["DatapointsToAlarm"] >= 2
    assert properties["ComparisonOperator"] == "GreaterThanThreshold"
    assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_the_alarm_email_subscription_exists_only_when_an_address_is_given(raw: dict[str, Any]) -> None:
    template = Template.load(TEMPLATE)
    condition = raw["Resources"]["AlarmEmailSubscription"]["Condition"]

    assert template.context().condition(condition) is False
    assert template.context(parameter_overrides={"AlarmEmail": "ops@example.com"}).condition(condition) is True


def test_queues_and_the_events_topic_are_encrypted_at_rest(raw: dict[str, Any]) -> None:
    queues = _of_type(raw, "AWS::SQS::Queue")

    assert len(queues) == 10
    for logical_id, queue in queues.items():
        # SSE-SQS, not KMS: SNS and S3 could not deliver to a queue under the AWS-managed aws/sqs key.
        assert queue["Properties"]["SqsManagedSseEnabled"] is True, logical_id
        assert "KmsMasterKeyId" not in queue["Properties"], logical_id
    assert raw["Resources"]["VideoEventsTopic"]["Properties"]["KmsMasterKeyId"] == "alias/aws/sns"


def test_the_http_api_is_throttled_by_parameters(raw: dict[str, Any], cfn: dict[str, Any]) -> None:
    settings = raw["Resources"]["HttpApi"]["Properties"]["DefaultRouteSettings"]
    (stage,) = _of_type(cfn, "AWS::ApiGatewayV2::Stage").values()
    parameters = raw["Parameters"]

    assert settings == {
        "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
    }
    assert stage["Properties"]["DefaultRouteSettings"] == settings  # what SAM deploys
    assert parameters["ApiThrottlingRateLimit"]["Default"] == 50
    assert parameters["ApiThrottlingBurstLimit"]["Default"] == 100
    assert parameters["ApiThrottlingRateLimit"]["MinValue"] == parameters["ApiThrottlingBurstLimit"]["MinValue"] == 1


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_each_function_reserves_concurrency_only_when_asked(
    raw: dict[str, Any], cfn: dict[str, Any], name: str
) -> None:
    parameter = raw["Parameters"][f"{name}ReservedConcurrency"]
    function = _of_type(cfn, "AWS::Lambda::Function")[f"{name}Function"]
    template = Template.load(TEMPLATE)
    reserved = function["Properties"]["ReservedConcurrentExecutions"]

    # 0 means no reservation (a reservation fails on an account whose limit is 10), not "throttle everything".
    assert (parameter["Default"], parameter["MinValue"]) == (0, 0)
    assert "10" in parameter["Description"] and "0 = no reservation" in parameter["Description"]
    assert resolve(reserved, template.context()) is NO_VALUE
    assert resolve(reserved, template.context(parameter_overrides={f"{name}ReservedConcurrency": "5"})) == 5


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


def test_sns_events_carry_their_topic_filter_policy_and_the_async_invoke_config() -> None:
    thumbnailer = Template.load(TEMPLATE).function("ThumbnailerFunction")

    (event,) = thumbnailer.events
    assert (event.kind, event.topic, event.filter_policy, event.filter_policy_scope) == (
        "sns",
        "VideoEventsTopic",
        {"type": ["video.completed"]},
        "MessageAttributes",
    )
    assert thumbnailer.async_invoke == AsyncInvokeSpec(
        max_retries=2, max_event_age_s=21600, on_failure="ThumbnailerDeadLetterQueue"
    )


def test_sqs_events_name_their_queue_by_logical_id() -> None:
    downloader = Template.load(TEMPLATE).function("DownloaderFunction")

    (event,) = downloader.events

    assert (event.kind, event.queue, event.batch_size, event.report_batch_item_failures) == (
        "sqs",
        "DownloadQueue",
        1,
        True,
    )


def test_the_local_stack_runs_as_many_notifiers_as_lambda_would() -> None:
    notifier = Template.load(TEMPLATE).function("NotifierFunction")

    (event,) = notifier.events

    assert (event.batch_size, event.max_concurrency) == (10, 20)
    # Containers for every invocation its event source may run at once; the default for the others.
    assert _containers(notifier, 4) == 20
    assert _containers(Template.load(TEMPLATE).function("DownloaderFunction"), 4) == 4


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
