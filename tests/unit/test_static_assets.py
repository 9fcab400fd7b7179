"""Content-hashed static files (app/static_assets.py): the names the image build gives them, what
a container start adds to nginx's volume, and the URLs pages link."""

from __future__ import annotations

import hashlib
import json
import re
import stat
from pathlib import Path

import pytest
from flask import Flask, url_for

from app import static_assets
from app.static_assets import build, hashed_name, init_static_assets, load_manifest, publish
from tests.support import offline_app


def make_static(root: Path, files: dict[str, bytes]) -> Path:
    static = root / "static"
    for name, content in files.items():
        (static / name).parent.mkdir(parents=True, exist_ok=True)
        (static / name).write_bytes(content)
    return static


def test_a_hashed_name_is_the_content_digest_before_the_suffix() -> None:
    digest = hashlib.sha256(b"body{}").hexdigest()[:12]
    assert hashed_name("css/site.css", b"body{}") == f"css/site.{digest}.css"
    assert hashed_name("vendor/x/LICENSE", b"MIT") == f"vendor/x/LICENSE.{hashlib.sha256(b'MIT').hexdigest()[:12]}"
    assert hashed_name("css/site.css", b"body{}") != hashed_name("css/site.css", b"body{ }")


def test_build_writes_a_hashed_copy_beside_each_file_and_the_manifest(tmp_path: Path) -> None:
    static = make_static(tmp_path, {"css/site.css": b"body{}", "vendor/ui/ui.js": b"ui()"})
    manifest_path = tmp_path / "static-manifest.json"

    manifest = build(static, manifest_path)

    assert set(manifest) == {"css/site.css", "vendor/ui/ui.js"}
    assert re.fullmatch(r"css/site\.[0-9a-f]{12}\.css", manifest["css/site.css"])
    for original, hashed in manifest.items():
        assert (static / hashed).read_bytes() == (static / original).read_bytes()
    assert load_manifest(manifest_path) == manifest
    assert json.loads(manifest_path.read_text()) == manifest

    assert build(static, manifest_path) == manifest, "a second run hashes the originals only"


def test_no_manifest_is_an_empty_one_and_a_malformed_one_an_error(tmp_path: Path) -> None:
    assert load_manifest(tmp_path / "missing.json") == {}
    (tmp_path / "bad.json").write_text('["css/site.css"]')
    with pytest.raises(ValueError, match="manifest"):
        load_manifest(tmp_path / "bad.json")


def test_publish_adds_the_hashed_files_and_keeps_those_of_older_images(tmp_path: Path) -> None:
    volume = tmp_path / "volume"
    old_static = make_static(tmp_path / "old", {"css/site.css": b"old{}"})
    old = build(old_static, tmp_path / "old.json")
    new_static = make_static(tmp_path / "new", {"css/site.css": b"new{}", "js/app.js": b"app()"})
    new = build(new_static, tmp_path / "new.json")

    assert publish(old_static, old, volume) == 1
    assert publish(new_static, new, volume) == 2
    assert publish(new_static, new, volume) == 0, "a replica of the same image adds nothing"

    assert (volume / old["css/site.css"]).read_bytes() == b"old{}", "pages of old replicas still find theirs"
    assert (volume / new["css/site.css"]).read_bytes() == b"new{}"
    assert (volume / new["js/app.js"]).read_bytes() == b"app()"
    published = sorted(p.relative_to(volume).as_posix() for p in volume.rglob("*") if p.is_file())
    assert published == sorted([old["css/site.css"], *new.values()]), "hashed names only, no leftovers"
    assert stat.S_IMODE((volume / new["js/app.js"]).stat().st_mode) == 0o644, "readable by nginx's user"


def test_publish_never_rewrites_a_file_already_there(tmp_path: Path) -> None:
    static = make_static(tmp_path, {"css/site.css": b"body{}"})
    manifest = build(static, tmp_path / "m.json")
    volume = tmp_path / "volume"
    (volume / "css").mkdir(parents=True)
    (volume / manifest["css/site.css"]).write_bytes(b"published by another replica")

    assert publish(static, manifest, volume) == 0
    assert (volume / manifest["css/site.css"]).read_bytes() == b"published by another replica"


def app_with_manifest(tmp_path: Path, manifest: dict[str, str] | None) -> Flask:
    app = Flask(__name__)
    path = tmp_path / "static-manifest.json"
    if manifest is not None:
        path.write_text(json.dumps(manifest))
    init_static_assets(app, path)
    return app


def test_url_for_static_gives_the_hashed_name_from_the_manifest(tmp_path: Path) -> None:
    app = app_with_manifest(tmp_path, {"css/site.css": "css/site.0123456789ab.css"})
    with app.test_request_context():
        assert url_for("static", filename="css/site.css") == "/static/css/site.0123456789ab.css"
        assert url_for("static", filename="css/other.css") == "/static/css/other.css", "not in the manifest"


def test_without_a_manifest_url_for_static_gives_plain_names(tmp_path: Path) -> None:
    app = app_with_manifest(tmp_path, None)
    with app.test_request_context():
        assert url_for("static", filename="css/site.css") == "/static/css/site.css"


def test_pages_and_the_api_docs_link_the_hashed_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The layout's stylesheet and the Swagger UI files, in the real app (no service reached)."""
    swagger = [f"vendor/swagger-ui/swagger-ui{name}" for name in (".css", "-bundle.js", "-standalone-preset.js")]
    swagger.append("js/swagger-ui-init.js")  # ours: starts Swagger UI (no inline script)
    manifest = {name: hashed_name(name, b"fake") for name in ["css/site.css", *swagger]}
    (tmp_path / "static-manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(static_assets, "manifest_path_of", lambda app: tmp_path / "static-manifest.json")
    client = offline_app().test_client()

    error_page = client.get("/no-such-page").get_data(as_text=True)
    assert f'<link rel="stylesheet" href="/static/{manifest["css/site.css"]}">' in error_page

    docs = client.get("/api/v1/docs").get_data(as_text=True)
    assets = sorted(re.findall(r'(?:src|href)="([^"]+)"', docs))
    assert assets == sorted(f"/static/{manifest[name]}" for name in swagger)


def test_the_app_serves_the_hashed_copies_it_links(tmp_path: Path) -> None:
    """What nginx falls back to: a replica serves the hashed names of its own image."""
    app = offline_app()
    manifest = app.extensions["static_manifest"]
    if not manifest:
        pytest.skip("no manifest: the tests run from the source tree, not from the image")
    client = app.test_client()
    with app.test_request_context():
        href = url_for("static", filename="css/site.css")
    assert href == f"/static/{manifest['css/site.css']}"
    hashed, plain = client.get(href), client.get("/static/css/site.css")
    assert hashed.status_code == plain.status_code == 200
    assert hashed.data == plain.data
    hashed.close()
    plain.close()
