"""A 3-row catalog, command to exit: this checkout against another, pair by pair.

    uv run python -m bench.small_pairs --against PATH [--pairs 7] [--modes server,ephemeral]

PATH is another checkout of the project (e.g. `git worktree add /tmp/before <commit>`); its
code runs in this checkout's environment. Each pair runs `catalog-images run` on the same
3-row catalog from PATH, then from here, against one emulator (latency 0.5 s), one SeaweedFS
and, in `server` mode, one Prefect server, so the machine's drift hits both sides alike.
Prints every run's wall and CPU seconds (the CLI and its children) and, per mode, the medians
and the median of the pairs' differences (here − PATH). The first pair of each mode is a
warm-up (bytecode caches) and is left out of the medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from bench.harness import WORK, emulator_process, local_s3, print_table, run_child, write_catalog
from bench.throughput import measured_env
from catalog_images.devtools.prefect_server import PrefectServer

HERE = Path(__file__).resolve().parent.parent


def run_once(tree: Path, env: dict, catalog: Path, dest: str) -> tuple[float, float]:
    """Wall and CPU seconds of one 3-row run of ``tree``'s code."""
    child = run_child([sys.executable, "-m", "catalog_images.cli", "run", "--catalog",
                       str(catalog), "--dest", dest, "--no-progress"], env=env, cwd=tree)
    if child.returncode:
        raise RuntimeError(f"{tree}: exit {child.returncode}: {child.stderr[-2000:]}")
    return child.wall_s, child.cpu_s


def measure_mode(mode: str, trees: dict[str, Path], pairs: int, s3, url: str) -> list[list]:
    """The rows of one mode's table: each pair, then the medians."""
    server = PrefectServer(WORK / f"prefect-pairs-{os.getpid()}") if mode == "server" else None
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
    try:
        if server:
            server.start()
        env = measured_env(s3, url, server.env() if server else None)
        catalog = write_catalog(WORK / "catalog-pairs-3.csv", 3)
        for pair in range(pairs):
            for name, tree in trees.items():
                dest = f"s3://{s3.bucket}/pairs-{os.getpid()}-{mode}-{pair}-{name}"
                runs[name].append(run_once(tree, env, catalog, dest))
    finally:
        if server:
            server.stop()
    (before, after) = trees
    rows = [[mode, pair + 1, *(f"{runs[name][pair][i]:.2f}" for name in trees for i in (0, 1))]
            for pair in range(pairs)]
    kept = range(1, pairs)
    medians = [f"{statistics.median(runs[name][p][i] for p in kept):.2f}"
               for name in trees for i in (0, 1)]
    rows.append([mode, "median (without pair 1)", *medians])
    rows.append([mode, "median of (here − against)", "", "",
                 *(f"{statistics.median(runs[after][p][i] - runs[before][p][i] for p in kept):+.2f}"
                   for i in (0, 1))])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, required=True, help="another checkout")
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--modes", default="server,ephemeral")
    args = parser.parse_args()
    if args.pairs < 2:
        parser.error("--pairs: at least 2 (the first is a warm-up)")
    trees = {"against": args.against.resolve(), "here": HERE}
    rows = []
    with emulator_process("--latency", "0.5") as url, local_s3() as s3:
        for mode in args.modes.split(","):
            rows += measure_mode(mode, trees, args.pairs, s3, url)
    print(f"against: {trees['against']}\nhere: {trees['here']}")
    print_table("A 3-row catalog, command to exit, paired", [
        "mode", "pair", "against wall s", "against CPU s", "here wall s", "here CPU s"], rows)


if __name__ == "__main__":
    main()
