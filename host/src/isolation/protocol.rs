//! The worker channel: length-prefixed JSON frames on a Unix socketpair
//! (fd 3 in the worker, never stdout, so a driver that prints cannot
//! corrupt it).
//!
//! A frame is a 4-byte big-endian length followed by one JSON message, at
//! most the driver's `max_answer` bytes: the host checks the length before it
//! allocates anything, so what a worker claims never sizes the host's memory.
//! Messages are externally tagged, so decoding goes straight into the typed
//! values (an internally tagged enum would first copy the whole answer into
//! an intermediate tree, several times its size). The
//! worker speaks first: `Ready` (with [`PROTOCOL_VERSION`], its SDK version
//! and the driver's info) or `Refused` (why the file cannot be served). Then
//! the host sends `Call`s, each answered by a `Reply` with the same id, in
//! any order; `Shutdown` asks the worker to finish its calls and exit.
//!
//! The protocol version is the channel's own: it changes only when these
//! messages do, independently of the product and SDK versions.

use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use southbound_sdk::{CallContext, DriverError, DriverInfo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{DriverRequest, DriverResponse};

/// Version of the worker channel protocol.
pub const PROTOCOL_VERSION: u32 = 2;

/// Largest frame the host sends (calls are small; a generous bound).
pub const MAX_CALL_FRAME: usize = 16 * 1024 * 1024;

/// The worker's file descriptor for the channel.
pub const WORKER_CHANNEL_FD: i32 = 3;

/// Worker to host.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerMessage {
    /// The driver is loaded and ready.
    Ready {
        /// The worker's [`PROTOCOL_VERSION`].
        protocol: u32,
        /// The SDK version the worker (host binary) was built with.
        sdk_version: String,
        /// What the driver reported.
        info: DriverInfo,
        /// The pid of the process serving calls, as the host sees it (not
        /// the host's child when the worker has its own PID namespace).
        pid: u32,
        /// How the worker's processes are contained (`namespace::describe`).
        containment: String,
    },
    /// The file cannot be served; the worker exits.
    Refused {
        /// The worker's [`PROTOCOL_VERSION`].
        protocol: u32,
        /// Why.
        reason: crate::loader::Refusal,
    },
    /// The answer to the call with this id.
    Reply {
        /// The call's id.
        id: u64,
        /// Its outcome.
        result: Result<DriverResponse, DriverError>,
    },
}

/// Host to worker.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostMessage {
    /// Perform a call.
    Call {
        /// Id the reply will carry.
        id: u64,
        /// Deadline and request id.
        ctx: CallContext,
        /// The call (boxed: it dwarfs the other message).
        request: Box<DriverRequest>,
    },
    /// Finish the calls in flight, then exit.
    Shutdown,
}

/// A frame too large for the other side, or that did not decode.
fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Encodes one frame of at most `max` bytes.
pub fn encode(message: &impl Serialize, max: usize) -> io::Result<Vec<u8>> {
    let mut frame = vec![0u8; 4];
    serde_json::to_writer(&mut frame, message).map_err(io::Error::other)?;
    let len = frame.len() - 4;
    if len > max {
        return Err(invalid(format!(
            "a frame of {len} bytes is over the limit of {max} bytes"
        )));
    }
    frame[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(frame)
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> io::Result<T> {
    serde_json::from_slice(body).map_err(|e| invalid(format!("a frame that does not decode: {e}")))
}

fn frame_length(header: [u8; 4], max: usize) -> io::Result<usize> {
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(invalid(format!(
            "a frame of {len} bytes is over the limit of {max} bytes"
        )));
    }
    Ok(len)
}

/// Writes one frame (blocking; the worker side).
pub fn write_frame(writer: &mut impl Write, frame: &[u8]) -> io::Result<()> {
    writer.write_all(frame)?;
    writer.flush()
}

/// Reads one frame of at most `max` bytes (blocking); `None` at a clean end
/// of stream.
pub fn read_frame<T: DeserializeOwned>(
    reader: &mut impl Read,
    max: usize,
) -> io::Result<Option<T>> {
    let mut header = [0u8; 4];
    match reader.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; frame_length(header, max)?];
    reader.read_exact(&mut body)?;
    decode(&body).map(Some)
}

/// Writes one frame (async; the host side).
pub async fn write_frame_async(
    writer: &mut (impl AsyncWriteExt + Unpin),
    message: &impl Serialize,
) -> io::Result<()> {
    writer.write_all(&encode(message, MAX_CALL_FRAME)?).await?;
    writer.flush().await
}

/// Reads one frame of at most `max` bytes (async); `None` at a clean end of
/// stream.
pub async fn read_frame_async<T: DeserializeOwned>(
    reader: &mut (impl AsyncReadExt + Unpin),
    max: usize,
) -> io::Result<Option<T>> {
    let mut header = [0u8; 4];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; frame_length(header, max)?];
    reader.read_exact(&mut body).await?;
    decode(&body).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_oversized_frames_are_refused() {
        const MAX: usize = 1024;
        let mut buffer = Vec::new();
        write_frame(&mut buffer, &encode(&HostMessage::Shutdown, MAX).unwrap()).unwrap();
        let refused = WorkerMessage::Refused {
            protocol: PROTOCOL_VERSION,
            reason: crate::loader::Refusal::NoRootModule,
        };
        write_frame(&mut buffer, &encode(&refused, MAX).unwrap()).unwrap();
        let mut reader = buffer.as_slice();
        assert!(matches!(
            read_frame::<HostMessage>(&mut reader, MAX).unwrap(),
            Some(HostMessage::Shutdown)
        ));
        assert!(matches!(
            read_frame::<WorkerMessage>(&mut reader, MAX).unwrap(),
            Some(WorkerMessage::Refused {
                protocol: PROTOCOL_VERSION,
                ..
            })
        ));
        assert!(
            read_frame::<HostMessage>(&mut reader, MAX)
                .unwrap()
                .is_none(),
            "clean end of stream"
        );

        // A claimed length over the limit is refused before anything is
        // allocated; so is encoding one.
        let huge = (MAX as u32 + 1).to_be_bytes();
        let err = read_frame::<HostMessage>(&mut huge.as_slice(), MAX).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("over the limit of 1024 bytes"));
        assert!(encode(&"x".repeat(2000), MAX).is_err());
        // Junk of a valid length is a decoding error, not a panic.
        let mut junk = 5u32.to_be_bytes().to_vec();
        junk.extend_from_slice(b"\xff\x00{[}");
        let err = read_frame::<HostMessage>(&mut junk.as_slice(), MAX).unwrap_err();
        assert!(err.to_string().contains("does not decode"), "{err}");
    }
}
