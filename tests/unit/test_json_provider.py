"""app.json_provider writes what Flask's own provider writes (as JSON), and falls back to it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from flask import Flask, jsonify

from app.json_provider import init_json

SAMPLE = {
    "zeta": 1,
    "alpha": {"b": [1, 2.5, None, True], "a": 'Zoë — «quoted» "x" \\ \n'},
    "when": datetime(2026, 11, 22, 20, 30, tzinfo=UTC),
    "day": date(2026, 11, 22),
    "amount": Decimal("12.50"),
    "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "ids": {3: "keys that are not strings", 10: "become strings"},
}


def app_with(orjson: bool, debug: bool = False) -> Flask:
    """An app with app.json_provider's provider, or Flask's own."""
    app = Flask(__name__)
    app.debug = debug
    if orjson:
        init_json(app)
    return app


def body(app: Flask, obj: object) -> bytes:
    with app.test_request_context():
        response = jsonify(obj)
        assert response.mimetype == "application/json"
        return response.get_data()


def test_the_same_json_as_flask_with_keys_sorted_and_a_final_newline() -> None:
    ours, flasks = body(app_with(True), SAMPLE), body(app_with(False), SAMPLE)
    assert json.loads(ours) == json.loads(flasks)
    assert ours.endswith(b"}\n") and b"\n" not in ours[:-1]  # compact, one line
    keys = list(json.loads(ours))
    assert keys == sorted(keys)
    # Flask's conversions, not orjson's: an HTTP date, a decimal as a string.
    assert json.loads(ours)["when"] == "Sun, 22 Nov 2026 20:30:00 GMT"
    assert json.loads(ours)["amount"] == "12.50"


def test_ascii_content_is_byte_for_byte_flasks() -> None:
    listing = {"items": [{"id": 7, "title": 'Plain "title"', "keywords": ["a", "b"]}], "next": None, "total": 1}
    assert body(app_with(True), listing) == body(app_with(False), listing)


def test_indented_in_debug_mode() -> None:
    assert b'\n  "a": 1' in body(app_with(True, debug=True), {"a": 1})


def test_what_orjson_refuses_goes_through_flasks_provider() -> None:
    huge = {"n": 2**70}
    assert json.loads(body(app_with(True), huge)) == huge


def test_an_object_neither_can_write_is_still_an_error() -> None:
    with pytest.raises(TypeError):
        body(app_with(True), {"x": object()})
