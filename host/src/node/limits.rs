//! Process limits a node serving many children needs: the open-file limit, raised at start-up
//! from the soft limit most systems default to (1024) to the hard limit the operator allows,
//! and a listen backlog sized for a fleet.
//!
//! Every long-polling child holds a connection, and each is a file descriptor; at the common
//! soft limit a parent with a thousand children runs out, `accept` fails, and `/healthz` and
//! writes time out with them. When the node restarts, its children all reconnect at once; a
//! backlog of the default 128 overflows and the kernel drops their connection attempts.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

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

/// Where the kernel caps every listen backlog.
const SOMAXCONN: &str = "/proc/sys/net/core/somaxconn";

/// A listener on `address` (an IP address with a port, checked when the config was loaded)
/// whose accept queue holds `backlog` connections, or as many as the kernel allows (logged
/// when that is fewer).
pub fn listen(address: &str, backlog: u32) -> std::io::Result<TcpListener> {
    let address: SocketAddr = address
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // A restarted node binds again at once, while its old connections are in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    let kernel_cap = std::fs::read_to_string(SOMAXCONN)
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok());
    match kernel_cap {
        Some(cap) if cap < backlog => tracing::warn!(
            backlog,
            somaxconn = cap,
            "the kernel caps the listen backlog below the configured one; raise net.core.somaxconn"
        ),
        _ => tracing::debug!(backlog, "listen backlog"),
    }
    socket.listen(backlog)
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

    #[tokio::test]
    async fn a_listener_takes_connections_and_rejects_a_name_for_an_address() {
        let listener = listen("127.0.0.1:0", 4096).unwrap();
        let address = listener.local_addr().unwrap();
        let (connected, accepted) =
            tokio::join!(tokio::net::TcpStream::connect(address), listener.accept());
        connected.unwrap();
        accepted.unwrap();
        let error = listen("localhost:80", 16).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    }
}
