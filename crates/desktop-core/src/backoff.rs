//! Exponential backoff with full jitter: after the n-th consecutive failure wait a random time in
//! [base, min(cap, base·2ⁿ)], so a fleet of laptops regaining signal together does not retry in lockstep.

use std::time::Duration;

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The wait after `failures` consecutive failures, given a uniform random number in [0, 1).
    pub fn delay(&self, failures: u32, unit_random: f64) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let exponent = failures.saturating_sub(1).min(20);
        let ceiling = self.base.saturating_mul(1u32 << exponent).min(self.cap);
        let span = ceiling.saturating_sub(self.base);
        self.base + span.mul_f64(unit_random.clamp(0.0, 1.0))
    }
}

/// A uniform random number in [0, 1) from the system's random source.
pub fn unit_random() -> f64 {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 8];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_within_the_cap() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
        };
        assert_eq!(b.delay(0, 0.9), Duration::ZERO);
        assert_eq!(b.delay(1, 1.0), Duration::from_millis(100));
        assert_eq!(b.delay(3, 1.0), Duration::from_millis(400));
        assert_eq!(b.delay(3, 0.0), Duration::from_millis(100));
        assert_eq!(b.delay(30, 1.0), Duration::from_secs(2));
        let r = unit_random();
        assert!((0.0..1.0).contains(&r));
    }
}
