"""The rest of the HTTP surface: listing with cursors, the model catalog, the OpenAPI document and Swagger UI."""

from __future__ import annotations

import httpx
import openai
import pytest
from vidrelay_core.contract import VideoList

from tests.e2e.conftest import LocalStackProcess

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def create(api: httpx.Client, prompt: str) -> str:
    body = {"model": "sora-2", "prompt": prompt, "seconds": "4", "size": "1280x720"}
    return str(api.post("/videos", json=body).raise_for_status().json()["id"])


def test_list_pages_with_after_limit_and_order(local_stack: LocalStackProcess) -> None:
    with local_stack.http() as api:
        made = [create(api, f"page test {n}") for n in range(3)]
        first = api.get("/videos", params={"limit": 2}).raise_for_status().json()
        VideoList.model_validate(first)
        assert first["object"] == "list"
        assert [v["id"] for v in first["data"]] == made[::-1][:2]  # newest first
        assert first["has_more"] is True
        assert (first["first_id"], first["last_id"]) == (made[2], made[1])
        second = api.get("/videos", params={"limit": 2, "after": first["last_id"]}).raise_for_status().json()
        assert second["data"][0]["id"] == made[0]

        ascending = api.get("/videos", params={"limit": 100, "order": "asc"}).raise_for_status().json()
        ids = [v["id"] for v in ascending["data"]]
        assert ids.index(made[0]) < ids.index(made[1]) < ids.index(made[2])

        for params, param in (({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"), ({"order": "up"}, "order")):
            response = api.get("/videos", params=params)
            assert response.status_code == 400
            assert response.json()["error"]["param"] == param


def test_sdk_auto_pagination_sees_every_job(local_stack: LocalStackProcess) -> None:
    sdk = openai.OpenAI(base_url=local_stack.api_url, api_key=local_stack.api_key, max_retries=0)
    with local_stack.http() as api:
        made = {create(api, f"sdk page {n}") for n in range(3)}
    seen = {video.id for video in sdk.videos.list(limit=1)}  # one item per page: the SDK follows `after`
    assert made <= seen


def test_models_lists_the_catalog(local_stack: LocalStackProcess) -> None:
    with local_stack.http() as api:
        models = {m["id"]: m for m in api.get("/models").raise_for_status().json()["data"]}
    assert {"sora-2", "sora-2-pro"} <= set(models)
    assert models["sora-2"]["seconds"]["allowed"] == ["4", "8", "12"]
    assert "1792x1024" in models["sora-2-pro"]["size"]["allowed"]
    assert "1792x1024" not in models["sora-2"]["size"]["allowed"]


def test_openapi_and_docs(local_stack: LocalStackProcess) -> None:
    root = local_stack.api_url.removesuffix("/v1")
    document = httpx.get(f"{root}/openapi.json").raise_for_status().json()
    assert document["openapi"].startswith("3.")
    for path in ("/v1/videos", "/v1/videos/{video_id}", "/v1/videos/{video_id}/content", "/v1/models"):
        assert path in document["paths"], path
    create = document["paths"]["/v1/videos"]["post"]
    assert set(create["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert "seconds" in document["components"]["schemas"]["CreateVideoRequest"]["properties"]
    assert "Video" in document["components"]["schemas"]
    assert "302" in document["paths"]["/v1/videos/{video_id}/content"]["get"]["responses"]
    docs = httpx.get(f"{root}/docs").raise_for_status()
    assert "swagger" in docs.text.lower()


def openai_error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    return dict(body["error"])


def test_undeclared_route_is_an_openai_404(local_stack: LocalStackProcess) -> None:
    root = local_stack.api_url.removesuffix("/v1")
    with local_stack.http() as api:
        assert openai_error(api.get("/nothing-here"), 404)["code"] == "not_found"
        assert openai_error(httpx.post(f"{root}/elsewhere", json={}), 404)["code"] == "not_found"


def test_a_wrong_method_is_405_naming_the_allowed_ones(local_stack: LocalStackProcess) -> None:
    with local_stack.http() as api:
        response = api.put("/videos")
        assert openai_error(response, 405)["code"] == "method_not_allowed"
        assert response.headers["allow"] == "GET, POST"
        response = api.patch("/webhook_endpoints/we_123")
        assert openai_error(response, 405)["code"] == "method_not_allowed"
        assert response.headers["allow"] == "DELETE, GET"


@pytest.mark.parametrize("raw_id", ["a%2Fb", "%00", "video_%E2%9C%93", "..%2F..%2Fmodels", "a%20b"])
def test_ids_with_odd_characters_are_an_openai_404(local_stack: LocalStackProcess, raw_id: str) -> None:
    with local_stack.http() as api:
        error = openai_error(api.get(httpx.URL(f"{local_stack.api_url}/videos/{raw_id}")), 404)
    assert error["code"] == "not_found"


def test_served_document_is_valid_openapi_with_a_bearer_scheme(local_stack: LocalStackProcess) -> None:
    from openapi_spec_validator import validate

    root = local_stack.api_url.removesuffix("/v1")
    document = httpx.get(f"{root}/openapi.json").raise_for_status().json()
    validate(document)
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (`vidrelay keys create`)",
    }
    assert set(document["webhooks"]) >= {"video.completed", "video.failed"}


def test_docs_assets_come_from_the_api_itself(local_stack: LocalStackProcess) -> None:
    root = local_stack.api_url.removesuffix("/v1")
    page = httpx.get(f"{root}/docs").raise_for_status()
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "docs.js"):
        assert httpx.get(f"{root}/docs/{asset}").raise_for_status().content, asset
    assert openai_error(httpx.get(f"{root}/docs/secrets.txt"), 404)["param"] == "asset"


@pytest.mark.parametrize(
    ("path", "params", "param", "fragment"),
    [
        ("/usage", {"from": "2026-13-01"}, "from", "YYYY-MM-DD"),
        ("/usage", {"to": "yesterday"}, "to", "'yesterday'"),
        ("/videos", {"limit": "101"}, "limit", "from 1 to 100"),
        ("/videos", {"colour": "red"}, "colour", "Allowed: after, limit, order"),
        ("/videos/video_00000000000000000000000000000000/content", {"variant": "poster"}, "variant", "'spritesheet'"),
    ],
)
def test_query_parameters_are_checked_by_the_contract(
    local_stack: LocalStackProcess, path: str, params: dict[str, str], param: str, fragment: str
) -> None:
    with local_stack.http() as api:
        error = openai_error(api.get(path, params=params), 400)
    assert error["param"] == param
    assert fragment in str(error["message"]), error


def test_an_overlong_idempotency_key_is_refused_before_anything_is_made(local_stack: LocalStackProcess) -> None:
    before = local_stack.sim_submits()
    body = {"model": "sora-2", "prompt": "x", "seconds": "4"}
    with local_stack.http() as api:
        error = openai_error(api.post("/videos", json=body, headers={"Idempotency-Key": "k" * 256}), 400)
    assert error["param"] == "Idempotency-Key" and "255" in str(error["message"])
    assert local_stack.sim_submits() == before
