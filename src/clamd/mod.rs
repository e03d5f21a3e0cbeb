//! Talking to ClamAV's clamd: an async client of our own, strict reply and VERSION parsing,
//! and a private clamd started for one run.

pub mod client;
pub mod daemon;
pub mod fdpass;
pub mod reply;
pub mod version;

pub use client::{Address, ClamdError, Client, Instream, Timeouts};
pub use daemon::{DaemonError, DaemonOptions, INSTALL_HINT, PrivateClamd};
pub use fdpass::Fildes;
pub use reply::{ScanReply, parse_fildes_reply, parse_scan_reply};
pub use version::{ClamdVersion, VersionError, parse_version};
