"""Parent-side machinery of the benchmark: workloads, server, runners and reports."""
