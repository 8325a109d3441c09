"""The lake on a local disk: landing files, run-scoped staging, the published manifest.

    <lake>/<source>/landing/*          uploads, one JSON object per line
    <lake>/runs/<run id>/<table>/      Parquet written by one run (its staging)
    <lake>/published.json              which run each reader sees, and the last few before it

Publishing is one atomic rename of published.json, so readers see either the
previous tables or the new ones, never a mix; a failed or interrupted run
never touches it.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from stedi.stages import SOURCES

KEEP_PUBLISHED = 3


def next_manifest(previous: dict | None, run: dict) -> dict:
    """The manifest that publishes `run`: it becomes current, and the last few before it stay as history."""
    history = [] if previous is None else [previous["current"], *previous["history"]]
    return {"current": run, "history": history[: KEEP_PUBLISHED - 1]}


def kept_runs(manifest: dict) -> set[str]:
    """The runs whose staging a manifest still needs: every other run's staging can be deleted."""
    return {entry["run_id"] for entry in [manifest["current"], *manifest["history"]]}


class LakeError(Exception):
    """The lake cannot be used as asked; the message says why."""


@dataclass(frozen=True)
class Lake:
    root: Path

    @property
    def manifest_path(self) -> Path:
        return self.root / "published.json"

    def landing_dir(self, source: str) -> Path:
        return self.root / source / "landing"

    def landing_files(self, source: str) -> list[Path]:
        """The uploaded files of a source, as Spark lists them (hidden and _-prefixed files skipped)."""
        folder = self.landing_dir(source)
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith((".", "_")))

    def has_landing_data(self) -> bool:
        return any(self.landing_files(source) for source in SOURCES)

    def require_landing_data(self) -> dict[str, list[Path]]:
        files = {source: self.landing_files(source) for source in SOURCES}
        missing = [str(self.landing_dir(source)) for source, found in files.items() if not found]
        if missing:
            raise LakeError("no landing files in " + ", ".join(missing))
        return files

    def new_run(self) -> tuple[str, Path]:
        run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        staging = self.root / "runs" / run_id
        staging.mkdir(parents=True)
        return run_id, staging

    def staging(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def published(self) -> dict | None:
        """The manifest of the published run, or None before the first publish."""
        if not self.manifest_path.exists():
            return None
        return json.loads(self.manifest_path.read_text())

    def publish(self, run: dict) -> None:
        """Make `run` (its run_id, tables and figures) what readers see; keep the last few."""
        manifest = next_manifest(self.published(), run)
        temporary = self.manifest_path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(temporary, self.manifest_path)
        self._prune(keep=kept_runs(manifest))

    def _prune(self, keep: set[str]) -> None:
        """Delete the staging of runs that are neither published nor kept as history."""
        runs = self.root / "runs"
        for folder in runs.iterdir():
            if folder.name not in keep:
                shutil.rmtree(folder, ignore_errors=True)

    def published_table_dir(self, table: str) -> Path:
        manifest = self.published()
        if manifest is None:
            raise LakeError(f"nothing is published in {self.root} yet: run `stedi run --lake {self.root}`")
        return self.staging(manifest["current"]["run_id"]) / table
