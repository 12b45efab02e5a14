"""Network benchmarks: echo (C load generator vs Python servers and a C io_uring ceiling)
and HTTP/1.1 under wrk. See benchmarks/README.md and netbench.py."""
