//! relgate: a release acceptance orchestrator.
//!
//! A validated pipeline ([`model`]) names artefacts, signers and gates. `run` stages the
//! artefacts ([`stage`]), drives the gates ([`engine`]) — each collects evidence and is then
//! judged purely ([`gates`]) — appends every step to a hash-chained log ([`log`]) and publishes
//! all or nothing ([`publish`]). [`replay`] judges a recorded release again, offline.

pub mod agent;
pub mod approval;
pub mod audit;
pub mod clamd;
pub mod commands;
pub mod config;
pub mod dav;
pub mod digest;
pub mod engine;
pub mod exit;
pub mod folder;
#[doc(hidden)]
pub mod fuzzing;
pub mod gates;
pub mod git;
pub mod http;
pub mod identity;
pub mod intoto;
pub mod layout;
pub mod log;
pub mod model;
pub mod names;
pub mod netrc;
pub mod notify;
pub mod output;
pub mod publish;
pub mod record;
pub mod replay;
pub mod report;
pub mod s3;
pub mod sarif;
pub mod share;
pub mod signers;
pub mod signkey;
pub mod sshsig;
pub mod stage;
pub mod trust;
pub mod verdict;
pub mod verify;
pub mod view;
pub mod whatif;
