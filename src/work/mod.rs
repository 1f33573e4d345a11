//! The background part of operations: the [`executor`] runs, cancels and recovers every
//! running operation; [`import`] fetches and measures an image from a URI. Below the
//! domain, whose rules it is given (how an operation ends) rather than importing them.

pub mod executor;
pub mod import;
pub mod timing;
