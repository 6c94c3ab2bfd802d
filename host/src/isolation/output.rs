//! What a worker prints: its stdout and stderr become host log lines.
//!
//! Invariants:
//! - Memory stays bounded whatever a driver writes: a line longer than
//!   [`MAX_LOG_LINE`] is cut, the rest read and counted, never kept, and the
//!   line ends with a marker saying how much was dropped.
//! - Bytes are decoded lossily: no byte a driver writes stops the forwarding
//!   while the worker lives.
//! - Lines in the SDK's log format keep their level; others are logged as
//!   info, tagged with the stream.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use southbound_sdk::log::Level;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::task::JoinHandle;

use super::lock;

/// Forwards a just-started worker's stdout and stderr to the host's log,
/// tagged with `label` and the pid in `pid`. Returns the stderr task (so
/// that a cause printed just before dying can be read to its end) and the
/// flag set when the worker reports an allocation failure there.
pub(super) fn forward(
    child: &mut tokio::process::Child,
    label: &Label,
    pid: &Arc<AtomicU32>,
) -> (Option<JoinHandle<()>>, Arc<AtomicBool>) {
    let out_of_memory = Arc::new(AtomicBool::new(false));
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(forward_stream(
            stdout,
            Arc::clone(label),
            Arc::clone(pid),
            "stdout",
            Arc::new(AtomicBool::new(false)),
        ));
    }
    let stderr_task = child.stderr.take().map(|stderr| {
        tokio::spawn(forward_stream(
            stderr,
            Arc::clone(label),
            Arc::clone(pid),
            "stderr",
            Arc::clone(&out_of_memory),
        ))
    });
    (stderr_task, out_of_memory)
}

/// What Rust's allocation-failure handler prints before aborting.
fn is_out_of_memory_line(line: &str) -> bool {
    line.contains("memory allocation of") && line.contains("failed")
}

fn log_line(label: &str, pid: u32, stream: &str, line: &str) {
    match southbound_sdk::log::parse_line(line) {
        Some((Level::Error, msg)) => tracing::error!(driver = label, pid, "{msg}"),
        Some((Level::Warn, msg)) => tracing::warn!(driver = label, pid, "{msg}"),
        Some((Level::Info, msg)) => tracing::info!(driver = label, pid, "{msg}"),
        Some((Level::Debug, msg)) => tracing::debug!(driver = label, pid, "{msg}"),
        None => tracing::info!(driver = label, pid, stream, "{line}"),
    }
}

/// The name log lines are tagged with: the file name until the handshake
/// tells the driver's name.
pub(super) type Label = Arc<Mutex<String>>;

/// Longest log line the host keeps from a worker; the rest of the line is
/// dropped and the line ends with a marker saying how much.
const MAX_LOG_LINE: usize = 16 * 1024;

/// Reads one line of at most `max` bytes (the rest of a longer line is read
/// and counted, never kept); `None` at the end of the stream. Whatever the
/// bytes, memory stays bounded.
async fn bounded_line(
    reader: &mut (impl tokio::io::AsyncBufRead + Unpin),
    max: usize,
) -> std::io::Result<Option<(Vec<u8>, usize)>> {
    let mut line = Vec::new();
    let mut dropped = 0usize;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok((!line.is_empty() || dropped > 0).then_some((line, dropped)));
        }
        let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(end) => (&buf[..end], Some(end + 1)),
            None => (buf, None),
        };
        let room = max.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        dropped += chunk.len().saturating_sub(room);
        let used = done.unwrap_or(buf.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(Some((line, dropped)));
        }
    }
}

/// Turns a worker's stdout or stderr into host log lines, noting whether the
/// worker reported an allocation failure (the cause of a following abort).
/// Lines are bounded ([`MAX_LOG_LINE`]) and decoded lossily: no byte a
/// driver writes stops the forwarding while the worker lives.
async fn forward_stream(
    stream: impl tokio::io::AsyncRead + Unpin,
    label: Label,
    pid: Arc<AtomicU32>,
    name: &'static str,
    out_of_memory: Arc<AtomicBool>,
) {
    let mut reader = BufReader::new(stream);
    loop {
        let (bytes, dropped) = match bounded_line(&mut reader, MAX_LOG_LINE).await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(
                    pid = pid.load(Ordering::SeqCst),
                    "worker {name} unreadable: {e}"
                );
                break;
            }
        };
        let mut line = String::from_utf8_lossy(&bytes).into_owned();
        if dropped > 0 {
            line.push_str(&format!(" [... {dropped} more bytes dropped]"));
        }
        let label = lock(&label).clone();
        log_line(&label, pid.load(Ordering::SeqCst), name, &line);
        if is_out_of_memory_line(&line) {
            out_of_memory.store(true, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bounded_line;

    async fn lines(input: &[u8], max: usize) -> Vec<(Vec<u8>, usize)> {
        let mut reader = tokio::io::BufReader::with_capacity(4, input);
        let mut lines = Vec::new();
        while let Some(line) = bounded_line(&mut reader, max).await.unwrap() {
            lines.push(line);
        }
        lines
    }

    #[tokio::test]
    async fn long_lines_are_cut_and_the_rest_counted_across_reads() {
        let got = lines(b"short\n0123456789abcdef\n\ntail", 8).await;
        assert_eq!(
            got,
            vec![
                (b"short".to_vec(), 0),
                (b"01234567".to_vec(), 8),
                (Vec::new(), 0),
                (b"tail".to_vec(), 0),
            ]
        );
    }

    #[tokio::test]
    async fn a_line_without_an_end_is_bounded_too() {
        let endless = vec![b'x'; 1000];
        assert_eq!(lines(&endless, 10).await, vec![(vec![b'x'; 10], 990)]);
        assert!(lines(b"", 10).await.is_empty());
    }
}
