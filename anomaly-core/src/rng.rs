//! A small, fast, seedable random number generator (SplitMix64).
//!
//! Reproducibility matters more here than statistical strength: every
//! random choice in the crate (simulated data, tree seeds, splits) comes
//! from a seed the caller controls, so results are identical on every
//! machine and for any number of threads.

/// SplitMix64 (Steele, Lea & Flood, 2014).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// A generator for item `index` of a family seeded by `seed`: streams
    /// for different indices are independent of each other and of order.
    pub fn for_index(seed: u64, index: u64) -> Self {
        let mut mix = Rng(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        Rng(mix.next_u64())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..n` (`n > 0`), without modulo bias.
    pub fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let v = self.next_u64();
            if v < zone {
                return (v % n) as usize;
            }
        }
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.uniform(f64::MIN_POSITIVE, 1.0);
        let v = self.uniform(0.0, std::f64::consts::TAU);
        (-2.0 * u.ln()).sqrt() * v.cos()
    }

    /// Gamma(shape, 1) for `shape >= 1` (Marsaglia & Tsang's squeeze method).
    pub fn gamma(&mut self, shape: f64) -> f64 {
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal_fast();
            let v = 1.0 + c * x;
            if v <= 0.0 {
                continue;
            }
            let v = v * v * v;
            let u = self.uniform(f64::MIN_POSITIVE, 1.0);
            if u < 1.0 - 0.0331 * x.powi(4) || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
                return d * v;
            }
        }
    }

    /// Beta(a, b) for `a, b >= 1`.
    pub fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        x / (x + self.gamma(b))
    }

    /// Standard normal by Marsaglia & Tsang's ziggurat (128 layers): one
    /// 64-bit draw and a table lookup almost always, several times faster
    /// than Box-Muller for the millions of draws Monte Carlo intervals take.
    pub fn normal_fast(&mut self) -> f64 {
        let z = ziggurat();
        loop {
            let bits = self.next_u64();
            let i = (bits & 0x7f) as usize;
            let u = ((bits >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0;
            let x = u * z.x[i];
            if x.abs() < z.x[i + 1] {
                return x;
            }
            if i == 0 {
                // The tail beyond R.
                loop {
                    let a = -self.uniform(f64::MIN_POSITIVE, 1.0).ln() / ZIG_R;
                    let b = -self.uniform(f64::MIN_POSITIVE, 1.0).ln();
                    if 2.0 * b > a * a {
                        return if u < 0.0 { -(ZIG_R + a) } else { ZIG_R + a };
                    }
                }
            }
            let (f0, f1) = (z.f[i], z.f[i + 1]);
            if f1 + self.uniform(0.0, 1.0) * (f0 - f1) < (-0.5 * x * x).exp() {
                return x;
            }
        }
    }
}

const ZIG_R: f64 = 3.442_619_855_899;
const ZIG_V: f64 = 9.912_563_035_262_17e-3;

/// Layer edges `x` (x[0] = V / f(R), x[1] = R, decreasing to x[128] = 0)
/// and densities `f = exp(-x^2 / 2)` of the 128-layer ziggurat.
struct Ziggurat {
    x: [f64; 129],
    f: [f64; 129],
}

fn ziggurat() -> &'static Ziggurat {
    static TABLE: std::sync::OnceLock<Ziggurat> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let density = |x: f64| (-0.5 * x * x).exp();
        let mut x = [0.0; 129];
        x[0] = ZIG_V / density(ZIG_R);
        x[1] = ZIG_R;
        for i in 2..128 {
            x[i] = (-2.0 * (ZIG_V / x[i - 1] + density(x[i - 1])).ln()).sqrt();
        }
        x[128] = 0.0;
        let mut f = [0.0; 129];
        for i in 0..129 {
            f[i] = density(x[i]);
        }
        Ziggurat { x, f }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_is_in_range_and_covers_it() {
        let mut rng = Rng::new(1);
        let mut seen = [0usize; 7];
        for _ in 0..7000 {
            seen[rng.below(7)] += 1;
        }
        assert!(seen.iter().all(|&c| (800..1200).contains(&c)), "{seen:?}");
    }

    #[test]
    fn ziggurat_normals_have_normal_moments_and_tails() {
        let mut rng = Rng::new(9);
        let n = 400_000;
        let draws: Vec<f64> = (0..n).map(|_| rng.normal_fast()).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|d| (d - mean) * (d - mean)).sum::<f64>() / n as f64;
        let beyond = |q: f64| draws.iter().filter(|d| d.abs() > q).count() as f64 / n as f64;
        assert!(mean.abs() < 0.01 && (var - 1.0).abs() < 0.01, "{mean} {var}");
        assert!((beyond(1.959_964) - 0.05).abs() < 0.002, "{}", beyond(1.959_964));
        assert!((beyond(3.0) - 0.0027).abs() < 0.0005, "{}", beyond(3.0));
        assert!(draws.iter().any(|d| d.abs() > ZIG_R), "the tail is sampled");
    }

    #[test]
    fn streams_are_reproducible() {
        let a: Vec<u64> = (0..4).map(|i| Rng::for_index(42, i).next_u64()).collect();
        let b: Vec<u64> = (0..4).rev().map(|i| Rng::for_index(42, i).next_u64()).collect();
        assert_eq!(a, b.into_iter().rev().collect::<Vec<_>>());
        assert_ne!(a[0], a[1]);
    }
}
