//! `DriverError`: how a driver says a call failed.

use abi_stable::std_types::RString;
use abi_stable::StableAbi;
use serde::{Deserialize, Serialize};

crate::open_enum! {
    /// What kind of failure a [`DriverError`] reports. The host uses it to
    /// decide what to tell the operator and whether to retry.
    ErrorKind default Internal {
        /// The device rejected the credentials.
        Authentication = 1 => "authentication",
        /// The credentials are valid but lack a privilege.
        Permission = 2 => "permission",
        /// The requested object does not exist on the device.
        NotFound = 3 => "not_found",
        /// The device or its management endpoint cannot be reached or is busy.
        Unavailable = 4 => "unavailable",
        /// The call ran past its deadline.
        Timeout = 5 => "timeout",
        /// The input (provider settings, system, ids) is invalid.
        InvalidInput = 6 => "invalid_input",
        /// The driver or the device does not support the operation.
        Unsupported = 7 => "unsupported",
        /// The device answered with data the driver cannot understand.
        Protocol = 8 => "protocol",
        /// A bug or an unexpected condition inside the driver.
        Internal = 9 => "internal",
        /// The driver panicked; the SDK glue caught the panic.
        Panicked = 10 => "panicked",
    }
}

impl ErrorKind {
    /// Whether errors of this kind are worth retrying by default.
    pub const fn default_retryable(self) -> bool {
        matches!(self, Self::Unavailable | Self::Timeout)
    }
}

/// The error every driver call can return. Plain data, so it crosses the
/// plugin boundary and the worker channel unchanged.
#[repr(C)]
#[derive(Clone, PartialEq, Eq, StableAbi, Serialize, Deserialize, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct DriverError {
    /// What went wrong, broadly.
    pub kind: ErrorKind,
    /// A human-readable explanation. Never contains secrets.
    pub message: RString,
    /// Whether the same call may succeed if repeated later.
    pub retryable: bool,
}

impl std::fmt::Debug for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DriverError({self}, retryable: {})", self.retryable)
    }
}

macro_rules! constructors {
    ($($(#[$meta:meta])* $fn_name:ident => $kind:ident),* $(,)?) => {
        $(
            $(#[$meta])*
            pub fn $fn_name(message: impl Into<String>) -> Self {
                Self::new(ErrorKind::$kind, message)
            }
        )*
    };
}

impl DriverError {
    /// An error of `kind`, retryable as the kind's default says.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: RString::from(message.into()),
            retryable: kind.default_retryable(),
        }
    }

    /// Overrides the retryable flag.
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    constructors! {
        /// [`ErrorKind::Authentication`].
        authentication => Authentication,
        /// [`ErrorKind::Permission`].
        permission => Permission,
        /// [`ErrorKind::NotFound`].
        not_found => NotFound,
        /// [`ErrorKind::Unavailable`] (retryable).
        unavailable => Unavailable,
        /// [`ErrorKind::Timeout`] (retryable).
        timeout => Timeout,
        /// [`ErrorKind::InvalidInput`].
        invalid_input => InvalidInput,
        /// [`ErrorKind::Unsupported`].
        unsupported => Unsupported,
        /// [`ErrorKind::Protocol`]: the device sent data the driver cannot use.
        protocol => Protocol,
        /// [`ErrorKind::Internal`].
        internal => Internal,
        /// [`ErrorKind::Panicked`]; the SDK glue produces these.
        panicked => Panicked,
    }
}

/// The result type of every driver call.
pub type DriverResult<T> = Result<T, DriverError>;
