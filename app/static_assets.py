"""Static files under content-hashed names, so that nginx can let browsers keep them forever.

Three moments, one manifest (``{"css/site.css": "css/site.3f9a1c2b4d5e.css", ...}``):

- **image build** (``python -m app.static_assets build``, in the Dockerfile): next to every file
  of the static folder, a copy named after its content (``site.<12 hex of sha256>.css``), and
  the manifest beside the folder (``app/static-manifest.json``, not itself served).
- **container start** (``python -m app.static_assets publish DIR``, before gunicorn): the hashed
  copies are added to DIR, the ``static`` volume that nginx serves ``/static/`` from. Additive:
  files of older images stay, so a page rendered by an old replica during a rolling deploy still
  finds its stylesheet. Each file appears by an atomic rename, so nginx never reads half of one.
- **app start** (``init_static_assets``): the manifest is read once, and ``url_for('static',
  filename='css/site.css')`` gives the hashed URL. Without a manifest (development, tests run
  from the source tree) URLs keep their plain names. The app still serves every file, hashed
  or not, itself: nginx falls back to it for a name the volume lacks.

Flask is only a type here (nothing of the app is imported but its JSON logging): publishing runs
at every container start, in well under a second.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger("app.static_assets")  # also when run as __main__

#: The manifest's name, in the package beside the static folder (so not under /static/).
MANIFEST_NAME = "static-manifest.json"
HASH_LENGTH = 12


def hashed_name(relative: str, content: bytes) -> str:
    """``css/site.css`` -> ``css/site.<hash>.css`` (``LICENSE`` -> ``LICENSE.<hash>``)."""
    path = Path(relative)
    digest = hashlib.sha256(content).hexdigest()[:HASH_LENGTH]
    return path.with_name(f"{path.stem}.{digest}{path.suffix}").as_posix()


def build(static_dir: Path, manifest_path: Path) -> dict[str, str]:
    """Write a hashed copy of every file under ``static_dir`` beside it, and the manifest.

    Run again, it leaves the copies of the previous run out (they are in its manifest).
    """
    previous = set(load_manifest(manifest_path).values())
    manifest: dict[str, str] = {}
    for path in sorted(p for p in static_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(static_dir).as_posix()
        if relative in previous:
            continue
        target = hashed_name(relative, path.read_bytes())
        shutil.copyfile(path, static_dir / target)
        manifest[relative] = target
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def load_manifest(path: Path) -> dict[str, str]:
    """The manifest at ``path``, or an empty one if there is none (development)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"{path} is not a static-file manifest")
    return data


def publish(static_dir: Path, manifest: Mapping[str, str], target_dir: Path) -> int:
    """Add the hashed files of ``manifest`` that ``target_dir`` lacks; return how many were added.

    Never removes or rewrites a file (a name is its content): replicas of several images share
    the directory. A file is written under a temporary name and renamed into place, so a reader
    sees all of it or nothing, and replicas starting together do not trip over each other.
    """
    added = 0
    for name in sorted(set(manifest.values())):
        destination = target_dir / name
        if destination.exists():
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=".publishing-")
        try:
            with os.fdopen(handle, "wb") as out, (static_dir / name).open("rb") as source:
                shutil.copyfileobj(source, out)
            os.chmod(temporary, 0o644)  # nginx reads it as another user
            os.replace(temporary, destination)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        added += 1
    return added


class HashedStaticURLs:
    """A ``url_defaults`` callback: ``filename`` of the ``static`` endpoint -> its hashed name."""

    def __init__(self, manifest: Mapping[str, str]) -> None:
        self.manifest = dict(manifest)

    def __call__(self, endpoint: str, values: dict[str, Any]) -> None:
        if endpoint == "static" and "filename" in values:
            values["filename"] = self.manifest.get(values["filename"], values["filename"])


def manifest_path_of(app: Flask) -> Path:
    return Path(app.root_path) / MANIFEST_NAME


def init_static_assets(app: Flask, manifest_path: Path | None = None) -> None:
    """Make ``url_for('static', ...)`` link hashed names, if the image has a manifest."""
    manifest = load_manifest(manifest_path or manifest_path_of(app))
    app.extensions["static_manifest"] = manifest
    if manifest:
        app.url_defaults(HashedStaticURLs(manifest))


def main(argv: list[str] | None = None) -> int:
    package = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(prog="python -m app.static_assets", description=__doc__.splitlines()[0])
    parser.add_argument("--static-dir", type=Path, default=package / "static")
    parser.add_argument("--manifest", type=Path, default=package / MANIFEST_NAME)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="write the hashed copies and the manifest (image build)")
    publish_cmd = commands.add_parser("publish", help="add the hashed files to a directory (container start)")
    publish_cmd.add_argument("target", type=Path, help="the directory nginx serves /static/ from")
    args = parser.parse_args(argv)

    from app.logs import configure_logging  # JSON lines, as every other log of the stack

    configure_logging()
    if args.command == "build":
        manifest = build(args.static_dir, args.manifest)
        log.info("static files hashed", extra={"files": len(manifest), "manifest": str(args.manifest)})
        return 0
    manifest = load_manifest(args.manifest)
    if not manifest:
        log.warning("no static-file manifest: nothing to publish", extra={"manifest": str(args.manifest)})
        return 0
    added = publish(args.static_dir, manifest, args.target)
    log.info("static files published", extra={"added": added, "files": len(manifest), "target": str(args.target)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
