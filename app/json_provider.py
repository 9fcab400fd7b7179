"""JSON responses written by orjson: the same JSON as Flask's provider for a fraction of the CPU.

Flask's DefaultJSONProvider builds a response by running the standard library's encoder and
encoding its text again; in a profile of an uncached keyed API read (py-spy against a live
replica) that was about a twentieth of the request. orjson writes the bytes at once. The output
keeps what clients see today: keys sorted (Flask's default; the old ``JSON_SORT_KEYS`` setting
is gone since Flask 2.3), compact, indented in debug mode, a trailing newline. What orjson would
write differently is handed to Flask's own conversion (``default``): datetimes (Flask writes HTTP
dates), decimals and the rest; keys that are not strings become strings as with the standard
library. Only non-ASCII text differs, written as UTF-8 rather than ``\\u`` escapes: the same JSON.
Anything orjson refuses (an integer beyond 64 bits) goes through Flask's provider. Reading JSON,
and ``dumps`` (templates' ``tojson``), stay with Flask's provider.
"""

from __future__ import annotations

from typing import Any, cast

import orjson
from flask import Flask
from flask.json.provider import DefaultJSONProvider
from werkzeug.sansio.response import Response

#: Always: keys that are not strings written as strings, datetimes to Flask's conversion, a final newline.
OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_APPEND_NEWLINE


class OrjsonProvider(DefaultJSONProvider):
    def response(self, *args: Any, **kwargs: Any) -> Response:
        """``jsonify``: the arguments serialised as an ``application/json`` response."""
        obj = self._prepare_response_obj(args, kwargs)
        options = OPTIONS | (orjson.OPT_SORT_KEYS if self.sort_keys else 0)
        if (self.compact is None and self._app.debug) or self.compact is False:
            options |= orjson.OPT_INDENT_2
        try:
            body = orjson.dumps(obj, default=self.default, option=options)
        except orjson.JSONEncodeError:
            return super().response(*args, **kwargs)
        return cast("Flask", self._app).response_class(body, mimetype=self.mimetype)


def init_json(app: Flask) -> None:
    app.json = OrjsonProvider(app)
