"""Same-run benchmarks of ringloop against asyncio and uvloop (see README.md)."""
