"""The lake on a local disk: landing files, run-scoped staging, the published manifest.

    <lake>/<source>/landing/*          uploads, one JSON object per line
    <lake>/runs/<run id>/<table>/      Parquet written by one run (its staging)
    <lake>/published.json              which run each reader sees, and the last few before it
    <lake>/history/<run id>.parquet    every run's figures, published or not (stedi history)
    <lake>/.stedi-run.lock             held by the run in progress: one run per lake at a time

Publishing is one atomic rename of published.json, so readers see either the
previous tables or the new ones, never a mix; a failed or interrupted run
never touches it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from stedi.catalogue import SOURCE, SOURCES

KEEP_PUBLISHED = 3
Snapshot = dict[str, list[Path]]  # landing folder -> the files a run reads from it


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def next_manifest(previous: dict | None, run: dict) -> dict:
    """The manifest that publishes `run`: it becomes current, and the last few before it stay as history."""
    history = [] if previous is None else published_entries(previous)
    return {"current": run, "history": history[: KEEP_PUBLISHED - 1]}


def published_entries(manifest: dict) -> list[dict]:
    """A manifest's published runs, newest first: the current one, then those kept as history."""
    return [manifest["current"], *manifest["history"]]


def kept_runs(manifest: dict) -> set[str]:
    """The published runs whose staging a manifest still needs."""
    return {entry["run_id"] for entry in published_entries(manifest)}


def oldest_kept(previous: dict | None, manifest: dict) -> str | None:
    """The oldest of the published runs `manifest` keeps, if publishing it let one of `previous`'s go; else None.
    A run that failed after that one is kept too, so that its tables can be looked into as long as a published
    run older than it is kept; a run that failed before the first publish, as long as that publish is kept."""
    let_go = previous is not None and kept_runs(previous) - kept_runs(manifest)
    return published_entries(manifest)[-1]["run_id"] if let_go else None


class LakeError(Exception):
    """The lake cannot be used as asked; the message says why."""


class LakeBusy(LakeError):
    """Another run holds the lake."""


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        return True
    return True


@dataclass(frozen=True)
class Lake:
    root: Path

    @property
    def manifest_path(self) -> Path:
        return self.root / "published.json"

    def landing_dir(self, source: str) -> Path:
        return self.root / SOURCE[source].landing_folder

    def landing_files(self, source: str) -> list[Path]:
        return self.files_in(SOURCE[source].landing_folder)

    def files_in(self, folder_name: str) -> list[Path]:
        """The uploads in a folder, as Spark lists them (hidden and _-prefixed entries skipped).

        Anything else that is not a readable file is refused by name rather than skipped unseen.
        """
        folder = self.root / folder_name
        if not folder.is_dir():
            return []
        files = []
        for path in sorted(folder.iterdir()):
            if path.name.startswith((".", "_")):
                continue
            if path.is_dir():
                raise LakeError(f"{path} is a folder inside a landing folder: uploads are files; move it out")
            if not path.is_file():
                raise LakeError(f"{path} cannot be read (a broken link?): remove it or fix the link")
            files.append(path)
        return files

    def snapshot(self) -> Snapshot:
        """Every source's uploads by landing folder, listed once: a run reads these files and no others,
        so a file that lands while it works waits for the next run."""
        if not self.root.exists():
            raise LakeError(f"lake {self.root} does not exist: make a sample with `stedi generate --lake {self.root}`")
        if not self.root.is_dir():
            raise LakeError(f"lake {self.root} is not a folder")
        files = {source: self.landing_files(source) for source in SOURCES}
        missing = [str(self.landing_dir(source)) for source, found in files.items() if not found]
        if len(missing) == len(SOURCES):
            raise LakeError(f"lake {self.root} has no landing files (<source>/landing/*): "
                            f"make a sample with `stedi generate --lake {self.root}`")
        if missing:
            raise LakeError("no landing files in " + ", ".join(missing))
        return {SOURCE[source].landing_folder: found for source, found in files.items()}

    @property
    def history_dir(self) -> Path:
        """One Parquet file per run, published or not: its checks and record accounting."""
        return self.root / "history"

    @property
    def lock_path(self) -> Path:
        return self.root / ".stedi-run.lock"

    @contextmanager
    def locked(self, run_id: str) -> Iterator[None]:
        """Hold the lake for one run. A lock whose process has died on this machine is taken over."""
        holder = {"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
                  "since": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        for _ in range(3):  # a takeover that loses a race tries again
            try:
                descriptor = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_if_dead()
                continue
            with os.fdopen(descriptor, "w") as lock:
                json.dump(holder, lock)
            break
        else:
            raise LakeBusy(f"lake {self.root} is locked by {self.lock_path} and it could not be taken over")
        try:
            yield
        finally:
            self.lock_path.unlink(missing_ok=True)

    def _take_over_if_dead(self) -> None:
        try:
            holder = json.loads(self.lock_path.read_text())
        except FileNotFoundError:  # released meanwhile
            return
        except ValueError:  # written half-way by a process that died at once
            holder = {"pid": -1, "host": socket.gethostname(), "run_id": "?", "since": "?"}
        if holder.get("host") != socket.gethostname() or _process_alive(int(holder.get("pid", -1))):
            raise LakeBusy(f"lake {self.root} is in use by run {holder.get('run_id')} "
                           f"(process {holder.get('pid')} on {holder.get('host')}, since {holder.get('since')}); "
                           f"if no run is going on, delete {self.lock_path}")
        # Renaming is atomic: of two runs taking over the same dead lock, one renames it, the other retries.
        try:
            os.rename(self.lock_path, self.lock_path.with_name(f".stedi-run.lock.dead-{uuid.uuid4().hex}"))
        except FileNotFoundError:
            return
        for dead in self.root.glob(".stedi-run.lock.dead-*"):
            dead.unlink(missing_ok=True)

    def new_staging(self, run_id: str) -> Path:
        staging = self.staging(run_id)
        staging.mkdir(parents=True)
        return staging

    def staging(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def published(self) -> dict | None:
        """The manifest of the published run, or None before the first publish."""
        if not self.manifest_path.exists():
            return None
        return json.loads(self.manifest_path.read_text())

    def publish(self, run: dict) -> None:
        """Make `run` (its run_id, tables and figures) what readers see; keep the last few."""
        previous = self.published()
        manifest = next_manifest(previous, run)
        temporary = self.manifest_path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(temporary, self.manifest_path)
        self._prune(keep=kept_runs(manifest), oldest=oldest_kept(previous, manifest))

    def _prune(self, keep: set[str], oldest: str | None) -> None:
        """Delete the staging of runs that are neither kept nor ran after `oldest` (see oldest_kept); none
        while it is None. Run ids are start times, and runs run one at a time, so ids are in the order runs ran."""
        if oldest is None:
            return
        for folder in (self.root / "runs").iterdir():
            if folder.name not in keep and folder.name < oldest:
                shutil.rmtree(folder, ignore_errors=True)

    def published_staging(self) -> Path:
        """Where the published run's tables are."""
        manifest = self.published()
        if manifest is None:
            raise LakeError(f"nothing is published in {self.root} yet: run `stedi run --lake {self.root}`")
        return self.staging(manifest["current"]["run_id"])

    def run_staging(self, run_id: str) -> Path:
        """Where a run's tables are, published or not, while its staging is kept."""
        staging = self.staging(run_id)
        if "/" in run_id or run_id.startswith(".") or not staging.is_dir():
            kept = sorted(p.name for p in (self.root / "runs").glob("*") if p.is_dir())
            raise LakeError(f"no run {run_id!r} in {self.root}; runs kept: {', '.join(kept) or 'none'}")
        return staging
