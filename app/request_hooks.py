"""What every response carries: the request id (from nginx's X-Request-ID, else a new one)
and the name of the replica that served it; and this replica's heartbeat."""

from __future__ import annotations

import uuid

from flask import Flask, Response, g, request

from app.logs import request_id_var
from app.services.heartbeats import REPLICAS, Heartbeat

_MAX_REQUEST_ID = 128


def init_request_hooks(app: Flask) -> None:
    hostname = app.extensions["settings"].hostname
    heartbeat = app.extensions["heartbeat"] = Heartbeat(app.extensions["redis"], REPLICAS, hostname)

    @app.before_request
    def bind_request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if 0 < len(incoming) <= _MAX_REQUEST_ID and incoming.isprintable() else uuid.uuid4().hex
        g.request_id = rid
        g.request_id_token = request_id_var.set(rid)

    @app.after_request
    def stamp_response(response: Response) -> Response:
        heartbeat.beat()
        response.headers["X-Served-By"] = hostname
        if "request_id" in g:
            response.headers["X-Request-ID"] = g.request_id
        return response

    @app.teardown_request
    def unbind_request_id(_exc: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            request_id_var.reset(token)
