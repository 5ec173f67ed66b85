//! The hybrid logical clock (HLC): physical milliseconds, a logical counter and a node id. It orders
//! every change of the system consistently with causality, and its total order (wall, counter, node)
//! is the deterministic tie-break of the last-writer-wins merge.
//!
//! Text form: `WWWWWWWWWWWWW-CCCCC-NNNNNNNNNNNNNNNN` (13 decimal digits of milliseconds, 5 of counter,
//! 16 hex of node), fixed width so that text order equals clock order in SQLite and PostgreSQL.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

use crate::ids::DeviceId;

/// The largest wall time the text form holds (year 2286).
const MAX_WALL_MS: u64 = 9_999_999_999_999;
/// The largest counter the text form holds.
const MAX_COUNTER: u32 = 99_999;

/// One hybrid logical timestamp.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hlc {
    /// Physical component: milliseconds since the Unix epoch.
    pub wall_ms: u64,
    /// Logical component: orders events within one millisecond.
    pub counter: u32,
    /// The node (device) that issued it: the last tie-break.
    pub node: u64,
}

/// Why a clock reading was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HlcError {
    #[error(
        "clock reading is {ahead_ms} ms ahead of this clock, more than the allowed {max_skew_ms} ms skew"
    )]
    TooFarAhead { ahead_ms: u64, max_skew_ms: u64 },
    #[error("logical counter overflowed within one millisecond")]
    CounterOverflow,
    #[error("malformed clock text: {0}")]
    Malformed(String),
}

impl Hlc {
    /// The node id a device stamps on its clock readings: the last 8 bytes of its UUIDv7 (the random part).
    pub fn node_of(device: DeviceId) -> u64 {
        let bytes = device.0.as_bytes();
        let mut tail = [0u8; 8];
        tail.copy_from_slice(&bytes[8..16]);
        u64::from_be_bytes(tail)
    }

    pub const fn new(wall_ms: u64, counter: u32, node: u64) -> Self {
        Self {
            wall_ms,
            counter,
            node,
        }
    }

    /// Parses the fixed-width text form.
    pub fn parse(text: &str) -> Result<Self, HlcError> {
        let malformed = || HlcError::Malformed(text.chars().take(48).collect());
        let mut parts = text.split('-');
        let (Some(w), Some(c), Some(n), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        if w.len() != 13 || c.len() != 5 || n.len() != 16 {
            return Err(malformed());
        }
        if !w.bytes().all(|b| b.is_ascii_digit()) || !c.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        let wall_ms = w.parse().map_err(|_| malformed())?;
        let counter = c.parse().map_err(|_| malformed())?;
        let node = u64::from_str_radix(n, 16).map_err(|_| malformed())?;
        Ok(Self {
            wall_ms,
            counter,
            node,
        })
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:013}-{:05}-{:016x}",
            self.wall_ms.min(MAX_WALL_MS),
            self.counter.min(MAX_COUNTER),
            self.node
        )
    }
}

impl fmt::Debug for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hlc({self})")
    }
}

impl FromStr for Hlc {
    type Err = HlcError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Hlc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hlc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Hlc::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A node's clock: issues readings that never go backwards and that follow every reading it has seen.
#[derive(Debug, Clone)]
pub struct HlcClock {
    last: Hlc,
    max_skew_ms: u64,
}

impl HlcClock {
    /// A clock for `node` that refuses remote readings more than `max_skew_ms` ahead of its wall time.
    pub fn new(node: u64, max_skew_ms: u64) -> Self {
        Self {
            last: Hlc::new(0, 0, node),
            max_skew_ms,
        }
    }

    /// Restores a clock from its last issued reading (persisted by the store).
    pub fn resume(last: Hlc, max_skew_ms: u64) -> Self {
        Self { last, max_skew_ms }
    }

    pub fn last(&self) -> Hlc {
        self.last
    }

    /// A reading for a local event at wall time `now_ms`.
    pub fn tick(&mut self, now_ms: u64) -> Result<Hlc, HlcError> {
        let wall = now_ms.max(self.last.wall_ms).min(MAX_WALL_MS);
        let counter = if wall == self.last.wall_ms {
            self.last
                .counter
                .checked_add(1)
                .filter(|c| *c <= MAX_COUNTER)
                .ok_or(HlcError::CounterOverflow)?
        } else {
            0
        };
        self.last = Hlc::new(wall, counter, self.last.node);
        Ok(self.last)
    }

    /// Merges a remote reading (the HLC receive rule); refuses readings too far ahead of `now_ms`.
    pub fn observe(&mut self, remote: Hlc, now_ms: u64) -> Result<Hlc, HlcError> {
        if remote.wall_ms > now_ms.saturating_add(self.max_skew_ms) {
            return Err(HlcError::TooFarAhead {
                ahead_ms: remote.wall_ms - now_ms,
                max_skew_ms: self.max_skew_ms,
            });
        }
        self.merge(remote, now_ms)
    }

    /// Merges a reading from the server without the skew refusal. The server has already refused
    /// readings ahead of its own clock, so its readings are the tenant's reference time: a laptop whose
    /// wall clock runs hours behind must still stamp its next write after what it has seen, or its
    /// later edit loses to the one it saw (causality). Only `observe` guards against peers' clocks.
    pub fn observe_from_server(&mut self, remote: Hlc, now_ms: u64) -> Result<Hlc, HlcError> {
        self.merge(remote, now_ms)
    }

    fn merge(&mut self, remote: Hlc, now_ms: u64) -> Result<Hlc, HlcError> {
        let wall = now_ms
            .max(self.last.wall_ms)
            .max(remote.wall_ms)
            .min(MAX_WALL_MS);
        let counter = if wall == self.last.wall_ms && wall == remote.wall_ms {
            self.last.counter.max(remote.counter).checked_add(1)
        } else if wall == self.last.wall_ms {
            self.last.counter.checked_add(1)
        } else if wall == remote.wall_ms {
            remote.counter.checked_add(1)
        } else {
            Some(0)
        }
        .filter(|c| *c <= MAX_COUNTER)
        .ok_or(HlcError::CounterOverflow)?;
        self.last = Hlc::new(wall, counter, self.last.node);
        Ok(self.last)
    }

    /// Whether a reading lies within the allowed skew of `now_ms` (used to refuse bad client clocks).
    pub fn within_skew(reading: Hlc, now_ms: u64, max_skew_ms: u64) -> bool {
        reading.wall_ms <= now_ms.saturating_add(max_skew_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_form_round_trips_and_sorts_like_the_clock() {
        let a = Hlc::new(1_700_000_000_000, 3, 0xabc);
        let b = Hlc::new(1_700_000_000_000, 12, 0x1);
        assert_eq!(a.to_string(), "1700000000000-00003-0000000000000abc");
        assert_eq!(Hlc::parse(&a.to_string()), Ok(a));
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
    }

    #[test]
    fn malformed_text_is_refused() {
        for bad in [
            "",
            "1-2-3",
            "1700000000000-00003",
            "17000000000x0-00003-0000000000000abc",
            "1700000000000-00003-0000000000000abc-1",
        ] {
            assert!(
                matches!(Hlc::parse(bad), Err(HlcError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn tick_never_goes_backwards_when_the_wall_clock_does() {
        let mut clock = HlcClock::new(7, 60_000);
        let first = clock.tick(1_000).expect("tick");
        let second = clock.tick(500).expect("tick");
        assert!(second > first);
        assert_eq!(second.wall_ms, 1_000);
        assert_eq!(second.counter, 1);
    }

    #[test]
    fn observe_follows_the_remote_reading() {
        let mut clock = HlcClock::new(1, 60_000);
        clock.tick(1_000).expect("tick");
        let remote = Hlc::new(5_000, 4, 2);
        let merged = clock.observe(remote, 2_000).expect("observe");
        assert!(merged > remote);
        assert_eq!(merged, Hlc::new(5_000, 5, 1));
        assert!(clock.tick(2_000).expect("tick") > merged);
    }

    #[test]
    fn a_server_reading_hours_ahead_is_adopted_so_the_next_write_follows_it() {
        let now = 1_700_000_000_000;
        let hours = 3 * 3_600_000;
        let mut clock = HlcClock::new(1, 1_000);
        let seen = Hlc::new(now + hours, 4, 2);
        assert!(clock.clone().observe(seen, now).is_err());
        let merged = clock.observe_from_server(seen, now).expect("merge");
        assert!(merged > seen);
        let next = clock.tick(now + 1).expect("tick");
        assert!(
            next > seen,
            "a later local write must follow the reading it saw"
        );
    }

    #[test]
    fn observe_refuses_a_reading_beyond_the_skew() {
        let mut clock = HlcClock::new(1, 1_000);
        let err = clock
            .observe(Hlc::new(10_000, 0, 2), 2_000)
            .expect_err("too far");
        assert_eq!(
            err,
            HlcError::TooFarAhead {
                ahead_ms: 8_000,
                max_skew_ms: 1_000
            }
        );
    }

    proptest! {
        #[test]
        fn readings_are_strictly_increasing(events in proptest::collection::vec((0u64..10_000, any::<bool>(), 0u64..12_000, 0u32..50), 1..200)) {
            let mut clock = HlcClock::new(9, 5_000);
            let mut previous = clock.last();
            for (now, remote_event, remote_wall, remote_counter) in events {
                let next = if remote_event {
                    match clock.observe(Hlc::new(remote_wall, remote_counter, 3), now) {
                        Ok(r) => { prop_assert!(r > Hlc::new(remote_wall, remote_counter, 3)); r }
                        Err(HlcError::TooFarAhead { .. }) => continue,
                        Err(e) => return Err(TestCaseError::fail(e.to_string())),
                    }
                } else {
                    clock.tick(now).map_err(|e| TestCaseError::fail(e.to_string()))?
                };
                prop_assert!(next > previous);
                prop_assert!(next.to_string() > previous.to_string());
                previous = next;
            }
        }
    }
}
