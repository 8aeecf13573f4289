//! The sync pipeline: pure decisions (conflicts, retries) and, later, the pull and push services.

pub mod conflict;
pub mod retry;
