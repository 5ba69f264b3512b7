"""Speed and memory benchmarks, run by hand; ``python -m benchmarks`` (``make bench``) runs them all."""
