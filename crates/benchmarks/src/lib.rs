//! The benchmark suite behind cargo xtask bench: measures and writes docs/benchmarks.md.
