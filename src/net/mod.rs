//! Networking: std::net's types whose blocking calls park the coroutine.

pub(crate) mod error;
pub(crate) mod socket;

pub use self::error::{Addr, OpError};
