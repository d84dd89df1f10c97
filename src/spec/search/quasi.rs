//! Quasi-random search: a scrambled Halton sequence. Coordinate `d` of trial `i` is the radical
//! inverse of `i` in the `d`-th prime base with each digit position's digits permuted by a random
//! permutation drawn from `(seed, d, position)` (random digit scrambling, as in Owen 2017, "A randomized
//! Halton algorithm in R"). Scrambling keeps Halton's stratification: the first `b^m` trials put one
//! point in each of the `b^m` equal intervals of a base-`b` coordinate, whatever the seed, while
//! breaking the correlations of plain Halton between high dimensions.

use super::Sampler;
use crate::rng::Rng;

pub struct Quasi;

/// The bases of the first 32 coordinates (a search of more keys repeats them with other permutations).
const PRIMES: [u64; 32] = [
    2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107, 109,
    113, 127, 131,
];

impl Sampler for Quasi {
    fn point(&self, seed: u64, trial: u64, dims: usize) -> Vec<f64> {
        (0..dims).map(|d| scrambled_radical_inverse(seed, d as u64, PRIMES[d % PRIMES.len()], trial)).collect()
    }
}

/// The radical inverse of `i` in base `b`, digit `k` (from the point) replaced by `perm_k(digit)`,
/// over enough digits for a double.
fn scrambled_radical_inverse(seed: u64, dim: u64, b: u64, mut i: u64) -> f64 {
    let mut x = 0.0;
    let mut scale = 1.0 / b as f64;
    for position in 0.. {
        if scale < 1e-16 {
            break;
        }
        let digit = i % b;
        i /= b;
        x += permutation(seed, dim, position, b)[digit as usize] as f64 * scale;
        scale /= b as f64;
    }
    x.min(1.0 - f64::EPSILON)
}

/// A random permutation of `0..b` for one digit position of one coordinate.
fn permutation(seed: u64, dim: u64, position: u64, b: u64) -> Vec<u64> {
    let mut perm: Vec<u64> = (0..b).collect();
    Rng::derive(Rng::derive(seed, dim).next_u64(), position).shuffle(&mut perm);
    perm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_b_to_the_m_trials_fill_every_interval_once() {
        for seed in [0, 1, 42] {
            let points: Vec<Vec<f64>> = (0..27).map(|i| Quasi.point(seed, i, 3)).collect();
            // Base 2 (coordinate 0): 16 trials, one in each sixteenth; base 3: 27 trials, one per 27th;
            // base 5: 25 trials, one per 25th.
            for (dim, n) in [(0usize, 16usize), (1, 27), (2, 25)] {
                let mut bins = vec![0; n];
                for p in &points[..n] {
                    bins[(p[dim] * n as f64) as usize] += 1;
                }
                assert!(bins.iter().all(|&c| c == 1), "seed {seed}, coordinate {dim}: {bins:?}");
            }
        }
    }

    #[test]
    fn trials_are_deterministic_and_the_seed_scrambles_them() {
        assert_eq!(Quasi.point(3, 9, 4), Quasi.point(3, 9, 4));
        assert_ne!(Quasi.point(3, 9, 4), Quasi.point(4, 9, 4));
        // Without scrambling trial 0 would be the origin; scrambled it is anywhere.
        assert!(Quasi.point(3, 0, 2).iter().all(|&x| (0.0..1.0).contains(&x) && x > 0.0));
    }
}
