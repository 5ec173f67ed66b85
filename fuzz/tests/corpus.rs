//! The fuzz checks as a bounded, deterministic test: every file of the kept corpus
//! (`fuzz/corpus/<target>/`) plus seeded pseudo-random inputs and mutations of the corpus files, without
//! libFuzzer: a reproducible check to run by hand (`cargo test --manifest-path fuzz/Cargo.toml`). CI runs
//! the real fuzzer over the same corpus instead (`cargo xtask fuzz`, inside `cargo xtask test`), which
//! needs no second build of the dependencies.

use std::path::Path;

type Check = fn(&[u8]);

const TARGETS: &[(&str, Check)] = &[
    ("push_request", stormops_fuzz::push_request),
    ("merge", stormops_fuzz::merge),
    ("csv_import", stormops_fuzz::csv_import),
    ("legacy_import", stormops_fuzz::legacy_import),
];

/// xorshift64*: a fixed-seed generator, so a failure reproduces.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_default())
        .collect()
}

#[test]
fn every_target_holds_on_the_corpus_random_inputs_and_mutations() {
    let rounds: u64 = std::env::var("STORMOPS_FUZZ_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000);
    for (name, check) in TARGETS {
        let seeds = corpus(name);
        assert!(!seeds.is_empty(), "fuzz/corpus/{name} is empty");
        for seed in &seeds {
            check(seed);
        }
        let mut state = 0x9e37_79b9_7f4a_7c15 ^ name.len() as u64;
        for round in 0..rounds {
            let mut input = if round % 2 == 0 {
                seeds[(next(&mut state) as usize) % seeds.len()].clone()
            } else {
                let len = (next(&mut state) % 256) as usize;
                (0..len).map(|_| next(&mut state) as u8).collect()
            };
            // Mutations: flip, insert, delete and duplicate bytes, as libFuzzer would.
            for _ in 0..(next(&mut state) % 8) {
                let at = if input.is_empty() {
                    0
                } else {
                    (next(&mut state) as usize) % input.len()
                };
                match next(&mut state) % 4 {
                    0 if !input.is_empty() => input[at] ^= 1 << (next(&mut state) % 8),
                    1 => input.insert(at, next(&mut state) as u8),
                    2 if !input.is_empty() => {
                        input.remove(at);
                    }
                    _ if !input.is_empty() => {
                        let byte = input[at];
                        input.insert(at, byte);
                    }
                    _ => input.push(next(&mut state) as u8),
                }
            }
            check(&input);
        }
    }
}
