//! The worker process: `southbound __worker --channel-fd 3 <driver file>`.
//! Loads one driver library and serves calls from the channel, one thread
//! per call, until the host says `Shutdown` or goes away.
//!
//! The worker never writes to stdout itself; the host turns the worker's
//! stdout and stderr (the driver's prints and log lines) into its own log.

use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex};

use southbound_sdk::SDK_VERSION;

use super::dispatch;
use super::protocol::{read_frame, write_frame, HostMessage, WorkerMessage, PROTOCOL_VERSION};
use crate::loader::load_library;

/// Exit code of a worker that refused its file.
pub const EXIT_REFUSED: u8 = 2;

/// Runs the worker; returns its exit code.
pub fn run(driver_file: &Path, channel_fd: i32) -> ExitCode {
    // SAFETY: the host placed one end of a socketpair on this descriptor for
    // us alone (see `supervisor::spawn`); nothing else in this process owns it.
    let channel = unsafe { UnixStream::from_raw_fd(channel_fd) };
    let mut reader = match channel.try_clone() {
        Ok(reader) => reader,
        Err(e) => {
            eprintln!("southbound-driver ERROR worker cannot use its channel: {e}");
            return ExitCode::FAILURE;
        }
    };
    let writer = Arc::new(Mutex::new(channel));
    let send = |message: &WorkerMessage| {
        let mut writer = writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        write_frame(&mut *writer, message)
    };

    let (driver, info) = match load_library(driver_file) {
        Ok(loaded) => loaded,
        Err(reason) => {
            let _ = send(&WorkerMessage::Refused {
                protocol: PROTOCOL_VERSION,
                reason,
            });
            return ExitCode::from(EXIT_REFUSED);
        }
    };
    if send(&WorkerMessage::Ready {
        protocol: PROTOCOL_VERSION,
        sdk_version: SDK_VERSION.into(),
        info,
    })
    .is_err()
    {
        return ExitCode::FAILURE;
    }

    let driver = Arc::new(driver);
    let in_flight = Arc::new((Mutex::new(0usize), Condvar::new()));
    loop {
        match read_frame::<HostMessage>(&mut reader) {
            Ok(Some(HostMessage::Call { id, ctx, request })) => {
                let driver = Arc::clone(&driver);
                let writer = Arc::clone(&writer);
                let in_flight = Arc::clone(&in_flight);
                *in_flight
                    .0
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
                std::thread::spawn(move || {
                    let result = dispatch(&driver, &ctx, &request);
                    let mut channel = writer
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if let Err(e) = write_frame(&mut *channel, &WorkerMessage::Reply { id, result })
                    {
                        eprintln!("southbound-driver ERROR worker cannot send reply {id}: {e}");
                        // Too large to encode, say: answer with the reason rather than nothing.
                        let error = southbound_sdk::DriverError::internal(format!(
                            "the driver's answer cannot be sent to the host: {e}"
                        ));
                        let _ = write_frame(
                            &mut *channel,
                            &WorkerMessage::Reply {
                                id,
                                result: Err(error),
                            },
                        );
                    }
                    drop(channel);
                    let (count, done) = &*in_flight;
                    *count
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) -= 1;
                    done.notify_all();
                });
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
            Err(e) => {
                eprintln!("southbound-driver ERROR worker channel broken: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
}
