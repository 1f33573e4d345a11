//! Format recognition on real images made by `qemu-img` (from Debian's qemu-utils, which the
//! test suite needs): qcow2 versions 2 and 3, VMDK sparse and stream-optimized, VHD fixed
//! and dynamic, and raw, each streamed through the sniffer in several chunk sizes.

mod common;

use common::images::qemu_img;
use imageplane::work::import::format::{Format, Sniffer};

#[test]
fn images_made_by_qemu_img_are_recognized_with_their_virtual_size() {
    let cases = [
        (
            "v2.qcow2",
            "qcow2",
            "compat=0.10",
            "1G",
            Format::Qcow2 { version: 2 },
            1u64 << 30,
        ),
        (
            "v3.qcow2",
            "qcow2",
            "compat=1.1",
            "3G",
            Format::Qcow2 { version: 3 },
            3 << 30,
        ),
        (
            "sparse.vmdk",
            "vmdk",
            "subformat=monolithicSparse",
            "2G",
            Format::Vmdk {
                stream_optimized: false,
            },
            2 << 30,
        ),
        (
            "stream.vmdk",
            "vmdk",
            "subformat=streamOptimized",
            "1G",
            Format::Vmdk {
                stream_optimized: true,
            },
            1 << 30,
        ),
        (
            "fixed.vhd",
            "vpc",
            "subformat=fixed,force_size=on",
            "8M",
            Format::VhdFixed,
            8 << 20,
        ),
        (
            "dynamic.vhd",
            "vpc",
            "subformat=dynamic,force_size=on",
            "5G",
            Format::VhdDynamic,
            5 << 30,
        ),
        ("disk.raw", "raw", "", "3M", Format::Raw, 3 << 20),
    ];
    for (name, format, options, size, expected, virtual_size) in cases {
        let image = qemu_img(format, options, size);
        for chunk in [1000, 4096, 65_536, 1 << 20] {
            let mut sniffer = Sniffer::new();
            for piece in image.chunks(chunk) {
                sniffer.feed(piece);
            }
            let recognized = sniffer
                .finish()
                .unwrap_or_else(|error| panic!("{name}: {error}"));
            assert_eq!(recognized.format, expected, "{name}");
            assert_eq!(recognized.virtual_size, virtual_size, "{name}");
            assert_eq!(recognized.file_size, image.len() as u64, "{name}");
        }
    }
}
