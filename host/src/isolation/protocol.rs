//! The worker channel: length-prefixed frames on a Unix socketpair (fd 3 in
//! the worker, never stdout, so a driver that prints cannot corrupt it).
//!
//! A frame is a 4-byte big-endian length followed by one message, at most
//! the driver's `max_answer` bytes: the host checks the length before it
//! allocates anything, so what a worker claims never sizes the host's
//! memory. The worker speaks first, in JSON: `Ready` (with
//! [`PROTOCOL_VERSION`], its SDK version and the driver's info) or `Refused`
//! (why the file cannot be served), so that a worker of another protocol
//! version is still understood well enough to be named. Every later frame
//! (`Call`s, each answered by a `Reply` with the same id, in any order;
//! `Shutdown`, which asks the worker to finish its calls and exit) is
//! postcard: both ends are the same build of the same binary (the handshake
//! checks it), so a positional binary format is safe, and it decodes a large
//! inventory several times faster than JSON.
//!
//! The host routes a `Reply` by its call id before it decodes the answer
//! (postcard writes the variant index, then the id, first): an answer nobody
//! waits for any more is dropped undecoded, and each answer is decoded by
//! the call that waits for it, so concurrent calls decode side by side and
//! the channel is read on meanwhile. A shared answer (host components)
//! that comes back byte for byte is not decoded again ([`AnswerCache`]).
//!
//! The protocol version is the channel's own: it changes only when these
//! messages do, independently of the product and SDK versions.

use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use southbound_sdk::{CallContext, DriverError, DriverInfo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{lock, DriverRequest, DriverResponse};

/// Version of the worker channel protocol.
pub const PROTOCOL_VERSION: u32 = 3;

/// Largest frame the host sends (calls are small; a generous bound).
pub const MAX_CALL_FRAME: usize = 16 * 1024 * 1024;

/// Send buffer the worker's end of the channel asks for, at most (the kernel
/// caps it at `net.core.wmem_max`, 208 KiB by default, and doubles that for
/// bookkeeping). With the default 208 KiB a `large` ScaleIO host list (about
/// 290 KiB) took several writes, each waiting for the host to read, and
/// the host read its last part only after the worker had moved on.
pub const ANSWER_SEND_BUFFER: usize = 4 * 1024 * 1024;

/// Widens the send buffer of the worker's end of the channel (the
/// worker's writes are the answers) to fit an answer of `max_answer`
/// bytes, up to [`ANSWER_SEND_BUFFER`], so that a large answer goes into
/// the channel in one write while the host reads it. Returns the size the
/// kernel granted.
pub fn widen_answer_buffer(
    worker_end: &std::os::unix::net::UnixStream,
    max_answer: usize,
) -> io::Result<usize> {
    let socket = socket2::SockRef::from(worker_end);
    socket.set_send_buffer_size(max_answer.min(ANSWER_SEND_BUFFER))?;
    socket.send_buffer_size()
}

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
        /// How the worker's processes are contained.
        containment: super::containment::Containment,
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

/// Puts the 4-byte length in front of an encoded body, or refuses a body
/// over `max` bytes.
fn finish_frame(mut frame: Vec<u8>, max: usize) -> io::Result<Vec<u8>> {
    let len = frame.len() - 4;
    if len > max {
        return Err(invalid(format!(
            "a frame of {len} bytes is over the limit of {max} bytes"
        )));
    }
    frame[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(frame)
}

/// Encodes one frame (binary) of at most `max` bytes.
pub fn encode(message: &impl Serialize, max: usize) -> io::Result<Vec<u8>> {
    let frame = postcard::to_extend(message, vec![0u8; 4]).map_err(io::Error::other)?;
    finish_frame(frame, max)
}

/// Encodes the worker's handshake (`Ready` or `Refused`) as a JSON frame.
pub fn encode_handshake(message: &WorkerMessage, max: usize) -> io::Result<Vec<u8>> {
    let mut frame = vec![0u8; 4];
    serde_json::to_writer(&mut frame, message).map_err(io::Error::other)?;
    finish_frame(frame, max)
}

/// Decodes a binary frame's body; bytes left over are junk too.
fn decode<T: DeserializeOwned>(body: &[u8]) -> io::Result<T> {
    let fail = |e: &dyn std::fmt::Display| invalid(format!("a frame that does not decode: {e}"));
    match postcard::take_from_bytes(body) {
        Ok((message, [])) => Ok(message),
        Ok((_, rest)) => Err(fail(&format_args!(
            "{} bytes after the message",
            rest.len()
        ))),
        Err(e) => Err(fail(&e)),
    }
}

/// Decodes a handshake's body loosely (any JSON), so that the host can read
/// the protocol version of a worker whose messages differ from its own.
pub fn decode_handshake(body: &[u8]) -> io::Result<serde_json::Value> {
    serde_json::from_slice(body)
        .map_err(|e| invalid(format!("a handshake that does not decode: {e}")))
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

/// Reads one binary frame of at most `max` bytes (blocking); `None` at a
/// clean end of stream.
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

/// Writes one binary frame (async; the host side).
pub async fn write_frame_async(
    writer: &mut (impl AsyncWriteExt + Unpin),
    message: &impl Serialize,
) -> io::Result<()> {
    writer.write_all(&encode(message, MAX_CALL_FRAME)?).await?;
    writer.flush().await
}

/// Reads the body of one frame of at most `max` bytes (async); `None` at a
/// clean end of stream.
pub async fn read_body_async(
    reader: &mut (impl AsyncReadExt + Unpin),
    max: usize,
) -> io::Result<Option<Vec<u8>>> {
    let mut header = [0u8; 4];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; frame_length(header, max)?];
    reader.read_exact(&mut body).await?;
    Ok(Some(body))
}

/// Index of [`WorkerMessage::Reply`] among the message's variants, as
/// postcard writes it at the start of a frame (a varint, like the id after it).
const REPLY_VARIANT: u32 = 2;

/// A reply's answer as it came off the channel, not decoded yet.
#[derive(Debug)]
pub struct EncodedAnswer {
    body: Vec<u8>,
    answer_at: usize,
}

impl EncodedAnswer {
    fn bytes(&self) -> &[u8] {
        &self.body[self.answer_at..]
    }

    /// The call's outcome; an error if the bytes are not one. A shared
    /// answer ([`DriverResponse::is_shared`]) whose bytes are those of the
    /// one in `cache` is that answer again, not decoded a second time.
    pub fn decode(self, cache: &AnswerCache) -> io::Result<Result<DriverResponse, DriverError>> {
        if let Some((cached, response)) = lock(&cache.0).as_ref() {
            if cached.bytes() == self.bytes() {
                return Ok(Ok(response.clone()));
            }
        }
        let result: Result<DriverResponse, DriverError> = decode(self.bytes())?;
        if let Ok(response) = &result {
            if response.is_shared() {
                *lock(&cache.0) = Some((self, response.clone()));
            }
        }
        Ok(result)
    }
}

/// The last shared answer of one worker, with its bytes. Host components
/// are not owned by a system, so a driver gives the same list for every
/// system of a provider (and again at an unchanged rediscovery): a list
/// that comes back byte for byte is handed out again, not decoded anew.
/// Decoding is deterministic, so equal bytes are an equal answer; only
/// bytes that decoded are kept, so junk is never taken for an answer. Holds
/// one answer at most (its frame is within the worker's `max_answer`).
#[derive(Debug, Default)]
pub struct AnswerCache(std::sync::Mutex<Option<(EncodedAnswer, DriverResponse)>>);

/// A frame from the worker after the handshake, routed but not decoded.
#[derive(Debug)]
pub enum Incoming {
    /// `WorkerMessage::Reply`: the call id, and the answer undecoded.
    Reply {
        /// The call's id.
        id: u64,
        /// Its outcome, to decode.
        answer: EncodedAnswer,
    },
    /// Any other message, decoded (boxed: it dwarfs a reply).
    Other(Box<WorkerMessage>),
}

/// Routes a frame's body: a reply by its id alone, anything else decoded.
pub fn route(body: Vec<u8>) -> io::Result<Incoming> {
    if let Ok(((REPLY_VARIANT, id), rest)) = postcard::take_from_bytes::<(u32, u64)>(&body) {
        let answer_at = body.len() - rest.len();
        return Ok(Incoming::Reply {
            id,
            answer: EncodedAnswer { body, answer_at },
        });
    }
    decode(&body).map(|message| Incoming::Other(Box::new(message)))
}

/// Reads and routes ([`route`]) one frame from the worker of at most `max`
/// bytes (async); `None` at a clean end of stream.
pub async fn read_incoming_async(
    reader: &mut (impl AsyncReadExt + Unpin),
    max: usize,
) -> io::Result<Option<Incoming>> {
    match read_body_async(reader, max).await? {
        Some(body) => route(body).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use southbound_sdk::{RArc, RVec};

    #[test]
    fn a_widened_channel_takes_a_large_answer_in_one_write() {
        let (worker_end, _host_end) = std::os::unix::net::UnixStream::pair().unwrap();
        let granted = widen_answer_buffer(&worker_end, 64 << 20).unwrap();
        // About a `large` ScaleIO host list, more than a default buffer takes.
        let answer = vec![7u8; 300 * 1024];
        assert!(granted > answer.len(), "granted {granted} bytes");
        worker_end.set_nonblocking(true).unwrap();
        let written = (&worker_end).write(&answer).unwrap();
        assert_eq!(written, answer.len(), "one write, with nobody reading yet");
    }

    #[test]
    fn frames_round_trip_and_oversized_frames_are_refused() {
        const MAX: usize = 1024;
        let mut buffer = Vec::new();
        write_frame(&mut buffer, &encode(&HostMessage::Shutdown, MAX).unwrap()).unwrap();
        let reply = WorkerMessage::Reply {
            id: 7,
            result: Err(DriverError::timeout("late")),
        };
        write_frame(&mut buffer, &encode(&reply, MAX).unwrap()).unwrap();
        let mut reader = buffer.as_slice();
        assert!(matches!(
            read_frame::<HostMessage>(&mut reader, MAX).unwrap(),
            Some(HostMessage::Shutdown)
        ));
        assert!(matches!(
            read_frame::<WorkerMessage>(&mut reader, MAX).unwrap(),
            Some(WorkerMessage::Reply { id: 7, result: Err(e) }) if e.message == "late"
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
        junk.extend_from_slice(b"\xff\xff\xff\xff\xff");
        let err = read_frame::<HostMessage>(&mut junk.as_slice(), MAX).unwrap_err();
        assert!(err.to_string().contains("does not decode"), "{err}");
        // So is a valid message followed by bytes of nothing.
        let mut trailing = encode(&HostMessage::Shutdown, MAX).unwrap();
        trailing.push(0);
        let len = trailing.len() as u32 - 4;
        trailing[..4].copy_from_slice(&len.to_be_bytes());
        let err = read_frame::<HostMessage>(&mut trailing.as_slice(), MAX).unwrap_err();
        assert!(
            err.to_string().contains("1 bytes after the message"),
            "{err}"
        );
    }

    #[test]
    fn calls_and_answers_survive_the_binary_format_whole() {
        use southbound_sdk::{
            CapabilityInstance, Initiator, InitiatorProtocol, Protocol, ROption, Secret,
            StorageHostComponent, StoragePool, StorageProvider, StorageSystem,
        };
        let provider = StorageProvider {
            host: "gw".into(),
            port: 443,
            password: Secret::new("pässword"),
            ca_certificate_pem: ROption::RSome("sha256:ab".into()),
            ..StorageProvider::default()
        };
        let call = HostMessage::Call {
            id: u64::MAX,
            ctx: CallContext::with_timeout("r-1", std::time::Duration::from_secs(3)),
            request: Box::new(DriverRequest::DiscoverPools {
                provider: provider.clone(),
                system: StorageSystem {
                    native_id: "pd-1".into(),
                    // A code this SDK has no name for survives the trip.
                    protocols: vec![Protocol::SCALEIO, Protocol::from_code(77)].into(),
                    ..StorageSystem::default()
                },
            }),
        };
        let frame = encode(&call, MAX_CALL_FRAME).unwrap();
        let Some(HostMessage::Call { id, ctx, request }) =
            read_frame::<HostMessage>(&mut frame.as_slice(), MAX_CALL_FRAME).unwrap()
        else {
            panic!("not a call");
        };
        assert_eq!((id, ctx.request_id.as_str()), (u64::MAX, "r-1"));
        let DriverRequest::DiscoverPools {
            provider: sent,
            system,
        } = *request
        else {
            panic!("not discover_pools");
        };
        assert_eq!(sent, provider);
        assert_eq!(sent.password.expose(), "pässword");
        assert_eq!(
            system.protocols.as_slice(),
            &[Protocol::SCALEIO, Protocol::from_code(77)]
        );

        let pools = vec![StoragePool {
            native_id: "p".into(),
            total_capacity_kib: u64::MAX,
            maximum_thin_volume_size_kib: ROption::RSome(1),
            capabilities: vec![CapabilityInstance::new("media", "media")
                .with_property("MEDIA_TYPE", ["SSD", "HDD"])]
            .into(),
            ..StoragePool::default()
        }];
        let hosts = vec![StorageHostComponent {
            native_id: "h".into(),
            initiators: vec![Initiator {
                port: "sdc-1".into(),
                protocol: InitiatorProtocol::SCALEIO,
                ..Initiator::default()
            }]
            .into(),
            ..StorageHostComponent::default()
        }];
        let round_trip = |answer| {
            let reply = WorkerMessage::Reply {
                id: 1,
                result: Ok(answer),
            };
            let frame = encode(&reply, 1 << 20).unwrap();
            match read_frame::<WorkerMessage>(&mut frame.as_slice(), 1 << 20).unwrap() {
                Some(WorkerMessage::Reply { result: Ok(r), .. }) => r,
                other => panic!("{other:?}"),
            }
        };
        assert!(matches!(
            round_trip(DriverResponse::DiscoverPools(pools.clone().into())),
            DriverResponse::DiscoverPools(p) if p.as_slice() == pools.as_slice()
        ));
        assert!(matches!(
            round_trip(DriverResponse::DiscoverHostComponents(RArc::new(
                hosts.clone().into()
            ))),
            DriverResponse::DiscoverHostComponents(h) if h.as_slice() == hosts.as_slice()
        ));
    }

    #[test]
    fn replies_are_routed_by_id_before_their_answer_is_decoded() {
        let answer = Ok(DriverResponse::CapabilityDefinitions(RVec::new()));
        let frame = encode(
            &WorkerMessage::Reply {
                id: 300,
                result: answer,
            },
            1024,
        )
        .unwrap();
        let Incoming::Reply { id, answer } = route(frame[4..].to_vec()).unwrap() else {
            panic!("not routed as a reply");
        };
        assert_eq!(id, 300);
        assert!(matches!(
            answer.decode(&AnswerCache::default()).unwrap(),
            Ok(DriverResponse::CapabilityDefinitions(d)) if d.is_empty()
        ));

        // An answer of junk is found out by the call that decodes it.
        let mut junk = frame[4..7].to_vec();
        junk.extend_from_slice(b"\xff\xff\xff");
        let Incoming::Reply { id: 300, answer } = route(junk).unwrap() else {
            panic!("not routed as a reply");
        };
        let err = answer.decode(&AnswerCache::default()).unwrap_err();
        assert!(err.to_string().contains("does not decode"), "{err}");

        // Junk that is no reply is decoded whole, and refused.
        let err = route(b"\xff\xff\xff\xff\xff".to_vec()).unwrap_err();
        assert!(err.to_string().contains("does not decode"), "{err}");
    }

    #[test]
    fn a_shared_answer_that_comes_back_byte_for_byte_is_not_decoded_again() {
        use southbound_sdk::StorageHostComponent;
        let hosts = |name: &str| {
            DriverResponse::DiscoverHostComponents(RArc::new(
                vec![StorageHostComponent {
                    native_id: name.into(),
                    ..StorageHostComponent::default()
                }]
                .into(),
            ))
        };
        let arrive = |id: u64, answer: DriverResponse| {
            let reply = WorkerMessage::Reply {
                id,
                result: Ok(answer),
            };
            match route(encode(&reply, 1024).unwrap()[4..].to_vec()).unwrap() {
                Incoming::Reply { answer, .. } => answer,
                Incoming::Other(other) => panic!("{other:?}"),
            }
        };
        let shared = |outcome: io::Result<Result<DriverResponse, DriverError>>| match outcome {
            Ok(Ok(DriverResponse::DiscoverHostComponents(list))) => list,
            other => panic!("{other:?}"),
        };
        let cache = AnswerCache::default();
        let first = shared(arrive(1, hosts("h-1")).decode(&cache));
        // The same bytes under another call id: the same list, not a copy.
        let again = shared(arrive(2, hosts("h-1")).decode(&cache));
        assert!(std::ptr::eq(&*first, &*again));
        // Other bytes are decoded, and kept in its place.
        let other = shared(arrive(3, hosts("h-2")).decode(&cache));
        assert_eq!(other[0].native_id, "h-2");
        assert!(!std::ptr::eq(&*first, &*other));
        let other_again = shared(arrive(4, hosts("h-2")).decode(&cache));
        assert!(std::ptr::eq(&*other, &*other_again));

        // Answers that are not shared are never kept: cloning them would
        // cost what decoding does.
        let pools = DriverResponse::DiscoverPools(RVec::new());
        assert!(!pools.is_shared());
        arrive(5, pools).decode(&cache).unwrap().unwrap();
        let kept = lock(&cache.0);
        assert!(matches!(
            kept.as_ref(),
            Some((_, DriverResponse::DiscoverHostComponents(list))) if std::ptr::eq(&**list, &*other)
        ));
    }

    #[test]
    fn the_handshake_is_json_whatever_the_message() {
        let refused = WorkerMessage::Refused {
            protocol: PROTOCOL_VERSION,
            reason: crate::loader::Refusal::NoRootModule,
        };
        let frame = encode_handshake(&refused, 1024).unwrap();
        let value = decode_handshake(&frame[4..]).unwrap();
        assert_eq!(value["refused"]["protocol"], PROTOCOL_VERSION);
        assert_eq!(value["refused"]["reason"]["code"], "no_root_module");
        assert!(matches!(
            serde_json::from_value::<WorkerMessage>(value),
            Ok(WorkerMessage::Refused { .. })
        ));
    }
}
