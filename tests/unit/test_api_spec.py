"""The OpenAPI document and the docs page: they describe what the API really does.

No request here reaches a service: the document, the docs page and its assets are served
without one, and the schema checks run on plain values.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from html import unescape as html_unescape
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.api.problems import PROBLEM_MIMETYPE
from app.api.schemas import (
    MAX_PAGE,
    ArticleCreateSchema,
    ArticleListSchema,
    ArticlePageSchema,
    ArticlePatchSchema,
    ArticleSchema,
    MeSchema,
)
from app.models.article import BODY_MAX, TITLE_MAX
from app.services.errors import ValidationFailed
from app.services.queries import Listing, article_dict, user_dict
from app.services.validation import validate_article
from tests.support import offline_app

API = "/api/v1"
#: Every operation, and the error statuses it must document (besides "default").
OPERATIONS: dict[tuple[str, str], set[int]] = {
    ("/api/v1/articles", "get"): {401, 422},
    ("/api/v1/articles", "post"): {400, 401, 413, 415, 422, 503},
    ("/api/v1/articles/popular", "get"): {401},
    ("/api/v1/articles/{article_id}", "get"): {401, 404},
    ("/api/v1/articles/{article_id}", "patch"): {400, 401, 403, 404, 413, 415, 422, 503},
    ("/api/v1/articles/{article_id}", "delete"): {401, 403, 404, 503},
    ("/api/v1/me", "get"): {401},
}
KEY_REQUIRED = {("/api/v1/articles", "post"), ("/api/v1/articles/{article_id}", "patch")}
KEY_REQUIRED |= {("/api/v1/articles/{article_id}", "delete"), ("/api/v1/me", "get")}


@pytest.fixture
def app() -> Flask:
    return offline_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    response = client.get(f"{API}/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        _, section, kind, name = node["$ref"].split("/")
        node = spec[section][kind][name]
    return node


def operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    methods = {"get", "post", "put", "patch", "delete"}
    return {(path, m): op for path, item in spec["paths"].items() for m, op in item.items() if m in methods}


def test_the_document_describes_exactly_the_routes_the_app_serves(app: Flask, spec: dict[str, Any]) -> None:
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(API + "/") and rule.endpoint.startswith("api."):
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
            served |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert served == set(operations(spec)) == set(OPERATIONS)
    assert spec["openapi"].startswith("3.")


@pytest.mark.parametrize(("path", "method"), sorted(OPERATIONS))
def test_each_operation_documents_its_errors_as_problems(spec: dict[str, Any], path: str, method: str) -> None:
    responses = spec["paths"][path][method]["responses"]
    documented = {int(code) for code in responses if code != "default" and int(code) >= 400}
    assert documented == OPERATIONS[(path, method)]
    for code in [*documented, "default"]:
        response = resolve(spec, responses[str(code)])
        assert set(response["content"]) == {PROBLEM_MIMETYPE}, (code, response)
        assert (
            resolve(spec, response["content"][PROBLEM_MIMETYPE]["schema"]) is spec["components"]["schemas"]["Problem"]
        )
    if 401 in documented:
        assert "WWW-Authenticate" in resolve(spec, responses["401"])["headers"]


def test_the_problem_schema_has_the_rfc_9457_members(spec: dict[str, Any]) -> None:
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "errors"} <= set(problem["properties"])
    assert set(problem["required"]) == {"type", "title", "status"}
    assert problem.get("additionalProperties", True) is not False  # extension members are allowed


@pytest.mark.parametrize(("path", "method"), sorted(OPERATIONS))
def test_keys_are_a_bearer_scheme_required_for_writes_and_optional_for_reads(
    spec: dict[str, Any], path: str, method: str
) -> None:
    assert spec["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    security = spec["paths"][path][method]["security"]
    if (path, method) in KEY_REQUIRED:
        assert security == [{"ApiKey": []}]
    else:
        assert security == [{}, {"ApiKey": []}]


def test_success_responses(spec: dict[str, Any]) -> None:
    def success(path: str, method: str, code: str) -> dict[str, Any]:
        return resolve(spec, spec["paths"][path][method]["responses"][code])

    def schema_name(response: dict[str, Any]) -> str:
        return response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]

    assert schema_name(success("/api/v1/articles", "get", "200")) == "ArticlePage"
    created = success("/api/v1/articles", "post", "201")
    assert schema_name(created) == "Article" and "Location" in created["headers"]
    assert schema_name(success("/api/v1/articles/popular", "get", "200")) == "ArticleList"
    assert schema_name(success("/api/v1/articles/{article_id}", "get", "200")) == "Article"
    assert schema_name(success("/api/v1/articles/{article_id}", "patch", "200")) == "Article"
    assert "content" not in success("/api/v1/articles/{article_id}", "delete", "204")
    assert schema_name(success("/api/v1/me", "get", "200")) == "Me"


def test_pagination_arguments_document_their_bounds(spec: dict[str, Any]) -> None:
    params = {p["name"]: p["schema"] for p in spec["paths"]["/api/v1/articles"]["get"]["parameters"]}
    assert params["page"] == {"type": "integer", "default": 1, "minimum": 1, "maximum": MAX_PAGE}
    assert params["per_page"] == {"type": "integer", "default": 20, "minimum": 1, "maximum": 100}


def test_request_bodies_document_the_validation_limits(spec: dict[str, Any]) -> None:
    post = spec["paths"]["/api/v1/articles"]["post"]["requestBody"]
    patch = spec["paths"]["/api/v1/articles/{article_id}"]["patch"]["requestBody"]
    assert set(post["content"]) == set(patch["content"]) == {"application/json"}
    create = resolve(spec, post["content"]["application/json"]["schema"])
    change = resolve(spec, patch["content"]["application/json"]["schema"])
    for schema in (create, change):
        assert schema["additionalProperties"] is False
        assert (schema["properties"]["title"]["minLength"], schema["properties"]["title"]["maxLength"]) == (
            1,
            TITLE_MAX,
        )
        assert (schema["properties"]["body"]["minLength"], schema["properties"]["body"]["maxLength"]) == (1, BODY_MAX)
    assert set(create["required"]) == {"title", "body"}
    assert "required" not in change
    assert change["minProperties"] == 1, "a PATCH of {} is refused, so the document must not allow it"
    assert "minProperties" not in create


SAMPLES: list[dict[str, Any]] = [
    {"title": "t", "body": "b"},
    {"title": "", "body": "b"},
    {"title": "t" * TITLE_MAX, "body": "b" * BODY_MAX},
    {"title": "t" * (TITLE_MAX + 1), "body": "b"},
    {"title": "t", "body": "b" * (BODY_MAX + 1)},
    {"title": 5, "body": None},
    {"title": ["t"], "body": {"b": 1}},
    {"title": "t", "body": "b", "author_id": 1},
    {"title": "t"},
    {"body": "b"},
    {},
]


def refused_by_services(data: dict[str, Any], *, partial: bool) -> set[str]:
    try:
        validate_article(data, partial=partial)
    except ValidationFailed as exc:
        return set(exc.errors)
    return set()


@pytest.mark.parametrize("data", SAMPLES)
def test_documented_request_schemas_agree_with_the_services_rules(data: dict[str, Any]) -> None:
    assert set(ArticleCreateSchema().validate(data)) == refused_by_services(data, partial=False)
    assert set(ArticlePatchSchema().validate(data)) == refused_by_services(data, partial=True)


@pytest.mark.parametrize("text", ["t", " t ", "a\x00b", "\x00", " ", "\n\t", "\u00a0", "line\nline", "\u0085x"])
def test_the_documented_text_pattern_agrees_with_the_services_rules(spec: dict[str, Any], text: str) -> None:
    """A string the document allows (its pattern) is one the services accept, and the reverse."""
    schema = resolve(spec, spec["paths"]["/api/v1/articles"]["post"]["requestBody"]["content"]["application/json"])
    schema = resolve(spec, schema["schema"])
    for field in ("title", "body"):
        pattern = schema["properties"][field]["pattern"]
        other = "body" if field == "title" else "title"
        allowed = re.search(pattern, text) is not None
        assert allowed == (field not in refused_by_services({field: text, other: "ok"}, partial=False)), field


def fake_article() -> SimpleNamespace:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return SimpleNamespace(
        id=41,
        title="Title",
        body="Body",
        author=SimpleNamespace(id=3, display_name="Ann"),
        status="ready",
        summary=None,
        keywords=["a", "b"],
        views=12,
        published_at=moment,
        updated_at=moment,
    )


def test_response_schemas_send_every_field_the_read_path_produces() -> None:
    """Responses are dumped through their schema: a field missing from it would be dropped silently."""
    detail = article_dict(fake_article())
    summary = article_dict(fake_article(), with_body=False)
    assert ArticleSchema().dump(detail) == detail
    for listing in (
        Listing([summary], per_page=1, page=2, total=3, next_cursor="abc"),
        Listing([summary], per_page=1, page=None, total=None, next_cursor=None),
    ):
        page = listing.as_dict()
        page["next"] = page.pop("next_cursor")  # the API sends it as a path (app.api.articles)
        assert ArticlePageSchema().dump(page) == page
    assert ArticleListSchema().dump({"items": [summary]}) == {"items": [summary]}
    user = SimpleNamespace(id=3, email="ann@example.test", display_name="Ann", created_at=datetime.now(UTC))
    me = {**user_dict(user), "key": {"id": 7, "name": "laptop", "prefix": "nd_0000abcd"}}
    assert MeSchema().dump(me) == me


def test_the_docs_page_loads_its_assets_from_this_server_only(client: FlaskClient) -> None:
    page = client.get(f"{API}/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(assets) >= 2
    for url in assets:
        assert url.startswith(("/static/vendor/swagger-ui/", "/static/js/swagger-ui-init")), url
        response = client.get(url)
        assert response.status_code == 200, url
        assert len(response.data) > (500 if "swagger-ui-init" in url else 10_000), url
        response.close()
    assert "//" not in "".join(re.findall(r"<(?:script|link)[^>]*>", html)), "an absolute or CDN URL"
    assert "<script>" not in html, "no inline script: the page's CSP runs this origin's files only"
    config = re.search(r"data-config='([^']*)'", html)
    assert config is not None
    settings = json.loads(html_unescape(config.group(1)))
    assert settings["validatorUrl"] is None  # no badge from validator.swagger.io
    assert settings["url"] == f"{API}/openapi.json"
