"""Performance benchmarks for Cactus Desk: ``python -m benchmarks`` (``make bench``)."""
