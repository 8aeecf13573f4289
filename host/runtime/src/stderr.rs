//! A plugin's stderr: keeps only the most recent output, so a trap can be
//! explained with the panic message the plugin printed just before it.
//!
//! Unlike a fixed-capacity memory pipe it never refuses a write: a plugin
//! that prints a lot over its lifetime must not start trapping because a
//! buffer filled up.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// How much a single write may be; the guest splits larger writes.
const WRITE_PERMIT: usize = 64 * 1024;

/// The last `capacity` bytes a plugin wrote to stderr. Clones share the buffer.
#[derive(Clone)]
pub(crate) struct StderrTail {
    capacity: usize,
    buffer: Arc<Mutex<VecDeque<u8>>>,
}

impl StderrTail {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            buffer: Arc::new(Mutex::new(VecDeque::with_capacity(capacity))),
        }
    }

    /// The retained output, lossily decoded.
    pub(crate) fn text(&self) -> String {
        let buffer = self.lock();
        let (front, back) = buffer.as_slices();
        let mut bytes = Vec::with_capacity(buffer.len());
        bytes.extend_from_slice(front);
        bytes.extend_from_slice(back);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn append(&self, bytes: &[u8]) {
        let mut buffer = self.lock();
        let keep = bytes.len().min(self.capacity);
        let excess = (buffer.len() + keep).saturating_sub(self.capacity);
        buffer.drain(..excess);
        buffer.extend(&bytes[bytes.len() - keep..]);
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<u8>> {
        // Only bytes live here; a panicking writer cannot break an invariant.
        self.buffer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrTail {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for StderrTail {
    async fn ready(&mut self) {}
}

#[async_trait::async_trait]
impl OutputStream for StderrTail {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl tokio::io::AsyncWrite for StderrTail {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_most_recent_output_is_kept() {
        let mut tail = StderrTail::new(8);
        tail.write(Bytes::from_static(b"hello ")).unwrap();
        tail.write(Bytes::from_static(b"world")).unwrap();
        assert_eq!(tail.text(), "lo world");
        tail.write(Bytes::from_static(b"a very long line")).unwrap();
        assert_eq!(tail.text(), "ong line");
    }

    #[test]
    fn writes_are_never_refused() {
        let mut tail = StderrTail::new(4);
        for _ in 0..10_000 {
            assert_eq!(tail.check_write().unwrap(), WRITE_PERMIT);
            tail.write(Bytes::from_static(b"noise\n")).unwrap();
        }
        assert_eq!(tail.text().len(), 4);
    }
}
