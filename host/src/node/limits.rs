//! Process limits a node serving many children needs: the open-file limit, raised at start-up
//! from the soft limit most systems default to (1024) to the hard limit the operator allows.
//!
//! Every long-polling child holds a connection, and each is a file descriptor; at the common
//! soft limit a parent with a thousand children runs out, `accept` fails, and `/healthz` and
//! writes time out with them.

/// A node with fewer descriptors than this is told how many children it can hold.
const COMFORTABLE_OPEN_FILES: u64 = 8192;

/// Raises this process's soft open-file limit to its hard limit and logs both. A limit that
/// cannot be read or raised is logged and left as it is: the node still runs, with fewer
/// connections.
pub fn raise_open_files() {
    let (before, hard) = match rlimit::Resource::NOFILE.get() {
        Ok(limits) => limits,
        Err(error) => {
            tracing::warn!(%error, "cannot read the open-file limit");
            return;
        }
    };
    let soft = match rlimit::increase_nofile_limit(hard) {
        Ok(soft) => soft,
        Err(error) => {
            tracing::warn!(%error, soft = before, hard, "cannot raise the open-file limit");
            before
        }
    };
    if soft < COMFORTABLE_OPEN_FILES {
        tracing::warn!(
            before,
            soft,
            hard,
            "open-file limit is low: this node can hold about {} child connections at once; raise the hard limit (LimitNOFILE= in a systemd unit, nofile in limits.conf)",
            soft.saturating_sub(64)
        );
    } else {
        tracing::info!(before, soft, hard, "open-file limit");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let (before, _) = rlimit::Resource::NOFILE.get().unwrap();
        raise_open_files();
        let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap();
        assert!(soft >= before);
        assert_eq!(soft, hard);
    }
}
