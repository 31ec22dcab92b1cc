"""The OpenAPI document is generated from the contract: valid, complete, and usable by a client generator."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate
from vidrelay_core.contract import CreateVideoRequest, Video
from vidrelay_core.contract.openapi import document
from vidrelay_core.contract.operations import OPERATIONS
from vidrelay_core.jobs import EVENT_TYPES, Job


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return document()


def test_the_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    validate(doc)
    assert doc["openapi"] == "3.1.0"


def test_every_route_needs_the_bearer_key(doc: dict[str, Any]) -> None:
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            assert op["security"] == [{"bearerAuth": []}], (method, path)
            assert op["responses"]["401"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorResponse"
            }


def test_create_takes_json_and_multipart_with_files_as_binary(doc: dict[str, Any]) -> None:
    create = doc["paths"]["/v1/videos"]["post"]
    content = create["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data"}
    form = doc["components"]["schemas"]["CreateVideoForm"]["properties"]
    assert {"type": "string", "format": "binary"} in form["input_reference"]["anyOf"]
    assert form["files"]["anyOf"][0]["items"] == {"type": "string", "format": "binary"}
    assert content["multipart/form-data"]["encoding"]["metadata"] == {"style": "deepObject", "explode": True}
    json_body = doc["components"]["schemas"]["CreateVideoRequest"]["properties"]
    assert json_body["input_reference"]["anyOf"][0] == {"$ref": "#/components/schemas/ImageUrlReference"}
    assert "sora-2" in json_body["model"]["enum"]
    assert [p["name"] for p in create["parameters"]] == ["Idempotency-Key"]
    assert create["parameters"][0]["schema"]["maxLength"] == 255
    assert set(create["responses"]) >= {"200", "400", "401", "402", "409", "413", "429"}


def test_query_parameters_carry_their_rules(doc: dict[str, Any]) -> None:
    listed = {p["name"]: p for p in doc["paths"]["/v1/videos"]["get"]["parameters"]}
    assert (listed["limit"]["schema"]["minimum"], listed["limit"]["schema"]["maximum"]) == (1, 100)
    assert listed["order"]["schema"]["enum"] == ["asc", "desc"]
    content = doc["paths"]["/v1/videos/{video_id}/content"]["get"]
    assert content["parameters"][1]["schema"]["enum"] == ["video", "thumbnail", "spritesheet"]
    assert "Location" in content["responses"]["302"]["headers"]
    usage = [p["name"] for p in doc["paths"]["/v1/usage"]["get"]["parameters"]]
    assert usage == ["from", "to"]


def test_each_route_says_what_its_404_means(doc: dict[str, Any]) -> None:
    for op in OPERATIONS:
        described = doc["paths"][op.path][op.method.lower()]["responses"]
        if "404" not in described:
            continue
        text = described["404"]["description"].lower()
        if "endpoint_id" in op.path:
            assert "endpoint" in text and "video" not in text, op.id
        elif "model_id" in op.path:
            assert "model" in text, op.id
        elif "video_id" in op.path:
            assert "video" in text, op.id


def test_events_are_the_documents_webhooks(doc: dict[str, Any]) -> None:
    assert set(doc["webhooks"]) == set(EVENT_TYPES)
    for event_type, hook in doc["webhooks"].items():
        ref = hook["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert schema["properties"]["type"]["const"] == event_type
        assert schema["properties"]["data"] == {"$ref": "#/components/schemas/Video"}


def test_bodies_of_the_other_routes_are_documented(doc: dict[str, Any]) -> None:
    for path, model in (
        ("/v1/webhook_endpoints", "CreateEndpointBody"),
        ("/v1/webhook_endpoints/{endpoint_id}/rotate_secret", "RotateSecretBody"),
        ("/v1/uploads", "CreateUploadBody"),
    ):
        body = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{model}"}


def test_a_generated_client_builds_and_reads_real_answers(
    doc: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(doc))
    out = tmp_path / "vidrelay_client.py"
    subprocess.run(
        [
            str(Path(sys.executable).parent / "datamodel-codegen"),
            "--input",
            str(spec),
            "--input-file-type",
            "openapi",
            "--output-model-type",
            "pydantic_v2.BaseModel",
            "--formatters",
            "ruff-format",
            "--output",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=240,
    )
    loaded = importlib.util.spec_from_file_location("vidrelay_client", out)
    assert loaded is not None and loaded.loader is not None
    client = importlib.util.module_from_spec(loaded)
    monkeypatch.setitem(sys.modules, "vidrelay_client", client)  # its annotations resolve through it
    loaded.loader.exec_module(client)

    job = Job(
        id="video_1",
        tenant="t",
        model="sora-2",
        family="videos",
        provider="apiyi",
        prompt="waves",
        seconds="4",
        size="1280x720",
        created_at=1.0,
    )
    answer = Video.from_job(job, retention_days=30).model_dump(mode="json")
    assert client.Video.model_validate(answer).id == "video_1"
    body = {
        "model": "veo-3.1-fast-generate-preview",
        "prompt": "x",
        "aspectRatio": "9:16",
        "duration": "8",
        "input_reference": {"image_url": "s3://bucket/uploads/t/frame.png"},
    }
    generated = client.CreateVideoRequest.model_validate(body)
    assert (
        CreateVideoRequest.model_validate(generated.model_dump(mode="json", exclude_none=True, by_alias=True)).model
        == body["model"]
    )
