"""gflow benchmarks: side-by-side comparisons, reported as ratios with medians over repeats."""
