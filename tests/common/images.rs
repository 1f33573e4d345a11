//! Fixture images for the import tests: made by `qemu-img` (Debian's qemu-utils), or
//! written here (ISO 9660).

/// An image made by `qemu-img create -f FORMAT [-o OPTIONS] SIZE`, read back.
pub fn qemu_img(format: &str, options: &str, size: &str) -> Vec<u8> {
    let path = std::env::temp_dir().join(format!(
        "imageplane-import-{:016x}.{format}",
        rand::random::<u64>()
    ));
    let mut command = std::process::Command::new("qemu-img");
    command.args(["create", "-q", "-f", format]);
    if !options.is_empty() {
        command.args(["-o", options]);
    }
    let status = command
        .arg(&path)
        .arg(size)
        .status()
        .expect("qemu-img runs (install Debian's qemu-utils)");
    assert!(status.success());
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    bytes
}

/// A minimal ISO 9660 image: `blocks` logical blocks of 2048 bytes, all present.
pub fn iso(blocks: u32) -> Vec<u8> {
    let mut image = vec![0u8; blocks as usize * 2048];
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
    for (index, byte) in image[18 * 2048..].iter_mut().enumerate() {
        *byte = (index % 251) as u8;
    }
    image
}
