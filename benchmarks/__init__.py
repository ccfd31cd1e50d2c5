"""Benchmarks, run by `make bench` (`python -m benchmarks [name ...]`); figures go to `benchmarks/results/`.

    receiver   webhook receiver (signature check + confirmed publish to RabbitMQ) against a bare Starlette endpoint
    sandbox    both API emulators under 1,000 requests/s of mixed open-loop traffic; memory of the seeded data

Each benchmark module has `run() -> BenchmarkResult`. The server under test always runs in its own process, the
load generator in this one (see `_processes.py` for CPU pinning). Benchmarks are not tests: they measure and
report, the README says what the figures mean.
"""
