//! The worker channel: length-prefixed JSON frames on a Unix socketpair
//! (fd 3 in the worker, never stdout, so a driver that prints cannot
//! corrupt it).
//!
//! A frame is a 4-byte big-endian length followed by one JSON message. The
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
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest frame either side accepts (a `large` ScaleIO discovery is ~10 MB).
pub const MAX_FRAME: usize = 512 * 1024 * 1024;

/// The worker's file descriptor for the channel.
pub const WORKER_CHANNEL_FD: i32 = 3;

/// Worker to host.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerMessage {
    /// The driver is loaded and ready.
    Ready {
        /// The worker's [`PROTOCOL_VERSION`].
        protocol: u32,
        /// The SDK version the worker (host binary) was built with.
        sdk_version: String,
        /// What the driver reported.
        info: DriverInfo,
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
#[serde(tag = "type", rename_all = "snake_case")]
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

fn encode(message: &impl Serialize) -> io::Result<Vec<u8>> {
    let body = serde_json::to_vec(message).map_err(io::Error::other)?;
    if body.len() > MAX_FRAME {
        return Err(io::Error::other(format!(
            "frame of {} bytes exceeds the limit",
            body.len()
        )));
    }
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> io::Result<T> {
    serde_json::from_slice(body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn frame_length(header: [u8; 4]) -> io::Result<usize> {
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the limit"),
        ));
    }
    Ok(len)
}

/// Writes one frame (blocking; the worker side).
pub fn write_frame(writer: &mut impl Write, message: &impl Serialize) -> io::Result<()> {
    writer.write_all(&encode(message)?)?;
    writer.flush()
}

/// Reads one frame (blocking); `None` at a clean end of stream.
pub fn read_frame<T: DeserializeOwned>(reader: &mut impl Read) -> io::Result<Option<T>> {
    let mut header = [0u8; 4];
    match reader.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; frame_length(header)?];
    reader.read_exact(&mut body)?;
    decode(&body).map(Some)
}

/// Writes one frame (async; the host side).
pub async fn write_frame_async(
    writer: &mut (impl AsyncWriteExt + Unpin),
    message: &impl Serialize,
) -> io::Result<()> {
    writer.write_all(&encode(message)?).await?;
    writer.flush().await
}

/// Reads one frame (async); `None` at a clean end of stream.
pub async fn read_frame_async<T: DeserializeOwned>(
    reader: &mut (impl AsyncReadExt + Unpin),
) -> io::Result<Option<T>> {
    let mut header = [0u8; 4];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; frame_length(header)?];
    reader.read_exact(&mut body).await?;
    decode(&body).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_oversized_frames_are_refused() {
        let mut buffer = Vec::new();
        write_frame(&mut buffer, &HostMessage::Shutdown).unwrap();
        write_frame(
            &mut buffer,
            &WorkerMessage::Refused {
                protocol: PROTOCOL_VERSION,
                reason: crate::loader::Refusal::NoRootModule,
            },
        )
        .unwrap();
        let mut reader = buffer.as_slice();
        assert!(matches!(
            read_frame::<HostMessage>(&mut reader).unwrap(),
            Some(HostMessage::Shutdown)
        ));
        assert!(matches!(
            read_frame::<WorkerMessage>(&mut reader).unwrap(),
            Some(WorkerMessage::Refused { protocol: 1, .. })
        ));
        assert!(
            read_frame::<HostMessage>(&mut reader).unwrap().is_none(),
            "clean end of stream"
        );

        let huge = (MAX_FRAME as u32 + 1).to_be_bytes();
        let err = read_frame::<HostMessage>(&mut huge.as_slice()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
