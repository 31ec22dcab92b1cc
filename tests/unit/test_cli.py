"""The CLI's pieces without a stack: help texts, how the API is found, what an API error says, how a download
follows the API's redirect."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from vidrelay.cli import build_parser
from vidrelay.client import ApiError, Client, Endpoint
from vidrelay.failures import CliError
from vidrelay.localstate import read_state, remove_state, write_state

FLAG_ACTIONS = (
    argparse._StoreTrueAction,
    argparse._StoreFalseAction,
    argparse._StoreConstAction,
    argparse._HelpAction,
    argparse._CountAction,
)


def _parsers(parser: argparse.ArgumentParser, prog: str = "vidrelay") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{prog} {name}")


def test_every_option_of_every_command_shows_its_default_in_help() -> None:
    # Given every parser of the CLI
    missing = []
    for prog, parser in _parsers(build_parser()):
        # When its help is formatted
        text = parser.format_help()
        for action in parser._actions:
            if not action.option_strings or action.required or isinstance(action, FLAG_ACTIONS):
                continue
            # Then each option that takes a value says what it is without one
            helped = parser._get_formatter()._get_help_string(action)
            if "default" not in helped:
                missing.append(f"{prog} {action.option_strings[-1]}")
            assert action.option_strings[-1] in text
    assert not missing, f"options without a default in --help: {missing}"


def test_every_api_command_listed_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for prog, _ in _parsers(build_parser()):
        if prog != "vidrelay":
            assert f"`{prog}" in readme, f"{prog} is not in the README"


def test_a_usage_error_is_one_line_with_where_to_read_more(tmp_path: Path) -> None:
    vidrelay = Path(sys.executable).with_name("vidrelay")
    done = subprocess.run([str(vidrelay), "jobs", "--limit"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "vidrelay jobs: argument --limit: expected one argument (see `vidrelay jobs --help`)"
    ]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("VIDRELAY_API_URL", raising=False)
    monkeypatch.delenv("VIDRELAY_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _state(folder: Path, *, pid: int, url: str = "http://127.0.0.1:8787/v1") -> dict[str, object]:
    info = {"api_url": url, "api_key": "sk-local", "pid": pid, "tenant": "local"}
    write_state(folder / ".vidrelay", info)
    return info


def test_the_local_stack_is_found_from_a_folder_deep_inside_the_project(clean_env: Path) -> None:
    _state(clean_env, pid=os.getpid())
    deep = clean_env / "src" / "pkg"
    deep.mkdir(parents=True)
    os.chdir(deep)
    endpoint = Endpoint.discover()
    assert (endpoint.api_url, endpoint.api_key, endpoint.url_source) == (
        "http://127.0.0.1:8787/v1",
        "sk-local",
        "the local stack",
    )


def test_flags_win_over_the_environment_which_wins_over_the_local_stack(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _state(clean_env, pid=os.getpid())
    monkeypatch.setenv("VIDRELAY_API_URL", "https://env.example/v1")
    monkeypatch.setenv("VIDRELAY_API_KEY", "sk-env")
    assert Endpoint.discover().api_url == "https://env.example/v1"
    assert Endpoint.discover().api_key == "sk-env"
    flagged = Endpoint.discover("https://flag.example/v1/", "sk-flag")
    assert (flagged.api_url, flagged.api_key, flagged.url_source) == ("https://flag.example/v1", "sk-flag", "--api-url")
    # A key from the environment with the local stack's URL; the local key never goes to another URL.
    monkeypatch.delenv("VIDRELAY_API_URL")
    assert Endpoint.discover().api_key == "sk-env"
    monkeypatch.delenv("VIDRELAY_API_KEY")
    with pytest.raises(CliError, match=r"no API key for https://other\.example/v1"):
        Endpoint.discover("https://other.example/v1")


def test_a_state_file_left_by_a_dead_stack_says_it_is_not_running(clean_env: Path) -> None:
    # Given the state file of a process that has exited
    gone = subprocess.Popen(["true"])
    gone.wait()
    _state(clean_env, pid=gone.pid)
    # When the CLI looks for the API, then it is told the stack is not running and how to start it
    with pytest.raises(CliError) as caught:
        Endpoint.discover()
    assert caught.value.message == (
        f"the local stack at http://127.0.0.1:8787/v1 is not running ({clean_env / '.vidrelay/local.json'} is "
        "stale); start it with `make local`"
    )


def test_no_state_file_anywhere_says_how_to_get_an_api(clean_env: Path) -> None:
    with pytest.raises(CliError, match=r"no vidrelay API found: start the local stack with `make local`"):
        Endpoint.discover()


def test_a_stack_removes_only_its_own_state_file(clean_env: Path) -> None:
    mine = _state(clean_env, pid=os.getpid(), url="http://127.0.0.1:1/v1")
    _state(clean_env, pid=os.getpid(), url="http://127.0.0.1:2/v1")  # another stack started here since
    remove_state(clean_env / ".vidrelay", mine)
    state = read_state()
    assert state is not None and state.api_url == "http://127.0.0.1:2/v1"
    remove_state(clean_env / ".vidrelay", state.info)
    assert read_state() is None


def _error(status: int, body: object, **kwargs: object) -> str:
    return ApiError(status, body, **kwargs).explain()  # type: ignore[arg-type]


def test_api_errors_read_as_one_line_with_what_to_do() -> None:
    bad = {"error": {"message": "Invalid value for 'seconds': '5'.", "param": "seconds", "code": "invalid_value"}}
    assert _error(400, bad) == "invalid request (param: seconds): Invalid value for 'seconds': '5'."
    limited = {"error": {"message": "At most 1 video per minute.", "code": "rate_limited"}}
    assert _error(429, limited, retry_after="17") == "rate limited: At most 1 video per minute. Retry after 17 s."
    missing = {"error": {"message": "No video found with id 'video_x'.", "param": "video_id"}}
    assert _error(404, missing, path="/v1/videos/video_x") == (
        "not found: No video found with id 'video_x'. (`vidrelay jobs` lists your videos)"
    )
    endpoint = Endpoint("http://127.0.0.1:8787/v1", "sk-x", "the local stack", "VIDRELAY_API_KEY")
    refused = {"error": {"message": "Incorrect API key provided.", "code": "invalid_api_key"}}
    line = _error(401, refused, endpoint=endpoint)
    assert line.startswith("the API at http://127.0.0.1:8787/v1 refused the key (the key from VIDRELAY_API_KEY)")
    assert "sk-x" not in line and "\n" not in line
    assert _error(502, "<html>bad gateway</html>").startswith("the API failed (HTTP 502): <html>bad gateway</html>")


def test_download_follows_the_redirect_without_sending_the_bearer_key_to_storage(tmp_path: Path) -> None:
    # Given an API that answers the content route with a 302 to a presigned storage URL on another host
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "api.example":
            assert request.url.params["variant"] == "video"
            return httpx.Response(302, headers={"Location": "https://bucket.storage.example/v.mp4?X-Amz-Signature=s"})
        return httpx.Response(200, content=b"\x00\x00\x00\x18ftypmp42" + b"x" * 5000)

    client = Client(Endpoint("https://api.example/v1", "sk-secret"), transport=httpx.MockTransport(answer))
    # When the video is downloaded
    progress: list[tuple[int, int | None]] = []
    path = client.download("video_1", tmp_path / "out" / "video_1.mp4", on_bytes=lambda d, t: progress.append((d, t)))
    # Then the file holds the bytes, and only the API request carried the key
    assert path.read_bytes().startswith(b"\x00\x00\x00\x18ftyp") and path.stat().st_size == 5012
    assert [r.url.host for r in seen] == ["api.example", "bucket.storage.example"]
    assert seen[0].headers["authorization"] == "Bearer sk-secret"
    assert "authorization" not in seen[1].headers
    assert progress[-1] == (5012, 5012)
    assert list((tmp_path / "out").iterdir()) == [path]  # no partial file left


def test_a_refused_storage_link_leaves_no_file(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.example":
            return httpx.Response(302, headers={"Location": "https://storage.example/v.mp4"})
        return httpx.Response(
            403, text="<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
        )

    client = Client(Endpoint("https://api.example/v1", "sk"), transport=httpx.MockTransport(answer))
    with pytest.raises(CliError, match="answered HTTP 403"):
        client.download("video_1", tmp_path / "video_1.mp4")
    assert list(tmp_path.iterdir()) == []


def test_the_state_file_is_json_with_the_pid(clean_env: Path) -> None:
    _state(clean_env, pid=4242)
    assert json.loads((clean_env / ".vidrelay" / "local.json").read_text())["pid"] == 4242
