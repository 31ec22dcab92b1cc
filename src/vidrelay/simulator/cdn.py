"""The CDN host: a second HTTP server that serves the MP4s behind the signed ``video_url`` links of seeds 000/001.

It behaves like the S3 bucket behind such links does: the signature in the query string *is* the
authentication, so a request that also carries an ``Authorization`` header (a client that sends its upstream
key everywhere) is refused with S3's 400 "Only one auth mechanism allowed"; an expired link is a 403 (seed 000:
"Generated video URLs are valid for only 1 day"). No key is needed or looked at.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from typing import Any
from xml.sax.saxutils import escape

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from vidrelay.simulator.delivery import take_content_fault, video_response
from vidrelay.simulator.state import SimState
from vidrelay.simulator.tasks import CdnLink, Task, now_ms

LINK_LIFETIME_S = 24 * 3600  # seed 000: "valid for only 1 day"
ONE_AUTH_ONLY = (
    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string "
    "parameter or the Authorization header should be specified"
)  # S3's own wording for a presigned URL fetched with an Authorization header


def s3_error(status: int, code: str, message: str, **extra: str) -> Response:
    details = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in extra.items())
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>{details}"
        f"<RequestId>{secrets.token_hex(8).upper()}</RequestId></Error>"
    )
    return Response(body, status=status, mimetype="application/xml")


class Cdn:
    """Signs links and serves them. ``base_url`` is known once the server has bound its port."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self.base_url = ""
        self._secret = secrets.token_bytes(32)
        self._url_map = Map([Rule("/files/<token>.mp4", endpoint="file", methods=["GET"])])

    def _signature(self, token: str, expires: int) -> str:
        return hmac.new(self._secret, f"/files/{token}.mp4\n{expires}".encode(), hashlib.sha256).hexdigest()

    def link(self, completed_at_ms: int, faults: dict[str, Any]) -> CdnLink:
        """A link valid for a day after completion, or ``expire`` seconds with that fault."""
        lifetime_ms = round(float(faults["expire"]) * 1000) if "expire" in faults else LINK_LIFETIME_S * 1000
        expires = (completed_at_ms + lifetime_ms) // 1000
        token = secrets.token_hex(16)
        url = f"{self.base_url}/files/{token}.mp4?Expires={expires}&Signature={self._signature(token, expires)}"
        return CdnLink(token=token, url=url, expires_at=expires)

    # -- WSGI --

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        # Logged on arrival with the API server's requests; the header's value is never stored.
        entry: dict[str, Any] = {
            "server": "cdn",
            "method": request.method,
            "path": request.path,
            "at_ms": now_ms(),
            "status": None,
            "had_bearer": request.headers.get("Authorization", "").lower().startswith("bearer "),
            "had_authorization": "Authorization" in request.headers,
            "task_id": None,
            "dialect": None,
        }
        self.state.log_request(entry)

        def recording_start_response(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            entry["status"] = int(status.split(None, 1)[0])
            return start_response(status, headers, *args)

        try:
            _, args = self._url_map.bind_to_environ(environ).match()
            response = self._file(request, entry, args["token"])
        except NotFound:
            response = s3_error(404, "NoSuchKey", "The specified key does not exist.", Key=request.path.lstrip("/"))
        except HTTPException as exc:
            response = s3_error(exc.code or 400, "InvalidRequest", exc.description or exc.name)
        return response(environ, recording_start_response)

    def _file(self, request: Request, entry: dict[str, Any], token: str) -> Response:
        task = self.state.lookup_token(token)
        if task is None or task.link is None:
            return s3_error(404, "NoSuchKey", "The specified key does not exist.", Key=f"files/{token}.mp4")
        entry["task_id"], entry["dialect"] = task.id, task.dialect
        at = now_ms()
        response = self._answer(request, task, task.link, at)
        with self.state.lock:
            task.content_requests += 1
            task.cdn_requests.append(
                {
                    "at_ms": at,
                    "method": request.method,
                    "status": response.status_code,
                    "had_authorization": entry["had_authorization"],
                }
            )
        return response

    def _answer(self, request: Request, task: Task, link: CdnLink, at_ms: int) -> Response:
        if "Authorization" in request.headers:
            return s3_error(400, "InvalidArgument", ONE_AUTH_ONLY, ArgumentName="Authorization")
        expires = request.args.get("Expires", "")
        signature = request.args.get("Signature", "")
        if not expires.isdigit() or not signature:
            return s3_error(
                403, "AccessDenied", "Query-string authentication requires the Signature and Expires parameters"
            )
        if not hmac.compare_digest(signature, self._signature(link.token, int(expires))):
            return s3_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        if at_ms // 1000 >= int(expires):
            return s3_error(403, "AccessDenied", "Request has expired", Expires=expires)
        if not task.finished(at_ms) or task.failed():
            return s3_error(404, "NoSuchKey", "The specified key does not exist.", Key=f"files/{link.token}.mp4")
        # A HEAD (a downloader checking the size first) gets the headers but uses up no download fault.
        fired = None if request.method == "HEAD" else take_content_fault(task, self.state.lock)
        return video_response(task, fired, request.environ)
