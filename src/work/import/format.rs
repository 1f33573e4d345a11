//! Recognizes a disk image from its content, not its name, while it streams past, and
//! reads its virtual size from the header: qcow2 (versions 2 and 3), VMDK (monolithic
//! sparse and stream-optimized), VHD (fixed and dynamic), ISO 9660, and raw (anything
//! else; its virtual size is its length).
//!
//! [`Sniffer`] keeps only the first [`HEAD_BYTES`] and the last 512 bytes (a fixed VHD
//! keeps its only header, the footer, at the very end), so memory stays bounded whatever
//! the image's size. Every header field is checked before it is used: a header that
//! claims an impossible size is an error, never a panic or a huge allocation.

pub use crate::model::image_file::{Format, Recognized};
use std::fmt;

/// How much of the start of an image the sniffer keeps: enough for the ISO 9660 volume
/// descriptors that start at 32 KiB.
pub const HEAD_BYTES: usize = 64 * 1024;
/// The footer of a VHD.
const VHD_FOOTER_BYTES: usize = 512;
/// The largest virtual size accepted: 1 PiB. A header that claims more is corrupt or
/// hostile (the API's largest disk is 4 TiB).
pub const MAX_VIRTUAL_SIZE: u64 = 1 << 50;

/// Why an image cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(pub String);

impl fmt::Display for FormatError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Watches an image stream past and recognizes it at the end.
pub struct Sniffer {
    head: Vec<u8>,
    tail: Vec<u8>,
    total: u64,
}

impl Default for Sniffer {
    fn default() -> Sniffer {
        Sniffer::new()
    }
}

impl Sniffer {
    pub fn new() -> Sniffer {
        Sniffer {
            head: Vec::with_capacity(HEAD_BYTES),
            tail: Vec::with_capacity(2 * VHD_FOOTER_BYTES),
            total: 0,
        }
    }

    /// Takes the next piece of the stream.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        let room = HEAD_BYTES - self.head.len();
        self.head.extend_from_slice(&chunk[..room.min(chunk.len())]);
        // The tail: the last 512 bytes seen, compacted when it doubles.
        let chunk_tail = &chunk[chunk.len().saturating_sub(VHD_FOOTER_BYTES)..];
        if chunk_tail.len() == VHD_FOOTER_BYTES {
            self.tail.clear();
        }
        self.tail.extend_from_slice(chunk_tail);
        if self.tail.len() > VHD_FOOTER_BYTES {
            let excess = self.tail.len() - VHD_FOOTER_BYTES;
            self.tail.drain(..excess);
        }
    }

    /// Bytes seen so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// What the stream was.
    pub fn finish(&self) -> Result<Recognized, FormatError> {
        recognize(&self.head, &self.tail, self.total)
    }
}

/// Recognizes an image from its first bytes (`head`, up to [`HEAD_BYTES`]), its last
/// bytes (`tail`, up to 512) and its length.
pub fn recognize(head: &[u8], tail: &[u8], file_size: u64) -> Result<Recognized, FormatError> {
    let recognized = |format, virtual_size| {
        if virtual_size > MAX_VIRTUAL_SIZE {
            return Err(FormatError(format!(
                "the {format} header claims a virtual size of {virtual_size} bytes, more than \
                 the {MAX_VIRTUAL_SIZE} bytes an image may describe"
            )));
        }
        Ok(Recognized {
            format,
            virtual_size,
            file_size,
        })
    };
    if head.starts_with(b"QFI\xfb") {
        let (version, size) = qcow2(head)?;
        return recognized(Format::Qcow2 { version }, size);
    }
    if head.starts_with(b"KDMV") {
        let (stream_optimized, size) = vmdk(head)?;
        return recognized(Format::Vmdk { stream_optimized }, size);
    }
    if head.starts_with(b"# Disk DescriptorFile") {
        return Err(FormatError(
            "this is a VMDK descriptor without its data (a split or flat VMDK); \
             upload a monolithic sparse or stream-optimized VMDK"
                .into(),
        ));
    }
    if head.starts_with(b"conectix") {
        let (disk_type, size) = vhd_footer(head)?;
        return match disk_type {
            3 => recognized(Format::VhdDynamic, size),
            4 => Err(FormatError(
                "this is a differencing VHD, which needs its parent image; upload a fixed or \
                 dynamic VHD"
                    .into(),
            )),
            2 => recognized(Format::VhdFixed, size),
            other => Err(FormatError(format!(
                "VHD header has unknown disk type {other}"
            ))),
        };
    }
    if tail.len() == VHD_FOOTER_BYTES && tail.starts_with(b"conectix") {
        let (disk_type, size) = vhd_footer(tail)?;
        if disk_type == 2 {
            return recognized(Format::VhdFixed, size);
        }
    }
    if let Some(size) = iso9660(head)? {
        return recognized(Format::Iso9660, size);
    }
    recognized(Format::Raw, file_size)
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}
fn be_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}
fn le_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}
fn be_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}
fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}
fn le_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

fn truncated(format: &str) -> FormatError {
    FormatError(format!("the {format} header is truncated"))
}

/// qcow2: version at 4, backing file offset at 8, cluster_bits at 20, size at 24
/// (big-endian).
fn qcow2(head: &[u8]) -> Result<(u32, u64), FormatError> {
    let version = be_u32(head, 4).ok_or_else(|| truncated("qcow2"))?;
    if !(version == 2 || version == 3) {
        return Err(FormatError(format!(
            "qcow2 version {version} is not supported (2 and 3 are)"
        )));
    }
    let backing_file_offset = be_u64(head, 8).ok_or_else(|| truncated("qcow2"))?;
    if backing_file_offset != 0 {
        return Err(FormatError(
            "this qcow2 image has a backing file and needs it to be read; upload a standalone \
             image (qemu-img convert -O qcow2)"
                .into(),
        ));
    }
    let cluster_bits = be_u32(head, 20).ok_or_else(|| truncated("qcow2"))?;
    if !(9..=21).contains(&cluster_bits) {
        return Err(FormatError(format!(
            "the qcow2 header has cluster_bits {cluster_bits}, outside 9-21"
        )));
    }
    let size = be_u64(head, 24).ok_or_else(|| truncated("qcow2"))?;
    Ok((version, size))
}

/// VMDK sparse extent header: version at 4, capacity in 512-byte sectors at 12, compress
/// algorithm at 77 (little-endian). Stream-optimized images compress with deflate (1).
fn vmdk(head: &[u8]) -> Result<(bool, u64), FormatError> {
    let version = le_u32(head, 4).ok_or_else(|| truncated("VMDK"))?;
    if !(1..=3).contains(&version) {
        return Err(FormatError(format!(
            "VMDK sparse extent version {version} is not supported (1-3 are)"
        )));
    }
    let sectors = le_u64(head, 12).ok_or_else(|| truncated("VMDK"))?;
    let size = sectors.checked_mul(512).ok_or_else(|| {
        FormatError(format!(
            "the VMDK header claims {sectors} sectors, an impossible size"
        ))
    })?;
    let compression = le_u16(head, 77).ok_or_else(|| truncated("VMDK"))?;
    Ok((compression == 1, size))
}

/// VHD footer: current size at 48 and disk type at 60 (big-endian).
fn vhd_footer(footer: &[u8]) -> Result<(u32, u64), FormatError> {
    let size = be_u64(footer, 48).ok_or_else(|| truncated("VHD"))?;
    let disk_type = be_u32(footer, 60).ok_or_else(|| truncated("VHD"))?;
    Ok((disk_type, size))
}

/// ISO 9660: volume descriptors from sector 16 (2048-byte sectors), each `type, "CD001",
/// version`; the primary one (type 1) holds the volume space size at 80 and the logical
/// block size at 128, each recorded both little- and big-endian. `None` if there is no
/// ISO 9660 signature.
fn iso9660(head: &[u8]) -> Result<Option<u64>, FormatError> {
    const SECTOR: usize = 2048;
    let mut found_signature = false;
    for sector in 16.. {
        let start = sector * SECTOR;
        let Some(descriptor) = head.get(start..start + SECTOR) else {
            break;
        };
        if &descriptor[1..6] != b"CD001" {
            break;
        }
        found_signature = true;
        match descriptor[0] {
            1 => {
                let blocks_le = le_u32(descriptor, 80);
                let blocks_be = be_u32(descriptor, 84);
                let block_le = le_u16(descriptor, 128);
                let block_be = be_u16(descriptor, 130);
                let (Some(blocks), Some(block)) = (blocks_le, block_le) else {
                    return Err(truncated("ISO 9660"));
                };
                if blocks_be != Some(blocks) || block_be != Some(block) {
                    return Err(FormatError(
                        "the ISO 9660 primary volume descriptor is corrupt: its little- and \
                         big-endian sizes disagree"
                            .into(),
                    ));
                }
                if !matches!(block, 512 | 1024 | 2048) {
                    return Err(FormatError(format!(
                        "the ISO 9660 logical block size {block} is not 512, 1024 or 2048"
                    )));
                }
                return Ok(Some(u64::from(blocks) * u64::from(block)));
            }
            255 => break, // set terminator
            _ => continue,
        }
    }
    if found_signature {
        return Err(FormatError(
            "the ISO 9660 image has no primary volume descriptor".into(),
        ));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn qcow2_header(version: u32, size: u64) -> Vec<u8> {
        let mut header = vec![0u8; 512];
        header[..4].copy_from_slice(b"QFI\xfb");
        header[4..8].copy_from_slice(&version.to_be_bytes());
        header[20..24].copy_from_slice(&16u32.to_be_bytes());
        header[24..32].copy_from_slice(&size.to_be_bytes());
        header
    }

    fn iso(blocks: u32) -> Vec<u8> {
        let mut image = vec![0u8; 18 * 2048];
        let pvd = &mut image[16 * 2048..17 * 2048];
        pvd[0] = 1;
        pvd[1..6].copy_from_slice(b"CD001");
        pvd[6] = 1;
        pvd[80..84].copy_from_slice(&blocks.to_le_bytes());
        pvd[84..88].copy_from_slice(&blocks.to_be_bytes());
        pvd[128..130].copy_from_slice(&2048u16.to_le_bytes());
        pvd[130..132].copy_from_slice(&2048u16.to_be_bytes());
        let terminator = &mut image[17 * 2048..18 * 2048];
        terminator[0] = 255;
        terminator[1..6].copy_from_slice(b"CD001");
        image
    }

    fn sniff(image: &[u8], chunk: usize) -> Result<Recognized, FormatError> {
        let mut sniffer = Sniffer::new();
        for piece in image.chunks(chunk.max(1)) {
            sniffer.feed(piece);
        }
        sniffer.finish()
    }

    #[test]
    fn headers_give_format_and_virtual_size() {
        let image = qcow2_header(3, 10 << 30);
        let recognized = sniff(&image, 100).unwrap();
        assert_eq!(recognized.format, Format::Qcow2 { version: 3 });
        assert_eq!(recognized.virtual_size, 10 << 30);
        assert_eq!(recognized.file_size, 512);

        let recognized = sniff(&iso(1000), 4096).unwrap();
        assert_eq!(recognized.format, Format::Iso9660);
        assert_eq!(recognized.virtual_size, 1000 * 2048);

        let raw = vec![7u8; 100_000];
        let recognized = sniff(&raw, 333).unwrap();
        assert_eq!(
            (recognized.format, recognized.virtual_size),
            (Format::Raw, 100_000)
        );
    }

    #[test]
    fn a_fixed_vhd_is_found_by_its_footer_whatever_the_chunking() {
        let mut image = vec![0u8; 5000];
        let mut footer = vec![0u8; 512];
        footer[..8].copy_from_slice(b"conectix");
        footer[48..56].copy_from_slice(&5000u64.to_be_bytes());
        footer[60..64].copy_from_slice(&2u32.to_be_bytes());
        image.extend_from_slice(&footer);
        for chunk in [1, 7, 511, 512, 513, 4096, 100_000] {
            let recognized = sniff(&image, chunk).unwrap();
            assert_eq!(recognized.format, Format::VhdFixed, "chunk {chunk}");
            assert_eq!(recognized.virtual_size, 5000);
        }
    }

    #[test]
    fn impossible_headers_are_errors() {
        let error = sniff(&qcow2_header(3, u64::MAX), 512).unwrap_err();
        assert!(error.0.contains("virtual size"), "{error}");
        let error = sniff(&qcow2_header(7, 1 << 30), 512).unwrap_err();
        assert!(error.0.contains("version 7"), "{error}");
        let mut backed = qcow2_header(3, 1 << 30);
        backed[8..16].copy_from_slice(&512u64.to_be_bytes());
        let error = sniff(&backed, 512).unwrap_err();
        assert!(error.0.contains("backing file"), "{error}");
        let error = sniff(b"QFI\xfb\x00", 512).unwrap_err();
        assert!(error.0.contains("truncated"), "{error}");
        let mut vmdk = vec![0u8; 512];
        vmdk[..4].copy_from_slice(b"KDMV");
        vmdk[4..8].copy_from_slice(&1u32.to_le_bytes());
        vmdk[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
        let error = sniff(&vmdk, 512).unwrap_err();
        assert!(error.0.contains("impossible"), "{error}");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let signatures: [&[u8]; 5] = [
            b"QFI\xfb",
            b"KDMV",
            b"conectix",
            b"# Disk DescriptorFile",
            b"",
        ];
        for round in 0..300 {
            let length = rng.random_range(0..70_000);
            let mut image: Vec<u8> = (0..length).map(|_| rng.random()).collect();
            let signature = signatures[round % signatures.len()];
            if image.len() >= signature.len() {
                image[..signature.len()].copy_from_slice(signature);
            }
            if round % 3 == 0 && image.len() > 16 * 2048 + 6 {
                image[16 * 2048 + 1..16 * 2048 + 6].copy_from_slice(b"CD001");
            }
            let chunk = rng.random_range(1..9000);
            if let Ok(recognized) = sniff(&image, chunk) {
                assert!(recognized.virtual_size <= MAX_VIRTUAL_SIZE);
                assert_eq!(recognized.file_size, image.len() as u64);
            }
        }
    }
}
