"""The models being served, champion and challenger: loading them, putting them in place and
replacing them on request."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from ..errors import ModelLoadError
from ..registry.artifact import REGISTRY_SCHEMES, ServingModel, load_serving_model
from ..registry.cache import cached_export, incoming_folder, store
from ..settings import Settings
from .metrics import Metrics
from .rollout import CHALLENGER, CHAMPION
from .schemas import example_record

log = logging.getLogger(__name__)


class ReloadRefused(Exception):
    """A model given for a reload did not load or answer: the current one stays."""


class PullStopped(ModelLoadError):
    """The pull's process was stopped by a signal (the service shutting down, or Ctrl-C
    reaching its process group): nothing is known about the registry."""


def pull(source: str, settings: Settings) -> Path:
    """Pull a registry URI's export into the cache, in a separate process, so that this one
    never imports MLflow; the folder of the version it names now."""
    incoming = incoming_folder(source, settings)
    command = [sys.executable, "-m", __package__.split(".")[0], "pull", source, str(incoming)]
    try:  # this interpreter and package; the URI is one argument, never seen by a shell
        result = subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, timeout=600, check=False
        )
        if result.returncode < 0:
            raise PullStopped(f"pulling '{source}' was stopped by signal {-result.returncode}")
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
            raise ModelLoadError(f"cannot pull '{source}': {lines[-1]}")
        return store(incoming)
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


def fetch(source: str, settings: Settings, use_cache: bool = False) -> tuple[Path, bool]:
    """A local export folder for `source`, and whether it is an earlier pull: registry URIs are
    pulled, unless `use_cache` and a pull of it is on disk already."""
    if not source.startswith(REGISTRY_SCHEMES):
        return Path(source), False
    if use_cache and (folder := cached_export(source, settings)) is not None:
        return folder, True
    return pull(source, settings), False


def load(source: str, settings: Settings, use_cache: bool = False) -> ServingModel:
    """Fetch and load a model, then prove it answers the contract's example record.

    With `use_cache`, a registry URI pulled before loads from disk at once (the service is
    ready in about a second instead of the ten an MLflow import costs); `ModelHolder.refresh`
    then asks the registry whether the alias moved.
    """
    folder, cached = fetch(source, settings, use_cache)
    return load_folder(folder, source, settings, cached)


def load_folder(
    folder: Path, source: str, settings: Settings, cached: bool = False
) -> ServingModel:
    """Load the export in `folder` (fetched for `source`) and prove it answers."""
    model = load_serving_model(folder, settings.serving_backend)
    model.source, model.from_cache = source, cached
    model.predict_records([example_record()])
    return model


class ModelHolder:
    """The champion, and in a rollout mode the challenger, that the service answers with.

    Until the champion is in place (given, or loaded in the background), `champion` is None
    and `/ready` answers 503 with `load_error` as the reason once loading failed.
    """

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.champion: ServingModel | None = None
        self.challenger: ServingModel | None = None
        self.load_error: str | None = None
        self.challenger_error: str | None = None
        self._reload_lock = asyncio.Lock()

    def install(self, loaded: ServingModel, variant: str = CHAMPION) -> None:
        """Put `loaded` in place of the champion or the challenger, and say so."""
        if variant == CHAMPION:
            self.champion = loaded
            self.metrics.model_loaded.set(1)
        else:
            self.challenger = loaded
            self.metrics.challenger_loaded.set(1)
        manifest = loaded.manifest
        self.metrics.model.labels(variant).info(
            {
                "name": str(manifest.get("name")),
                "version": str(manifest.get("version")),
                "backend": loaded.backend,
            }
        )
        log.info(
            "serving %s: %s version %s from %s with %s%s",
            variant,
            manifest.get("name"),
            manifest.get("version"),
            loaded.folder,
            loaded.backend,
            f" ({loaded.reason})" if loaded.reason else "",
        )

    def start_loading(self) -> None:
        """Load the configured models that are not in place yet, on a thread of their own: the
        champion, and in a rollout mode the challenger (until it loads, the champion answers)."""
        champion = self.champion is None
        challenger = self.settings.rollout_mode != "single" and self.challenger is None
        if champion or challenger:
            threading.Thread(
                target=self._load_in_background, args=(champion, challenger), daemon=True
            ).start()

    def start_refresh(self) -> None:
        """When the champion came from an earlier pull, ask the registry on a thread of its own
        whether the alias moved since, and swap the new version in if it did."""
        if self.champion is not None and self.champion.from_cache:
            threading.Thread(target=self.refresh, args=(self.champion,), daemon=True).start()

    def refresh(self, served: ServingModel) -> None:
        """Pull `served`'s source again; install what it names now if that is another version
        and no reload replaced `served` meanwhile. A registry out of reach changes nothing."""
        try:
            folder, _ = fetch(served.source, self.settings)
            if folder == served.folder:
                log.info(
                    "the registry still names version %s for %s", served.version, served.source
                )
                return
            candidate = load_folder(folder, served.source, self.settings)
        except PullStopped as error:
            log.info("%s; serving version %s", error, served.version)
            return
        except Exception as error:
            log.warning("serving version %s from an earlier pull: %s", served.version, error)
            return
        if self.champion is served:
            self.install(candidate)

    def _load_in_background(self, champion: bool, challenger: bool) -> None:
        if champion:
            try:
                self.install(load(self.settings.model_source, self.settings, use_cache=True))
                self.start_refresh()
            except Exception as error:
                self.load_error = str(error)
                log.error("the model could not be loaded: %s", error)
        if challenger:
            try:
                self.install(load(self.settings.challenger_uri, self.settings), CHALLENGER)
            except Exception as error:  # the champion answers alone meanwhile
                self.challenger_error = str(error)
                log.error("the challenger could not be loaded, the champion answers: %s", error)

    async def reload(self, source: str, variant: str) -> tuple[ServingModel | None, ServingModel]:
        """Load `source` and put it in place of `variant` only if it loads and answers; the
        previous model and the new one. `ReloadRefused` otherwise, the current model kept."""
        async with self._reload_lock:
            previous = self.champion if variant == CHAMPION else self.challenger
            try:
                candidate = await run_in_threadpool(load, source, self.settings)
            except Exception as error:
                log.error("reload of %s refused: %s", source, error)
                raise ReloadRefused(
                    f"the model at '{source}' was not loaded ({error}); "
                    f"still serving version {previous.version if previous else None}"
                ) from None
            self.install(candidate, variant)
        return previous, candidate
