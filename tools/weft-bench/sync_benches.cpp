// weft-bench: sync primitive benchmarks (mutex).
