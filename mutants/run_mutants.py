"""`make mutants`: apply each mutant of mutants.py to a scratch copy of the project and run its tests.

For each mutant: copy the project (without .git, the virtualenvs and the
lake) to a temporary folder, make the mutant's replacements, regenerate what
`make generate` derives (the DuckDB SQL, the Glue script, the state machine),
then run the mutant's tests there with the project's virtualenv, in order,
stopping at the first failure. A mutant is caught when a test fails (or the
tests hang past the timeout, or regeneration refuses it), and survives when
every test passes. Before any mutant, every mutant's replacements are checked
against the project (each `old` text exactly once in its file) and the tests
are run once on an unmutated copy: they must pass there, or no catch means
anything.

    python mutants/run_mutants.py                  every mutant, its own tests (about half an hour)
    python mutants/run_mutants.py --only ID,ID     some of them
    python mutants/run_mutants.py --full           each against the whole fast tier (much slower)
    python mutants/run_mutants.py --list           the list, checked against the project, nothing run

Exit status: 0 when every mutant run was caught, 1 when one survived, 2 when
the list does not fit the project or the unmutated tests fail.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mutants import MUTANTS, Mutant

REPO = Path(__file__).resolve().parents[1]
PYTHON = REPO / ".venv" / "bin" / "python"
NOT_COPIED = (".git", ".venv", ".venv-sam", "node_modules", "lake", ".pytest_cache", ".ruff_cache", "__pycache__",
              "*.egg-info", ".aws-sam")
FAST_TIER = ["-m", "not spark and not aws_tools"]
FIRST_FAILURE = re.compile(r"^(FAILED|ERROR) (.+?)(?: - |$)", re.MULTILINE)


class ListDoesNotFit(Exception):
    """A mutant's text is not in the project exactly once."""


@dataclass
class Outcome:
    mutant: str
    verdict: str  # caught | survived | timeout | refused (regeneration failed)
    seconds: float
    detail: str  # the first failing test, or why

    @property
    def caught(self) -> bool:
        return self.verdict != "survived"


def check_fits(mutants: list[Mutant], root: Path) -> None:
    """Every replacement's text occurs exactly once in its file, or nothing runs."""
    problems = []
    for mutant in mutants:
        for edit in mutant.edits:
            path = root / edit.path
            found = path.read_text().count(edit.old) if path.is_file() else 0
            if found != 1:
                problems.append(f"{mutant.id}: {edit.path} holds its text {found} times, not once: {edit.old[:70]!r}")
    if problems:
        raise ListDoesNotFit("\n".join(problems))


def copy_project(source: Path, destination: Path) -> Path:
    """A copy of a project at <destination>/main, with ../shared (the starter data) linked beside it."""
    project = destination / "main"
    shutil.copytree(source, project, ignore=shutil.ignore_patterns(*NOT_COPIED), symlinks=True)
    if (REPO.parent / "shared").is_dir():
        (destination / "shared").symlink_to(REPO.parent / "shared", target_is_directory=True)
    return project


def environment(project: Path) -> dict[str, str]:
    """The copy's stedi before the one installed in the virtualenv, in the tests and in what they start."""
    return {**os.environ, "PYTHONPATH": str(project), "PYTHONDONTWRITEBYTECODE": "1"}


def regenerate(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(PYTHON), "-m", "stedi.codegen"], cwd=project, env=environment(project),
                          capture_output=True, text=True)


def pytest(project: Path, tests: list[str], *, parallel: bool, timeout: float) -> subprocess.CompletedProcess:
    """The tests, stopping at the first failure: in order on one core, or spread over every core."""
    spread = ["-n", "auto", "--dist", "worksteal"] if parallel else ["-p", "no:xdist"]
    command = [str(PYTHON), "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *spread, *FAST_TIER, *tests]
    return subprocess.run(command, cwd=project, env=environment(project), capture_output=True, text=True,
                          timeout=timeout)


def first_failure(result: subprocess.CompletedProcess) -> str:
    summary = result.stdout.rpartition("short test summary info")[2]  # not a captured log line saying ERROR
    found = FIRST_FAILURE.search(summary)
    if found:
        return found.group(2)
    lines = (result.stdout + result.stderr).strip().splitlines()
    return f"exit {result.returncode}: {lines[-1] if lines else 'no output'}"


def run_mutant(mutant: Mutant, unmutated: Path, tests: list[str], scratch: Path, timeout: float) -> Outcome:
    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix=f"{mutant.id}-", dir=scratch))
    try:
        project = copy_project(unmutated, folder)
        for edit in mutant.edits:
            path = project / edit.path
            path.write_text(path.read_text().replace(edit.old, edit.new))
        generated = regenerate(project)
        if generated.returncode != 0:
            return Outcome(mutant.id, "refused", time.perf_counter() - started,
                           "make generate refused it: " + generated.stderr.strip().splitlines()[-1])
        for edit in mutant.edits:  # a mutant of a generated file would be undone by regenerating
            if edit.new and edit.new not in (project / edit.path).read_text():
                raise ListDoesNotFit(f"{mutant.id}: regenerating undid the change to {edit.path}")
        try:
            result = pytest(project, tests, parallel=False, timeout=timeout)
        except subprocess.TimeoutExpired:
            return Outcome(mutant.id, "timeout", time.perf_counter() - started, f"tests still running after {timeout}s")
        seconds = time.perf_counter() - started
        if result.returncode == 0:
            return Outcome(mutant.id, "survived", seconds, "every test passed")
        if result.returncode == 5:
            raise ListDoesNotFit(f"{mutant.id}: no test ran: {' '.join(tests)}")
        return Outcome(mutant.id, "caught", seconds, first_failure(result))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated mutant ids")
    parser.add_argument("--full", action="store_true", help="run the whole fast tier against every mutant")
    parser.add_argument("--list", action="store_true", help="print the mutants, checked against the project")
    parser.add_argument("--timeout", type=float, default=900, help="seconds a mutant's tests may take (default 900)")
    parser.add_argument("--json", type=Path, help="also write the outcomes to this file")
    args = parser.parse_args(argv)

    chosen = list(MUTANTS)
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - {m.id for m in MUTANTS})
        if unknown:
            parser.error(f"no mutant {', '.join(unknown)}")
        chosen = [m for m in MUTANTS if m.id in wanted]
    try:
        check_fits(chosen, REPO)
    except ListDoesNotFit as error:
        print(f"the mutant list does not fit the project:\n{error}", file=sys.stderr)
        return 2
    if args.list:
        for mutant in chosen:
            print(f"{mutant.id:<42} {', '.join(sorted({e.path for e in mutant.edits}))}\n    {mutant.breaks}")
        return 0

    def tests_of(mutant: Mutant) -> list[str]:
        return ["tests"] if args.full else list(mutant.tests)

    with tempfile.TemporaryDirectory(prefix="stedi-mutants-") as scratch:
        # One copy of the project as it is now (others may be editing it), which must pass every test a mutant
        # is run against; each mutant is made from it.
        everything = sorted({test for mutant in chosen for test in tests_of(mutant)})
        started = time.perf_counter()
        unmutated = copy_project(REPO, Path(tempfile.mkdtemp(dir=scratch)))
        try:
            check_fits(chosen, unmutated)
        except ListDoesNotFit as error:
            print(f"the mutant list does not fit the project:\n{error}", file=sys.stderr)
            return 2
        if regenerate(unmutated).returncode != 0:
            print("make generate fails on the unmutated project", file=sys.stderr)
            return 2
        result = pytest(unmutated, everything, parallel=True, timeout=args.timeout)
        if result.returncode != 0:
            print(f"the unmutated project fails its tests ({first_failure(result)}):\n{result.stdout[-3000:]}",
                  file=sys.stderr)
            return 2
        print(f"unmutated: {' '.join(everything)} pass ({time.perf_counter() - started:.0f}s)", flush=True)

        outcomes = []
        for number, mutant in enumerate(chosen, start=1):
            try:
                outcome = run_mutant(mutant, unmutated, tests_of(mutant), Path(scratch), args.timeout)
            except ListDoesNotFit as error:
                print(f"the mutant list does not fit the project: {error}", file=sys.stderr)
                return 2
            outcomes.append(outcome)
            print(f"[{number}/{len(chosen)}] {outcome.verdict:<8} {outcome.mutant:<42} {outcome.seconds:5.0f}s  "
                  f"{outcome.detail}", flush=True)

    caught = sum(outcome.caught for outcome in outcomes)
    total = sum(outcome.seconds for outcome in outcomes)
    print(f"\nmutation score: {caught}/{len(outcomes)} caught ({total / 60:.1f} min of mutant tests)")
    for outcome in outcomes:
        if not outcome.caught:
            print(f"  SURVIVED {outcome.mutant}: {next(m.breaks for m in chosen if m.id == outcome.mutant)}")
    if args.json:
        args.json.write_text(json.dumps([vars(outcome) for outcome in outcomes], indent=2) + "\n")
    return 0 if caught == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
