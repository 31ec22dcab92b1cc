"""An HTTP API (payload format 2.0) in front of the api function: routes come from template.yaml."""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote

from werkzeug.wrappers import Request, Response

from .runtime import Pool

_TEXT_TYPES = ("application/json", "text/", "application/xml", "application/x-www-form-urlencoded")


DEFAULT_ROUTE = "$default"


class HttpApi:
    def __init__(self, routes: Iterable[tuple[str, str, Pool]]) -> None:
        routes = list(routes)
        self._routes = [
            (method.upper(), path, _pattern(path), pool) for method, path, pool in routes if path != DEFAULT_ROUTE
        ]
        # API Gateway's catch-all: what no route matches goes there, whatever the method.
        self._default = next((pool for _, path, pool in routes if path == DEFAULT_ROUTE), None)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = self.handle(request)
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        raw_path = _raw_path(request)
        for method, path, pattern, pool in self._routes:
            match = pattern.fullmatch(raw_path)
            if match and method in (request.method, "ANY"):
                parameters = {name: unquote(value) for name, value in match.groupdict().items()}
                return _response(pool.invoke(_event(request, f"{method} {path}", parameters)))
        if self._default is not None:
            return _response(self._default.invoke(_event(request, DEFAULT_ROUTE, {})))
        # What API Gateway answers for a route the API does not declare.
        return Response('{"message":"Not Found"}', status=404, content_type="application/json")


def _raw_path(request: Request) -> str:
    """The path as the client sent it: API Gateway matches routes on it (an encoded `/` stays in its segment)
    and hands it to the function as `rawPath`."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    return str(raw).split("?", 1)[0] if raw else request.path


def _pattern(path: str) -> re.Pattern[str]:
    regex = re.sub(r"\\\{([A-Za-z_][A-Za-z0-9_]*)(?:\\\+)?\\\}", r"(?P<\1>[^/]+)", re.escape(path))
    return re.compile(regex)


def _event(request: Request, route_key: str, path_parameters: dict[str, str]) -> dict[str, Any]:
    body = request.get_data(cache=False)
    content_type = request.headers.get("content-type", "")
    is_text = any(content_type.startswith(t) for t in _TEXT_TYPES) and _is_utf8(body)
    query: dict[str, str] = {}
    for key, value in parse_qsl(request.query_string.decode("utf-8", "replace"), keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    headers = {k.lower(): v for k, v in request.headers.items()}
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": _raw_path(request),
        "rawQueryString": request.query_string.decode("utf-8", "replace"),
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": request.host,
            "domainPrefix": "local",
            "http": {
                "method": request.method,
                "path": _raw_path(request),
                "protocol": "HTTP/1.1",
                "sourceIp": request.remote_addr or "127.0.0.1",
                "userAgent": request.headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": bool(body) and not is_text,
    }
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        event["body"] = body.decode() if is_text else base64.b64encode(body).decode()
    return event


def _is_utf8(body: bytes) -> bool:
    """A text body that is not UTF-8 is passed base64-encoded, as API Gateway passes any body it cannot pass as
    text: the function then refuses it with a 400 instead of the router failing on it."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _response(result: dict[str, Any]) -> Response:
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    response = Response(data, status=int(result.get("statusCode", 200)))
    for key, value in (result.get("headers") or {}).items():
        response.headers[key] = value
    for key, values in (result.get("multiValueHeaders") or {}).items():
        for value in values:
            response.headers.add(key, value)
    for cookie in result.get("cookies") or []:
        response.headers.add("Set-Cookie", cookie)
    return response
