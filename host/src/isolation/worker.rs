//! The worker process: `southbound __worker --channel-fd 3 --max-answer
//! <bytes> <driver file>`. Loads one driver library and serves calls from the
//! channel, each on a thread of its own (threads are reused), until the host
//! says `Shutdown` or goes away.
//!
//! The worker never writes to stdout itself; the host turns the worker's
//! stdout and stderr (the driver's prints and log lines) into its own log.

use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex};

use southbound_sdk::SDK_VERSION;

use super::containment::{Containment, Fences};
use super::dispatch;
use super::namespace;
use super::protocol::{
    encode, encode_handshake, read_frame, write_frame, HostMessage, WorkerMessage, MAX_CALL_FRAME,
    PROTOCOL_VERSION,
};
use crate::loader::load_library;

/// Exit code of a worker that refused its file.
pub const EXIT_REFUSED: u8 = 2;

/// Exit code of a worker whose channel broke under it (the driver closed or
/// replaced the descriptor): it can answer nothing more.
pub const EXIT_CHANNEL_BROKEN: u8 = 4;

/// Lowest descriptor the worker moves its channel to, away from the low
/// numbers drivers and the libraries they use tend to close or reuse.
const CHANNEL_FD_FLOOR: i32 = 512;

/// A call to run on a thread of its own.
type Job = Box<dyn FnOnce() + Send>;

/// Threads for calls, reused: each call runs on a thread of its own (calls
/// block on the driver's runtime), but starting a thread per call costs
/// more than the rest of an empty call's round trip, so idle threads wait
/// for the next one.
#[derive(Default, Clone)]
struct CallThreads(Arc<(Mutex<Waiting>, Condvar)>);

/// Jobs not yet taken, and threads idle.
#[derive(Default)]
struct Waiting {
    jobs: Vec<Job>,
    idle: usize,
}

impl CallThreads {
    /// Hands `job` to an idle thread, or to a new one when none is idle.
    fn run(&self, job: Job) {
        let (state, wake) = &*self.0;
        let mut guard = state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.jobs.push(job);
        // Every job waiting needs a thread: an idle one if there are enough.
        if guard.idle >= guard.jobs.len() {
            wake.notify_one();
            return;
        }
        drop(guard);
        let pool = self.clone();
        std::thread::spawn(move || pool.serve());
    }

    fn serve(&self) {
        let (state, wake) = &*self.0;
        loop {
            let job = {
                let mut guard = state
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                loop {
                    if let Some(job) = guard.jobs.pop() {
                        break job;
                    }
                    guard.idle += 1;
                    guard = wake
                        .wait(guard)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    guard.idle -= 1;
                }
            };
            job();
        }
    }
}

/// The channel lost: say why on stderr and end the worker.
fn channel_broken(what: &str, e: &std::io::Error) -> ! {
    eprintln!("southbound-driver ERROR worker channel broken ({what}): {e}");
    std::process::exit(i32::from(EXIT_CHANNEL_BROKEN));
}

/// The first argument that makes a binary a worker (see [`run_if_worker`]).
pub const WORKER_ARG: &str = "__worker";

/// The worker's command line after the executable: `__worker --channel-fd
/// <fd> --max-answer <bytes> --fences <fences> <driver file>`. The one
/// definition, used by the host to launch a worker and by [`run_if_worker`] to
/// parse.
pub fn worker_args(
    channel_fd: i32,
    max_answer: usize,
    fences: Fences,
    driver_file: &Path,
) -> [std::ffi::OsString; 8] {
    [
        WORKER_ARG.into(),
        "--channel-fd".into(),
        channel_fd.to_string().into(),
        "--max-answer".into(),
        max_answer.to_string().into(),
        "--fences".into(),
        fences.to_arg().into(),
        driver_file.as_os_str().to_owned(),
    ]
}

/// Runs the worker if this process was started as one, before anything else
/// happens in `main` (no runtime, no log subscriber: the worker's stderr
/// becomes the host's log lines). Any binary that hosts drivers (`southbound`,
/// `southbound-conformance`) calls this first.
pub fn run_if_worker() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != WORKER_ARG {
        return None;
    }
    let rest: Vec<_> = args.collect();
    let number = |text: &std::ffi::OsString| text.to_str().and_then(|t| t.parse::<usize>().ok());
    let parsed = match rest.as_slice() {
        [fd_flag, fd, max_flag, max, fences_flag, fences, file]
            if fd_flag == "--channel-fd"
                && max_flag == "--max-answer"
                && fences_flag == "--fences" =>
        {
            let fences = fences.to_str().and_then(Fences::from_arg);
            number(fd)
                .and_then(|fd| i32::try_from(fd).ok())
                .zip(number(max))
                .zip(fences)
                .map(|((fd, max), fences)| (fd, max, fences, Path::new(file)))
        }
        _ => None,
    };
    Some(match parsed {
        Some((fd, max, fences, file)) => {
            let containment = fences.enter(&[fd, libc::STDOUT_FILENO, libc::STDERR_FILENO]);
            run(file, fd, max, containment)
        }
        None => {
            eprintln!(
                "southbound-driver ERROR {WORKER_ARG} is started by the host: {WORKER_ARG} --channel-fd FD --max-answer BYTES --fences FENCES DRIVER_FILE"
            );
            ExitCode::FAILURE
        }
    })
}

/// Runs the worker; returns its exit code. Answers over `max_answer` bytes
/// are not sent: the call gets an error saying so instead. `containment`
/// goes into the handshake.
pub fn run(
    driver_file: &Path,
    channel_fd: i32,
    max_answer: usize,
    containment: Containment,
) -> ExitCode {
    // Move the channel out of the way (close-on-exec, so children the driver
    // spawns do not hold it open either).
    // SAFETY: fcntl/close on the descriptor the host handed us.
    let moved = unsafe { libc::fcntl(channel_fd, libc::F_DUPFD_CLOEXEC, CHANNEL_FD_FLOOR) };
    if moved < 0 {
        eprintln!(
            "southbound-driver ERROR worker cannot use its channel: {}",
            std::io::Error::last_os_error()
        );
        return ExitCode::FAILURE;
    }
    // SAFETY: as above.
    unsafe { libc::close(channel_fd) };
    // SAFETY: the host placed one end of a socketpair on this descriptor for
    // us alone (see `launch::launch`); nothing else in this process owns it.
    let channel = unsafe { UnixStream::from_raw_fd(moved) };
    let mut reader = match channel.try_clone() {
        Ok(reader) => reader,
        Err(e) => {
            eprintln!("southbound-driver ERROR worker cannot use its channel: {e}");
            return ExitCode::FAILURE;
        }
    };
    let writer = Arc::new(Mutex::new(channel));
    let send_handshake = |message: &WorkerMessage| {
        let frame = encode_handshake(message, max_answer)?;
        let mut writer = writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        write_frame(&mut *writer, &frame)
    };

    let (driver, info) = match load_library(driver_file) {
        Ok(loaded) => loaded,
        Err(reason) => {
            let _ = send_handshake(&WorkerMessage::Refused {
                protocol: PROTOCOL_VERSION,
                reason,
            });
            return ExitCode::from(EXIT_REFUSED);
        }
    };
    if send_handshake(&WorkerMessage::Ready {
        protocol: PROTOCOL_VERSION,
        sdk_version: SDK_VERSION.into(),
        info,
        pid: namespace::host_pid(),
        containment,
    })
    .is_err()
    {
        return ExitCode::FAILURE;
    }

    let driver = Arc::new(driver);
    let in_flight = Arc::new((Mutex::new(0usize), Condvar::new()));
    let threads = CallThreads::default();
    loop {
        match read_frame::<HostMessage>(&mut reader, MAX_CALL_FRAME) {
            Ok(Some(HostMessage::Call { id, ctx, request })) => {
                let driver = Arc::clone(&driver);
                let writer = Arc::clone(&writer);
                let in_flight = Arc::clone(&in_flight);
                *in_flight
                    .0
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
                threads.run(Box::new(move || {
                    let name = request.name();
                    let result = dispatch(&driver, &ctx, &request);
                    // Encoded before the channel is locked: a large answer
                    // does not hold up the others.
                    let reply = WorkerMessage::Reply { id, result };
                    let frame = encode(&reply, max_answer).or_else(|e| {
                        let error = southbound_sdk::DriverError::internal(format!(
                            "the driver's answer to {name} cannot be sent to the host: {e} (isolation setting max_answer_mib)"
                        ));
                        encode(&WorkerMessage::Reply { id, result: Err(error) }, max_answer)
                    });
                    let mut channel = writer
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    match frame {
                        Ok(frame) => {
                            if let Err(e) = write_frame(&mut *channel, &frame) {
                                channel_broken(&format!("sending reply {id}"), &e);
                            }
                        }
                        Err(e) => {
                            eprintln!(
                                "southbound-driver ERROR worker cannot encode reply {id}: {e}"
                            )
                        }
                    }
                    drop(channel);
                    // Freed only now, off the host's wait: freeing a large
                    // answer (thousands of objects) takes longer than
                    // encoding it, and the host decodes meanwhile.
                    drop(reply);
                    let (count, done) = &*in_flight;
                    *count
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) -= 1;
                    done.notify_all();
                }));
            }
            Ok(Some(HostMessage::Shutdown)) => {
                // Finish what is in flight, then exit.
                let (count, done) = &*in_flight;
                let mut count = count
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                while *count > 0 {
                    count = done
                        .wait(count)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                return ExitCode::SUCCESS;
            }
            // The host is gone: nobody is waiting for the answers.
            Ok(None) => return ExitCode::SUCCESS,
            Err(e) => channel_broken("reading", &e),
        }
    }
}
