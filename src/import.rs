//! Importing images from a URI: recognizing what the bytes are ([`format`]).
//!
//! Work in progress for issue [import]: the fetch and its wiring into the executor are not
//! built yet (see ARCHITECTURE.md, "What is not here yet").

pub mod format;
