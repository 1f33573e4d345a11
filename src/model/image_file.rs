//! What an import found in an image's bytes: its format, its sizes and its checksum. The
//! import measures them (`work::import`); the domain decides what the image becomes
//! (`domain::transitions::ready_resource`); the store carries them between the two.

use std::fmt;

/// What an image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Qcow2 { version: u32 },
    Vmdk { stream_optimized: bool },
    VhdFixed,
    VhdDynamic,
    Iso9660,
    Raw,
}

impl fmt::Display for Format {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::Qcow2 { version } => write!(formatter, "qcow2 (version {version})"),
            Format::Vmdk {
                stream_optimized: true,
            } => formatter.write_str("VMDK (stream-optimized)"),
            Format::Vmdk {
                stream_optimized: false,
            } => formatter.write_str("VMDK (sparse)"),
            Format::VhdFixed => formatter.write_str("VHD (fixed)"),
            Format::VhdDynamic => formatter.write_str("VHD (dynamic)"),
            Format::Iso9660 => formatter.write_str("ISO 9660"),
            Format::Raw => formatter.write_str("raw"),
        }
    }
}

/// A recognized image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recognized {
    pub format: Format,
    /// The size of the disk the image describes, in bytes.
    pub virtual_size: u64,
    /// The size of the image file itself, in bytes.
    pub file_size: u64,
}

/// What a finished transfer measured: the domain makes the READY image from it
/// (`domain::transitions::ready_resource`).
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub recognized: Recognized,
    /// The MD5 of the file, lowercase hex (bare-metal imports only; empty otherwise).
    pub md5_hex: String,
}
