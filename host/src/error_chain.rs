//! Showing an error with its causes. Each error in this crate says only its own part and
//! keeps its cause as `source`, so a message is complete only with the whole chain: that is
//! what logs, HTTP error bodies and audit records print.

use std::error::Error;
use std::fmt;

/// Displays `error` and every cause after it, separated by `: `.
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        // Chains are short and acyclic by construction; the limit only guards a foreign
        // error type whose `source` loops back.
        let mut depth = 0;
        while let Some(error) = cause {
            if depth == 32 {
                return f.write_str(": ...");
            }
            write!(f, ": {error}")?;
            cause = error.source();
            depth += 1;
        }
        Ok(())
    }
}

/// `error` with its causes, as one line.
pub fn chain(error: &(dyn Error + 'static)) -> String {
    Chain(error).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot start")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("disk full")]
    struct Inner;

    #[test]
    fn every_cause_appears_once() {
        assert_eq!(chain(&Outer(Inner)), "cannot start: disk full");
        assert_eq!(chain(&Inner), "disk full");
    }
}
