"""The local stack's AWS endpoint: moto's server, with DynamoDB requests taken one at a time.

moto (5.2.5) is not safe under concurrent DynamoDB requests, and the local stack makes many (containers, pollers,
the API's threads):
- a TransactWriteItems that fails its condition puts back a deep copy of every table it touched, taken when it
  started, and so wipes whatever other requests wrote to those tables in the meantime;
- that copy iterates the table while other requests change it, which answers 500 "dictionary changed size during
  iteration";
- a conditional write is "read the item, check the condition, write" with no lock, so two requests can both pass
  the same condition;
- even a GetItem of a missing key inserts into the table's items (a defaultdict), so reads are not read-only
  either and cannot share the table with writes.
DynamoDB makes every write atomic per item and every transaction serialisable; handling one DynamoDB request at a
time gives the local endpoint the same guarantees (and lets transactions.py replace moto's whole-table copy of each
transaction with a copy of the items it writes). S3, SQS and SNS requests stay concurrent, so a large multipart
upload never holds up the API.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]

# The JSON protocol names the operation in this header; DynamoDB Streams use "DynamoDBStreams_...", left alone.
DYNAMODB_TARGET_PREFIX = "DynamoDB_20120810."


def is_dynamodb(environ: dict[str, Any]) -> bool:
    return str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith(DYNAMODB_TARGET_PREFIX)


class SerialDynamoDB:
    """WSGI wrapper around moto's app: one DynamoDB request at a time, everything else passed straight through."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if not is_dynamodb(environ):
            return self._app(environ, start_response)
        # Read the body before taking the lock, so a slow client never holds up everyone else's requests.
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        with self.lock:
            # The response is produced while iterating, so it must be read whole inside the lock.
            response = self._app(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()


class LocalAws:
    """moto's server on 127.0.0.1 (port 0: any free port), served from a daemon thread.

    `serialise_dynamodb=False` serves moto as it is: only the race tests use it, to show what the wrapper prevents.
    """

    def __init__(self, port: int = 0, *, serialise_dynamodb: bool = True) -> None:
        self._port = port
        self._serialise_dynamodb = serialise_dynamodb
        self.serial_dynamodb: SerialDynamoDB | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> LocalAws:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

        app: WsgiApp = DomainDispatcherApplication(create_backend_app)
        if self._serialise_dynamodb:
            from .transactions import install

            # Transactions that copy only their own items: correct only with one DynamoDB request at a time.
            install()
            app = self.serial_dynamodb = SerialDynamoDB(app)
        self._server = make_server("127.0.0.1", self._port, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-aws", daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
