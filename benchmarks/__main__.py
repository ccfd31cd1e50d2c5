"""`python -m benchmarks [name ...]`: run issue 13's benchmarks (or the ones named), print a table per benchmark,
write `benchmarks/results/<name>.json` and `latest.json`, and the figures into the READMEs. `make bench` starts the
private RabbitMQ and Postgres nodes first."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import sys
import time
from collections.abc import Callable

from benchmarks import receiver, sandbox, sync
from benchmarks._latest import publish
from benchmarks._processes import pin_load_generator
from benchmarks._report import BenchmarkResult, format_table, write_result

BENCHMARKS: dict[str, Callable[[], BenchmarkResult]] = {
    "receiver": receiver.run,
    "sandbox": sandbox.run,
    "sync": sync.run,
}
DEFAULT = ("receiver", "sync")  # every figure of latest.json; `sandbox` (issue 3) runs when named


def return_freed_memory() -> None:
    """Hand what a benchmark freed back to the OS (glibc keeps freed blocks mapped), so that the next one's RSS, this
    process's, is its own: the receiver's presigned requests are hundreds of MiB. (Run after the receiver's, the sync
    benchmark measured 1,792.6 MiB; run before it, it left the receiver's figures a third lower.)"""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="name", help=f"any of {', '.join(BENCHMARKS)} (default: {', '.join(DEFAULT)})"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server and the load generator to CPUs")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    pin_load_generator(not args.no_pin)
    started = time.perf_counter()
    for name in args.names or DEFAULT:
        print(f"== {name}", flush=True)
        result = BENCHMARKS[name]()
        print(format_table(result.table))
        print(f"-> {write_result(result)}", flush=True)
        return_freed_memory()
    publish()
    print(f"{time.perf_counter() - started:.0f} s in all", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
