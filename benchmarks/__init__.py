"""Benchmarks for stackdoc's parsers (run ``python -m benchmarks.bench_iptables``)."""
