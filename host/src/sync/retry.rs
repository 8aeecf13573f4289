//! Retry decisions: which failures are retried, exponential backoff with full jitter, and
//! when an event becomes a dead letter. Pure: the clock and the random source are passed in.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::audit::Timestamp;
use crate::sync::conflict::Direction;
pub use sync_host_runtime::FailureKind;

/// What to do with a failed event, before timing is considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Try again later with backoff.
    Retry,
    /// Park as a dead letter for an operator at once.
    DeadLetter,
    /// Not an error to retry: hand to conflict detection with the target's current state.
    Conflict,
}

/// Classifies a failure. Each case and why:
///
/// * `Transient`: the classic retry case (the other side is down or slow).
/// * `Plugin`: a trap or deadline may come from load or one odd resource; retrying a few times
///   is cheap, and the attempt budget still ends it as a dead letter.
/// * `Unauthorized`: an operator fixes credentials without touching each event, so the events
///   flow again by themselves once the fix is in; the attempt budget bounds the noise.
/// * `NotFound` on pull: a source may publish the feed entry before the resource is readable
///   (replication lag), so retry. On push the parent refused a write to something it does not
///   have, which will not change by waiting: dead letter.
/// * `Gone`: the resource was deleted at the source; the engine should turn a 410 on fetch into
///   a tombstone before it gets here. If it does get here, waiting cannot help: dead letter.
/// * `Invalid`: the request or body is wrong; retrying sends the same bytes: dead letter.
/// * `Conflict`: a concurrent change, handled by conflict detection, never by retrying.
pub fn classify(kind: FailureKind, direction: Direction) -> Disposition {
    match (kind, direction) {
        (FailureKind::Transient | FailureKind::Plugin | FailureKind::Unauthorized, _) => {
            Disposition::Retry
        }
        (FailureKind::NotFound, Direction::Pull) => Disposition::Retry,
        (FailureKind::NotFound, Direction::Push) => Disposition::DeadLetter,
        (FailureKind::Gone | FailureKind::Invalid, _) => Disposition::DeadLetter,
        (FailureKind::Conflict, _) => Disposition::Conflict,
        // A held-back edit waits in the queue for its resource's return, never for a timer
        // (see `BatchBuilder::held_back`); asked anyway, waiting is what it does.
        (FailureKind::LeftScope, _) => Disposition::Retry,
    }
}

/// Backoff settings. Attempts count every try, the first one included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// The ceiling of the first retry's delay.
    #[serde(with = "millis")]
    pub base: Duration,
    /// Growth of the ceiling per attempt (at least 1).
    pub factor: u32,
    /// No delay ever exceeds this.
    #[serde(with = "millis")]
    pub max_delay: Duration,
    /// After this many failed attempts the event becomes a dead letter.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// Ten attempts from 30 s up to 1 h apart: a clinic link that is down for an afternoon
    /// catches up without an operator, a broken record is parked within about a day.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(30),
            factor: 2,
            max_delay: Duration::from_secs(3600),
            max_attempts: 10,
        }
    }
}

/// What the engine does after an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again at `next_at` as attempt number `attempt`.
    RetryAt {
        /// The number of the next attempt (2 after the first failure).
        attempt: u32,
        /// The chosen delay.
        delay: Duration,
        /// `now + delay`.
        next_at: Timestamp,
    },
    /// Park it; `reason` explains why for the operator.
    DeadLetter {
        /// Why no more retries.
        reason: String,
    },
    /// Run conflict detection instead of retrying.
    Conflict,
}

impl RetryPolicy {
    /// The upper bound of the delay before attempt `failed_attempts + 1`:
    /// `min(max_delay, base * factor^(failed_attempts - 1))`.
    pub fn ceiling(&self, failed_attempts: u32) -> Duration {
        let exponent = failed_attempts.saturating_sub(1);
        let growth = self.factor.max(1).checked_pow(exponent).unwrap_or(u32::MAX);
        self.base
            .checked_mul(growth)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// Full jitter: a uniformly random delay in `[0, ceiling]`, so many nodes retrying after
    /// the same outage spread out instead of arriving together.
    pub fn delay<R: Rng + ?Sized>(&self, failed_attempts: u32, rng: &mut R) -> Duration {
        let ceiling = u64::try_from(self.ceiling(failed_attempts).as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rng.random_range(0..=ceiling))
    }

    /// Decides what follows failed attempt number `failed_attempts` (1 for the first try).
    pub fn decide<R: Rng + ?Sized>(
        &self,
        kind: FailureKind,
        direction: Direction,
        failed_attempts: u32,
        now: Timestamp,
        rng: &mut R,
    ) -> RetryDecision {
        match classify(kind, direction) {
            Disposition::Conflict => RetryDecision::Conflict,
            Disposition::DeadLetter => RetryDecision::DeadLetter {
                reason: format!("{kind:?} failures on {direction:?} are permanent"),
            },
            Disposition::Retry if failed_attempts >= self.max_attempts => {
                RetryDecision::DeadLetter {
                    reason: format!(
                        "gave up after {failed_attempts} attempts (max {})",
                        self.max_attempts
                    ),
                }
            }
            Disposition::Retry => {
                let delay = self.delay(failed_attempts, rng);
                RetryDecision::RetryAt {
                    attempt: failed_attempts + 1,
                    delay,
                    next_at: now.saturating_add(delay),
                }
            }
        }
    }
}

/// Serialises a `Duration` as whole milliseconds, which is what configuration files use.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn policy(base_ms: u64, factor: u32, max_ms: u64, max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(base_ms),
            factor,
            max_delay: Duration::from_millis(max_ms),
            max_attempts,
        }
    }

    #[test]
    fn classification_matches_the_documented_table() {
        use Direction::*;
        use FailureKind::*;
        assert_eq!(classify(Transient, Push), Disposition::Retry);
        assert_eq!(classify(Unauthorized, Pull), Disposition::Retry);
        assert_eq!(classify(NotFound, Pull), Disposition::Retry);
        assert_eq!(classify(NotFound, Push), Disposition::DeadLetter);
        assert_eq!(classify(Invalid, Pull), Disposition::DeadLetter);
        assert_eq!(classify(Gone, Push), Disposition::DeadLetter);
        assert_eq!(classify(Conflict, Push), Disposition::Conflict);
    }

    #[test]
    fn ceiling_grows_exponentially_then_caps() {
        let p = policy(100, 2, 1_000, 10);
        let ceilings: Vec<u128> = (1..=6).map(|a| p.ceiling(a).as_millis()).collect();
        assert_eq!(ceilings, vec![100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(p.ceiling(u32::MAX), Duration::from_millis(1_000));
    }

    #[test]
    fn same_seed_gives_same_schedule() {
        let p = RetryPolicy::default();
        let now = Timestamp::from_millis(1_000_000);
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (1..5)
                .map(|a| p.decide(FailureKind::Transient, Direction::Pull, a, now, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
    }

    #[test]
    fn policy_round_trips_through_json_as_millis() {
        let p = policy(250, 3, 60_000, 5);
        let json = serde_json::to_string(&p).expect("serialises");
        assert!(json.contains("\"base\":250"), "{json}");
        assert_eq!(
            serde_json::from_str::<RetryPolicy>(&json).expect("parses"),
            p
        );
    }

    proptest! {
        #[test]
        fn delays_stay_within_bounds(
            base in 1u64..10_000, factor in 1u32..5, max in 1u64..100_000,
            attempt in 1u32..40, seed: u64,
        ) {
            let p = policy(base, factor, max, u32::MAX);
            let mut rng = StdRng::seed_from_u64(seed);
            let now = Timestamp::from_millis(5_000);
            match p.decide(FailureKind::Transient, Direction::Push, attempt, now, &mut rng) {
                RetryDecision::RetryAt { attempt: next, delay, next_at } => {
                    prop_assert_eq!(next, attempt + 1);
                    prop_assert!(delay <= p.ceiling(attempt));
                    prop_assert!(delay <= p.max_delay);
                    prop_assert_eq!(next_at, now.saturating_add(delay));
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }

        #[test]
        fn attempts_beyond_max_are_dead(max_attempts in 1u32..20, extra in 0u32..5, seed: u64) {
            let p = policy(10, 2, 1_000, max_attempts);
            let mut rng = StdRng::seed_from_u64(seed);
            let d = p.decide(
                FailureKind::Transient, Direction::Pull, max_attempts + extra,
                Timestamp::from_millis(0), &mut rng,
            );
            let is_dead = matches!(d, RetryDecision::DeadLetter { .. });
            prop_assert!(is_dead);
        }
    }
}
