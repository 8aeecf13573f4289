//! A budget of warnings per minute for what any caller can cause: requests with an unknown
//! token or without the needed scope are logged, but a caller sending thousands of them must
//! not fill the disk of a machine nobody watches. Past the budget, the rest of the minute's
//! warnings are counted and the count is logged with the next warning after it.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Warnings logged per window at most.
const PER_WINDOW: u32 = 20;
/// The window the budget renews after.
const WINDOW: Duration = Duration::from_secs(60);

/// One kind of warning's budget.
#[derive(Debug)]
pub struct LogBudget {
    window: Mutex<Option<Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    logged: u32,
    suppressed: u64,
}

/// Whether to log a warning now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Log it, saying that `suppressed` warnings like it were left out before it.
    Log { suppressed: u64 },
    /// Leave it out; it is counted.
    Suppress,
}

impl LogBudget {
    /// A budget not yet used.
    pub const fn new() -> Self {
        LogBudget {
            window: Mutex::new(None),
        }
    }

    /// Whether a warning at `now` is logged.
    pub fn spend(&self, now: Instant) -> Verdict {
        // A window is changed whole under the lock; a panic elsewhere cannot tear it.
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        match window.as_mut() {
            Some(current) if now.duration_since(current.started) < WINDOW => {
                if current.logged < PER_WINDOW {
                    current.logged += 1;
                    Verdict::Log { suppressed: 0 }
                } else {
                    current.suppressed += 1;
                    Verdict::Suppress
                }
            }
            previous => {
                let suppressed = previous.map_or(0, |previous| previous.suppressed);
                *window = Some(Window {
                    started: now,
                    logged: 1,
                    suppressed: 0,
                });
                Verdict::Log { suppressed }
            }
        }
    }
}

impl Default for LogBudget {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_logged_up_to_the_budget_and_counted_after_it() {
        let budget = LogBudget::new();
        let start = Instant::now();
        let verdicts: Vec<Verdict> = (0..1000).map(|_| budget.spend(start)).collect();
        let logged = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Log { .. }))
            .count();
        assert_eq!(logged, PER_WINDOW as usize);
        assert_eq!(verdicts[0], Verdict::Log { suppressed: 0 });
        assert_eq!(verdicts[999], Verdict::Suppress);
        // The next window logs again and says how many were left out.
        let later = start + WINDOW;
        assert_eq!(
            budget.spend(later),
            Verdict::Log {
                suppressed: 1000 - u64::from(PER_WINDOW)
            }
        );
        assert_eq!(budget.spend(later), Verdict::Log { suppressed: 0 });
    }
}
