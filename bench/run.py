#!/usr/bin/env python3
"""make bench: run every benchmark in bench/benchmarks/, print a table, save the results as JSON
in bench/results/. Timings are measured here, never asserted in tests. The benchmarks make the
lab they need themselves; at the end the lab is the default one again (make lab-up)."""
import argparse
import datetime
import importlib.util
import json
import pathlib
import platform
import sys
import time
import traceback

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import lablib  # noqa: E402


def load_benchmarks(selected):
    for path in sorted((HERE / "benchmarks").glob("*.py")):
        if selected and path.stem not in selected:
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield path.stem, module


def print_table(rows):
    header = ["benchmark", "measure", "value", "unit", "note"]
    cells = [[str(row.get(key, "")) for key in header] for row in rows]
    widths = [max(len(line[i]) for line in [header] + cells) for i in range(len(header))]
    for line in [header, ["-" * w for w in widths]] + cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    args = parser.parse_args()
    rows, failed = [], []
    try:
        for name, module in load_benchmarks(args.names):
            print(f"running {name}: {module.__doc__.strip().splitlines()[0]}", file=sys.stderr)
            started = time.monotonic()
            try:
                rows += [{"benchmark": name, **row} for row in module.run()]
            except Exception as error:  # one broken benchmark does not hide the others' results
                traceback.print_exc()
                failed.append(name)
                rows.append({"benchmark": name, "measure": "FAILED", "value": "", "unit": "", "note": str(error)[:300]})
            rows.append({"benchmark": name, "measure": "time of this benchmark",
                         "value": round(time.monotonic() - started), "unit": "s", "note": "lab set-up included"})
    finally:
        started = time.monotonic()
        lablib.ensure_lab()
        lablib.log(f"the default lab again ({time.monotonic() - started:.0f} s)")
    print_table(rows)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    result = {"when": stamp, "host": platform.node(), "scale": lablib.scale(), "results": rows}
    path = out / f"bench-{stamp}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"saved {path}")
    if failed:
        sys.exit(f"failed: {' '.join(failed)}")


if __name__ == "__main__":
    main()
