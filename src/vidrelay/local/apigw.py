"""An HTTP API (payload format 2.0) in front of the api function: routes come from template.yaml."""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.wrappers import Request, Response

from .runtime import FunctionPool

_TEXT_TYPES = ("application/json", "text/", "application/xml", "application/x-www-form-urlencoded")


class HttpApi:
    def __init__(self, routes: Iterable[tuple[str, str, FunctionPool]]) -> None:
        self._routes = [(method.upper(), path, _pattern(path), pool) for method, path, pool in routes]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = self.handle(request)
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        for method, path, pattern, pool in self._routes:
            match = pattern.fullmatch(request.path)
            if match and method == request.method:
                event = _event(request, f"{method} {path}", match.groupdict())
                result = pool.invoke(event)
                return _response(result)
        # What API Gateway answers for a route the API does not declare.
        return Response('{"message":"Not Found"}', status=404, content_type="application/json")


def _pattern(path: str) -> re.Pattern[str]:
    regex = re.sub(r"\\\{([A-Za-z_][A-Za-z0-9_]*)(?:\\\+)?\\\}", r"(?P<\1>[^/]+)", re.escape(path))
    return re.compile(regex)


def _event(request: Request, route_key: str, path_parameters: dict[str, str]) -> dict[str, Any]:
    body = request.get_data(cache=False)
    content_type = request.headers.get("content-type", "")
    is_text = any(content_type.startswith(t) for t in _TEXT_TYPES)
    query: dict[str, str] = {}
    for key, value in parse_qsl(request.query_string.decode(), keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    headers = {k.lower(): v for k, v in request.headers.items()}
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.path,
        "rawQueryString": request.query_string.decode(),
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": request.host,
            "domainPrefix": "local",
            "http": {
                "method": request.method,
                "path": request.path,
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
