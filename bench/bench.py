"""Wall time and peak memory of `stedi run` (both engines) and of the bare programs, against the targets.

    python bench/bench.py [--lakes starter,1,10,100] [--engines duckdb,bare_floor,spark,bare_spark]
                          [--runs 3] [--warmup 1] [--spark-100x-runs 1]

The bare floor (bench/bare_floor.py) is the plainest program that computes the
five published tables: the lower bound against which `stedi run` on DuckDB is
measured. The bare Spark script (bench/bare_spark.py) is the same in PySpark,
with the Spark engine's session settings: the lower bound for `stedi run` on
Spark.

Each measurement is one whole process, started and timed from here:

* wall time: perf_counter from Popen to the child's exit, collected with os.wait4;
* CPU time (user + system), less sensitive than wall time to other work on the
  machine: the larger of os.wait4's rusage (the child and the descendants it
  waited for) and the last sample of the whole process group's CPU time;
* peak memory: the larger of (a) ru_maxrss from os.wait4, the kernel's exact peak
  of the largest single process the child waited for, and (b) the highest sum of
  the resident set sizes of the processes in the child's process group.

Samples of the process group are read from /proc/<pid>/stat every 50 ms. They
matter for Spark: the JVM runs beside the Python driver, which never waits for
it, so os.wait4 sees neither its memory nor its CPU time.

Lakes: `starter` is the real starter data (--starter); a number is a lake
generated once with `stedi generate --scale N --seed 7` under
$BENCH_DIR/lakes (default /tmp/stedi-bench) and reused afterwards. Every
`stedi run` gets a fresh lake folder whose <source>/landing are symlinks to
the lake's, deleted after the run, so no earlier run's output is on disk.

Per engine and lake: warm-up runs (not counted), then the counted runs,
interleaved across engines so that noise from other work on the machine falls
on all of them alike. Spark and the bare Spark script, on lakes of scale 100
and above, get --spark-100x-runs runs and no warm-up. Results are merged into
the JSON file (--out, keyed by lake and engine) and the whole table is printed
as Markdown, with the median 1-minute load average of the machine when each
run started, followed by the ratio of each engine's `stedi run` to its bare program on each
lake (DuckDB to the bare floor, Spark to the bare Spark script) and the
verdict on each target.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("customer", "accelerometer", "step_trainer")
SEED = 7
ENGINES = ("duckdb", "bare_floor", "spark", "bare_spark")
LABELS = {"duckdb": "duckdb", "bare_floor": "bare floor", "spark": "spark", "bare_spark": "bare spark"}
# The programs that only read the lake (no `stedi run`), and the engines that start Spark.
BARE_SCRIPTS = {"bare_floor": "bare_floor.py", "bare_spark": "bare_spark.py"}
SPARK_ENGINES = ("spark", "bare_spark")


@dataclass(frozen=True)
class Comparison:
    """An engine's `stedi run` against its bare program, and its targets (docs/benchmarks.md)."""

    engine: str
    bare: str
    name: str  # of the engine, in the targets' wording
    bare_name: str
    targets: dict[str, float] = field(default_factory=dict)  # lake -> the highest median wall time ratio
    aim_100x: float | None = None  # the ratio aimed at on the 100x lake, below its target

    @property
    def key(self) -> str:
        """Its ratio's key in a lake's results."""
        return f"{self.engine}_vs_{self.bare}"


COMPARISONS = (
    Comparison("duckdb", "bare_floor", "DuckDB", "the bare floor", {"starter": 1.5, "100": 2.5}, aim_100x=2.0),
    Comparison("spark", "bare_spark", "Spark", "the bare Spark script", {"100": 1.2}),
)
MEMORY_TARGET_100X_MB = 2048  # DuckDB's peak at 100x: 2 GB, in the MiB the peaks are counted in
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_SECONDS = 0.05


# ---------------------------------------------------------------- lakes

def lake_path(lake: str, work: Path, starter: Path) -> Path:
    """The folder of a lake, generating it first when it is a scale not generated yet."""
    if lake == "starter":
        return starter
    path = work / "lakes" / f"scale-{lake}"
    done = path / ".generated"
    if not done.exists():
        shutil.rmtree(path, ignore_errors=True)
        print(f"generating lake scale {lake} in {path}", flush=True)
        subprocess.run([str(stedi_command()), "generate", "--lake", str(path), "--scale", lake,
                        "--seed", str(SEED)], check=True, stdout=subprocess.DEVNULL)
        done.touch()
    return path


def lake_size(path: Path) -> dict[str, int]:
    """Landing bytes and accelerometer lines of a lake."""
    files = {source: sorted((path / source / "landing").iterdir()) for source in SOURCES}
    size = sum(f.stat().st_size for found in files.values() for f in found)
    lines = 0
    for f in files["accelerometer"]:
        with f.open("rb") as handle:
            lines += sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 22), b""))
    return {"landing_bytes": size, "accelerometer_lines": lines}


def fresh_lake(source: Path, work: Path) -> Path:
    """An empty lake folder whose landing folders link to `source`'s."""
    lake = work / "run-lake"
    shutil.rmtree(lake, ignore_errors=True)
    for name in SOURCES:
        (lake / name).mkdir(parents=True)
        (lake / name / "landing").symlink_to((source / name / "landing").resolve())
    return lake


# ---------------------------------------------------------------- one measured process

def stedi_command() -> Path:
    """The `stedi` console script of the Python running this file."""
    beside = Path(sys.executable).parent / "stedi"
    return beside if beside.exists() else Path(shutil.which("stedi") or "stedi")


def command_for(engine: str, lake: Path) -> list[str]:
    if engine in BARE_SCRIPTS:
        return [sys.executable, str(REPO / "bench" / BARE_SCRIPTS[engine]), "--lake", str(lake)]
    return [str(stedi_command()), "run", "--lake", str(lake), "--engine", engine]


def group_usage(group: int) -> tuple[int, float]:
    """Summed resident set size (KB) and CPU seconds so far of the processes in a process group.

    CPU seconds include each process's reaped children (cutime, cstime), so work
    done by processes that have already ended within the group is not lost.
    """
    rss_kb, ticks = 0, 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        # fields[0] is field 3 of proc(5): pgrp is field 5, utime..cstime 14-17, rss 24
        if int(fields[2]) == group:
            rss_kb += int(fields[21]) * PAGE_KB
            ticks += sum(int(n) for n in fields[11:15])
    return rss_kb, ticks / CLOCK_TICKS


def measure(command: list[str]) -> dict:
    """Run `command` to its end: seconds, CPU, peak memory, exit status, its output and the end of its errors."""
    errors = tempfile.TemporaryFile("w+")
    load = os.getloadavg()[0]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True, start_new_session=True)
    group = {"peak_kb": 0, "cpu_s": 0.0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(SAMPLE_SECONDS):
            rss_kb, cpu_s = group_usage(child.pid)
            group["peak_kb"] = max(group["peak_kb"], rss_kb)
            group["cpu_s"] = max(group["cpu_s"], cpu_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    errors.seek(0)
    error_tail = errors.read()[-2000:]
    errors.close()
    return {"seconds": seconds, "load_1m": load,
            "cpu_s": max(usage.ru_utime + usage.ru_stime, group["cpu_s"]),
            "waited_cpu_s": usage.ru_utime + usage.ru_stime, "group_cpu_s": group["cpu_s"],
            "peak_mb": max(usage.ru_maxrss, group["peak_kb"]) / 1024,
            "maxrss_mb": usage.ru_maxrss / 1024, "group_rss_mb": group["peak_kb"] / 1024,
            "exit": os.waitstatus_to_exitcode(status), "stage_seconds": parse_seconds(output),
            "output": output + error_tail}


def parse_seconds(output: str) -> dict[str, list[float]]:
    """The `seconds` block printed by `stedi run` and by the bare programs: step -> its figures."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("seconds")), len(lines))
    block = {}
    for line in lines[start + 1:]:
        match = re.match(r"^  (\S.*?)\s+(-?[\d.]+(?:\s+-?[\d.]+)*)$", line)
        if not match:
            break
        block[match.group(1)] = [float(n) for n in match.group(2).split()]
    return block


def run_once(engine: str, lake: Path, work: Path) -> dict:
    bare = engine in BARE_SCRIPTS  # a bare program only reads the lake
    target = lake if bare else fresh_lake(lake, work)
    result = measure(command_for(engine, target))
    if not bare:
        shutil.rmtree(target, ignore_errors=True)
    if result["exit"] != 0:
        raise SystemExit(f"{engine} on {lake} exited with {result['exit']}:\n{result['output'][-2000:]}")
    del result["output"]
    return result


# ---------------------------------------------------------------- a benchmark

def summary(runs: list[dict]) -> dict:
    times = [run["seconds"] for run in runs]
    steps = runs[0]["stage_seconds"]
    return {
        "runs": len(runs),
        "median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
        "cpu_s": statistics.median(run["cpu_s"] for run in runs),
        "peak_mb": statistics.median(run["peak_mb"] for run in runs),
        "max_peak_mb": max(run["peak_mb"] for run in runs),
        "stage_seconds_median": {step: [statistics.median(run["stage_seconds"][step][i] for run in runs)
                                        for i in range(len(values))] for step, values in steps.items()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": source_version(),
        "all_runs": runs,
    }


def bench_lake(lake: str, path: Path, engines: list[str], args: argparse.Namespace, work: Path) -> dict:
    """Warm-up, then interleaved counted runs of each engine on one lake."""
    large = lake != "starter" and float(lake) >= 100
    plan = {engine: (0, args.spark_100x_runs) if engine in SPARK_ENGINES and large else (args.warmup, args.runs)
            for engine in engines}
    runs = {engine: [] for engine in engines}
    for engine, (warmup, _) in plan.items():
        for _ in range(warmup):
            print(f"  {lake:>7} {LABELS[engine]:<10} warm-up", flush=True)
            run_once(engine, path, work)
    for round_number in range(max(count for _, count in plan.values())):
        for engine, (_, count) in plan.items():
            if round_number < count:
                result = run_once(engine, path, work)
                runs[engine].append(result)
                print(f"  {lake:>7} {LABELS[engine]:<10} run {round_number + 1}/{count}: {result['seconds']:7.2f} s "
                      f"{result['cpu_s']:7.2f} s CPU {result['peak_mb']:7.0f} MB  load {result['load_1m']:.1f}",
                      flush=True)
    return {engine: summary(found) for engine, found in runs.items() if found}


def source_version() -> str:
    """The commit measured, marked dirty when the working tree has changes other than benchmark results."""
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    changes = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", ".", ":!bench/results*.json"],
                             capture_output=True, text=True)
    if not commit.stdout.strip():
        return "unknown"
    return commit.stdout.strip() + ("-dirty" if changes.stdout.strip() else "")


def machine() -> dict:
    import duckdb
    import pyspark

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    return {"cores": os.cpu_count(), "memory_gib": round(memory_kb / 2**20, 1), "cpu": cpu,
            "os": platform.platform(), "python": platform.python_version(), "duckdb": duckdb.__version__,
            "pyspark": pyspark.__version__, "java": java[0] if java else "absent"}


# ---------------------------------------------------------------- report

def lake_label(lake: str) -> str:
    return lake if lake == "starter" else f"{lake}x"


def against_bare(engines: dict, comparison: Comparison) -> dict | None:
    """An engine's `stedi run` against its bare program on one lake (medians), or None unless both were measured.

    The seconds are keyed by engine (e.g. duckdb_s, bare_floor_s)."""
    run, bare = engines.get(comparison.engine), engines.get(comparison.bare)
    if not (run and bare):
        return None
    return {f"{comparison.engine}_s": round(run["median_s"], 3), f"{comparison.bare}_s": round(bare["median_s"], 3),
            "ratio": round(run["median_s"] / bare["median_s"], 2),
            "cpu_ratio": round(run["cpu_s"] / bare["cpu_s"], 2)}


def aim_note(comparison: Comparison, lake: str) -> str:
    return f" (aim {comparison.aim_100x:g}x)" if comparison.aim_100x and lake == "100" else ""


def targets(lakes: dict) -> list[dict]:
    """Each target that has its figures measured: what it asks, what was measured, the verdict."""
    found = []
    for comparison in COMPARISONS:
        for lake, limit in comparison.targets.items():
            ratio = lakes.get(lake, {}).get(comparison.key)
            if not ratio:
                continue
            aim = aim_note(comparison, lake)
            verdict = "met" if ratio["ratio"] <= limit else "not met"
            if aim and ratio["ratio"] <= limit:
                verdict += ", within the aim" if ratio["ratio"] <= comparison.aim_100x else ", above the aim"
            found.append({"target": f"{lake_label(lake)}: {comparison.name} within {limit:g}x of "
                                    f"{comparison.bare_name}{aim}",
                          "measured": f"{ratio['ratio']:.2f}x ({ratio[f'{comparison.engine}_s']:.2f} s against "
                                      f"{ratio[f'{comparison.bare}_s']:.2f} s; CPU {ratio['cpu_ratio']:.2f}x)",
                          "verdict": verdict})
    duckdb_100x = lakes.get("100", {}).get("engines", {}).get("duckdb")
    if duckdb_100x:
        peak = duckdb_100x["max_peak_mb"]
        found.append({"target": "100x: DuckDB peak memory under 2 GB",
                      "measured": f"{peak:,.0f} MB, the highest of {duckdb_100x['runs']} runs",
                      "verdict": "met" if peak < MEMORY_TARGET_100X_MB else "not met"})
    return found


def markdown(results: dict) -> str:
    rows = ["| lake | accelerometer lines | landing MB | engine | median s | min s | max s | runs | CPU s "
            "| peak MB | load |",
            "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for lake, entry in results["lakes"].items():
        size = entry["size"]
        for engine in ENGINES:
            figures = entry["engines"].get(engine)
            if not figures:
                continue
            load = statistics.median(run["load_1m"] for run in figures["all_runs"])
            rows.append(f"| {lake_label(lake)} | {size['accelerometer_lines']:,} "
                        f"| {size['landing_bytes'] / 1e6:,.0f} | {LABELS[engine]} | {figures['median_s']:.2f} "
                        f"| {figures['min_s']:.2f} | {figures['max_s']:.2f} | {figures['runs']} "
                        f"| {figures['cpu_s']:.1f} | {figures['peak_mb']:,.0f} | {load:.1f} |")
    for comparison in COMPARISONS:
        found = {lake: entry[comparison.key] for lake, entry in results["lakes"].items() if entry.get(comparison.key)}
        if not found:
            continue
        name, bare = comparison.name, LABELS[comparison.bare]
        rows += ["", f"| lake | {name} s | {bare} s | {name} / {bare} | CPU ratio | target |",
                 "|---|---:|---:|---:|---:|---|"]
        for lake, ratio in found.items():
            limit = comparison.targets.get(lake)
            target = (f"within {limit:g}x" if limit else "") + aim_note(comparison, lake)
            rows.append(f"| {lake_label(lake)} | {ratio[f'{comparison.engine}_s']:.2f} "
                        f"| {ratio[f'{comparison.bare}_s']:.2f} | {ratio['ratio']:.2f} | {ratio['cpu_ratio']:.2f} "
                        f"| {target} |")
    rows += ["", "| target | measured | verdict |", "|---|---|---|"]
    rows += [f"| {t['target']} | {t['measured']} | **{t['verdict']}** |" for t in results["targets"]]
    return "\n".join(rows)


def lake_order(name: str) -> float:
    return 0 if name == "starter" else float(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lakes", default="starter,1,10,100", help="comma-separated: starter and/or scales")
    parser.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated, of {', '.join(ENGINES)}")
    parser.add_argument("--runs", type=int, default=3, help="counted runs per engine and lake")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted runs first")
    parser.add_argument("--spark-100x-runs", type=int, default=1,
                        help="counted runs of spark and bare_spark on lakes of scale >= 100")
    parser.add_argument("--starter", type=Path, default=REPO.parent / "shared" / "data" / "stedi-starter")
    parser.add_argument("--work", type=Path, default=Path(os.environ.get("BENCH_DIR", "/tmp/stedi-bench")),
                        help="generated lakes and run folders (default $BENCH_DIR or /tmp/stedi-bench)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results.json")
    args = parser.parse_args()
    engines = [engine for engine in args.engines.split(",") if engine]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        parser.error(f"unknown engine(s): {', '.join(sorted(unknown))}")

    lakes = json.loads(args.out.read_text())["lakes"] if args.out.exists() else {}
    this_machine = machine()
    for lake in args.lakes.split(","):
        path = lake_path(lake, args.work, args.starter)
        measured = {**lakes.get(lake, {}).get("engines", {}), **bench_lake(lake, path, engines, args, args.work)}
        lakes[lake] = {"size": lake_size(path),
                       **{comparison.key: against_bare(measured, comparison) for comparison in COMPARISONS},
                       "engines": measured}
        lakes = dict(sorted(lakes.items(), key=lambda item: lake_order(item[0])))
        # The summaries first, so that the file reads from the top down to each run's figures.
        results = {"targets": targets(lakes), "machine": this_machine, "lakes": lakes}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))


if __name__ == "__main__":
    main()
