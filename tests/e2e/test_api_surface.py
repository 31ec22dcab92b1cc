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


def test_undeclared_route_is_404(local_stack: LocalStackProcess) -> None:
    with local_stack.http() as api:
        assert api.get("/nothing-here").status_code == 404
        assert api.put("/videos").status_code == 404
