"""`make dev` and back: run by `scripts/test.sh dev` (not part of `make test`), never by hand on
your own tree.

The suite starts `make dev` in a throwaway copy of the tree (DEV_SOURCE), in the test project,
and runs this module with DEV_MODE=development: a template and a view are changed in that copy
and must be served, without a rebuild, within RELOAD_LIMIT seconds (the measured times are
printed). Then it runs `make up` in the copy and this module again with DEV_MODE=production:
the same stack is back in production (the runtime image, which lacks the toolbar entirely).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.stack import BASE_URL, PROJECT, compose, container_ids, inspect, setting

MODE = os.environ.get("DEV_MODE", "")
if MODE not in {"development", "production"} or not PROJECT:
    pytest.skip("run by `scripts/test.sh dev` (DEV_MODE, COMPOSE_PROJECT_NAME)", allow_module_level=True)

#: What the issue promises: a change is served within this many seconds.
RELOAD_LIMIT = 5.0
TOOLBAR_MARK = 'id="flDebug"'
APP_SERVICES = ("web", "worker", "beat")
development = pytest.mark.skipif(MODE != "development", reason="DEV_MODE=development only")
production = pytest.mark.skipif(MODE != "production", reason="DEV_MODE=production only")


def source() -> Path:
    path = Path(os.environ.get("DEV_SOURCE", ""))
    if not (path / "app").is_dir() or path.resolve() == Path(__file__).resolve().parents[2]:
        pytest.fail("DEV_SOURCE must be a throwaway copy of the tree (scripts/test.sh dev makes one)")
    return path


def get(path: str) -> requests.Response:
    return requests.get(BASE_URL + path, timeout=10)


def seconds_until(condition: Callable[[], bool], deadline: float = 30.0) -> float:
    """How long until ``condition()`` holds (polled every 200 ms: a page with the toolbar costs
    the CPU the restarting worker needs); fails after ``deadline`` s."""
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        try:
            if condition():
                return time.monotonic() - started
        except requests.RequestException:
            pass  # a worker restarting: keep polling
        time.sleep(0.2)
    pytest.fail(f"not served within {deadline:.0f} s")


@pytest.fixture
def edited() -> Iterator[Callable[[str, Callable[[str], str]], None]]:
    """edit(relative_path, change): rewrite a file of the copy; every file is restored afterwards."""
    originals: dict[Path, str] = {}

    def edit(relative: str, change: Callable[[str], str]) -> None:
        path = source() / relative
        text = originals.setdefault(path, path.read_text())
        changed = change(text)
        assert changed != text, f"the edit of {relative} changed nothing"
        path.write_text(changed)

    yield edit
    for path, text in originals.items():
        path.write_text(text)


def image_of(service: str) -> set[str]:
    return {inspect(cid)["Config"]["Image"] for cid in container_ids(service)}


@development
def test_the_app_runs_the_dev_image_in_development() -> None:
    app_image = setting("APP_IMAGE", "newsdesk-app:latest")
    for service in APP_SERVICES:
        assert image_of(service) == {f"{app_image}-dev"}, service
        env = inspect(container_ids(service)[0])["Config"]["Env"]
        assert "APP_ENV=development" in env, service


@development
def test_pages_carry_the_toolbar_and_are_not_cached() -> None:
    for _ in range(2):  # the second would be a hit if anything cached it
        response = get("/")
        assert response.status_code == 200
        assert TOOLBAR_MARK in response.text
        assert response.headers["X-Cache"] == "miss"
    assert get("/_debug_toolbar/static/js/toolbar.js").status_code == 200


@development
def test_redirects_are_not_intercepted() -> None:
    response = requests.get(BASE_URL + "/write", timeout=10, allow_redirects=False)
    assert response.status_code == 302


@development
def test_a_changed_template_is_served_without_a_rebuild(edited: Callable, capsys: pytest.CaptureFixture) -> None:
    marker = f"devcheck-template-{uuid.uuid4().hex}"
    edited("app/templates/base.html", lambda text: text.replace("</body>", f"<!-- {marker} --></body>", 1))
    took = seconds_until(lambda: marker in get("/").text)
    with capsys.disabled():
        print(f"\n  a changed template was served after {took:.2f} s")
    assert took <= RELOAD_LIMIT


@development
def test_a_changed_view_is_served_without_a_rebuild(edited: Callable, capsys: pytest.CaptureFixture) -> None:
    token = uuid.uuid4().hex
    view = f'\n\n@bp.get("/devcheck-{token}")\ndef devcheck_{token}() -> str:\n    return "view {token}"\n'
    edited("app/web/pages.py", lambda text: text + view)
    took = seconds_until(lambda: get(f"/devcheck-{token}").text == f"view {token}")
    with capsys.disabled():
        print(f"\n  a changed view was served after {took:.2f} s")
    assert took <= RELOAD_LIMIT


@development
def test_the_worker_restarts_on_a_code_change(edited: Callable) -> None:
    (worker,) = container_ids("worker")[:1]

    def restarts() -> int:
        return compose("logs", "--no-log-prefix", "worker").stdout.count("celery@")

    before = restarts()
    edited("worker/__init__.py", lambda text: text + "\n# devcheck\n")
    seconds_until(lambda: restarts() > before, deadline=60)
    assert inspect(worker)["State"]["Running"], "watchfiles restarts Celery inside the same container"


@production
def test_make_up_brings_production_back() -> None:
    app_image = setting("APP_IMAGE", "newsdesk-app:latest")
    for service in APP_SERVICES:
        assert image_of(service) == {app_image}, service
        env = inspect(container_ids(service)[0])["Config"]["Env"]
        assert "APP_ENV=development" not in env, service
        mounts = inspect(container_ids(service)[0])["Mounts"]
        assert not [m for m in mounts if m["Type"] == "bind" and m["Destination"].startswith("/srv/app")], service
    for _ in range(3):
        response = get("/")
        assert response.status_code == 200
        assert TOOLBAR_MARK not in response.text
    assert response.headers["X-Cache"] in {"hit", "shared"}, "the page cache is on again"
    assert get("/_debug_toolbar/static/js/toolbar.js").status_code == 404
    missing = compose("exec", "-T", "web", "python", "-c", "import flask_debugtoolbar", check=False)
    assert missing.returncode != 0, "the production image has no debug toolbar at all"
