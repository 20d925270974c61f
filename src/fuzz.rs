//! Deterministic mutation testing for the parsers of untrusted input (a
//! runner's JUnit, the config file): seeds are mutated by a fixed-seed
//! generator, so a failure prints its iteration and input and replays
//! exactly. `cargo test` runs a small budget; set `OFFLOAD_FUZZ_ITERATIONS`
//! for a long run, e.g.
//! `OFFLOAD_FUZZ_ITERATIONS=2000000 cargo test --release fuzz -- --nocapture`
//! (and `OFFLOAD_FUZZ_SEED` to explore other inputs).

/// How many mutated inputs a target tries: `OFFLOAD_FUZZ_ITERATIONS`, or
/// `default` (a few seconds in a debug build).
pub fn iterations(default: u64) -> u64 {
    match std::env::var("OFFLOAD_FUZZ_ITERATIONS") {
        Ok(n) => n
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("OFFLOAD_FUZZ_ITERATIONS={n:?} is not a number")),
        Err(_) => default,
    }
}

/// The generator's seed: `OFFLOAD_FUZZ_SEED`, or a fixed one.
pub fn seed() -> u64 {
    std::env::var("OFFLOAD_FUZZ_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0x0FF1_0AD5_EED5)
}

/// A small, fast, deterministic generator (PCG-style LCG, high bits).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Apply 1–4 random edits to `input`: flip, insert or delete bytes, insert
/// one of `pieces` (tokens of the input's language, so mutants stay close to
/// valid), duplicate or delete a range, or cut the end off.
pub fn mutate(rng: &mut Rng, input: &[u8], pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(8) {
            0 if at < out.len() => out[at] ^= 1 << rng.below(8),
            1 => out.insert(at, rng.next() as u8),
            2 if at < out.len() => {
                out.remove(at);
            }
            3 | 4 => {
                let piece = rng.pick(pieces);
                out.splice(at..at, piece.iter().copied());
            }
            5 => {
                let end = (at + rng.below(64)).min(out.len());
                let range = out[at..end].to_vec();
                out.splice(at..at, range);
            }
            6 => {
                let end = (at + rng.below(64)).min(out.len());
                out.drain(at..end);
            }
            _ => out.truncate(at),
        }
    }
    out
}
