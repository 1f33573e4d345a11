//! The records every layer shares: resources and operation records ([`resource`]) and how
//! Operation messages are built ([`operations`]), and what an import measured
//! ([`image_file`]). Data and its shape only: no rules, no
//! storage.

pub mod image_file;
pub mod operations;
pub mod resource;
