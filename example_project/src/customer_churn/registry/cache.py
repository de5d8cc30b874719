"""The local cache of registry exports: a folder per version of each registry URI, and a file
naming the current one. The service serves from it at start; `promote` fills it with the
export training left on disk, which is what a pull would download."""

from __future__ import annotations

import json
import re
import shutil
import uuid
from pathlib import Path

from ..data.files import write_text
from ..settings import Settings
from .artifact import MANIFEST

CURRENT = "current"  # the file naming the version a registry URI was last pulled at
KEPT_VERSIONS = 2  # versions kept per registry URI: the current one and the one before


def registry_cache(source: str, settings: Settings) -> Path:
    """Where the versions pulled for a registry URI are kept, one folder each."""
    return settings.models_dir / "registry" / re.sub(r"[^A-Za-z0-9_.-]+", "_", source)


def cached_export(source: str, settings: Settings) -> Path | None:
    """The export last pulled for a registry URI, if it is still complete on disk."""
    pointer = registry_cache(source, settings) / CURRENT
    if not pointer.is_file():
        return None
    folder = pointer.parent / pointer.read_text().strip()
    return folder if (folder / MANIFEST).is_file() else None


def incoming_folder(source: str, settings: Settings) -> Path:
    """A fresh hidden folder in the cache, to pull or copy an export into before `store`."""
    cache = registry_cache(source, settings)
    cache.mkdir(parents=True, exist_ok=True)
    return cache / f".incoming-{uuid.uuid4().hex}"


def store(incoming: Path) -> Path:
    """Move a complete export from `incoming` into the folder of its version, make that the
    current one, and drop all but the version before it; the version's folder."""
    cache = incoming.parent
    version = json.loads((incoming / MANIFEST).read_text()).get("version") or "unversioned"
    folder = cache / f"version-{version}"
    if (folder / MANIFEST).is_file():
        shutil.rmtree(incoming, ignore_errors=True)
    else:
        shutil.rmtree(folder, ignore_errors=True)
        incoming.rename(folder)
    write_text(cache / CURRENT, folder.name)  # a reader sees the old version or the new one
    others = sorted(
        (path for path in cache.glob("version-*") if path != folder),
        key=lambda path: path.stat().st_mtime,
    )
    for old in others[: len(others) - (KEPT_VERSIONS - 1)]:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def seed(source: str, export: Path, version: str, settings: Settings) -> Path | None:
    """Put the local `export` in the cache of `source` when it is `version`'s export: what a
    pull of `source` would download, without the download. None when it is not."""
    manifest = export / MANIFEST
    if not manifest.is_file() or str(json.loads(manifest.read_text()).get("version")) != version:
        return None
    incoming = incoming_folder(source, settings)
    shutil.copytree(export, incoming)
    return store(incoming)
