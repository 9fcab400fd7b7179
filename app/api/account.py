"""The account behind the request's API key."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from app.api.blueprint import KEY_REQUIRED, bp
from app.api.inputs import api_key
from app.api.schemas import MeSchema
from app.services import queries


@bp.route("/me", endpoint="me", tags=["account"])
class Me(MethodView):
    @bp.doc(security=KEY_REQUIRED)
    @bp.response(200, MeSchema)
    @bp.problems(401)
    def get(self) -> dict[str, Any]:
        """The key's owner, and the key itself"""
        key = api_key(required=True)
        return {**queries.user_dict(key.user), "key": {"id": key.id, "name": key.name, "prefix": key.prefix}}
