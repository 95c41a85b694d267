"""Runs every benchmark module in this folder (``bench_*.py``), one after another.

Each module exposes ``main() -> dict``; the results are printed as one JSON
document so that runs can be compared. Targets live here, not in timed tests.
"""

import importlib
import json
import pkgutil
import sys
from pathlib import Path


def run_all(selected: list[str]) -> dict:
    here = Path(__file__).parent
    results = {}
    for module in sorted(pkgutil.iter_modules([str(here)]), key=lambda m: m.name):
        if not module.name.startswith("bench_"):
            continue
        if selected and module.name not in selected:
            continue
        results[module.name] = importlib.import_module(f"bench.{module.name}").main()
    return results


if __name__ == "__main__":
    print(json.dumps(run_all(sys.argv[1:]), indent=2, sort_keys=True))
