// weft-bench: offload and channel benchmarks (filled in by the bridges work).
