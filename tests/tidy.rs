//! Repository hygiene: every Rust source file opens with a `//!` comment that says why it
//! exists, and every .proto file with a `//` comment.

use std::path::{Path, PathBuf};

fn files_with_extension(dir: &Path, extension: &str, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_with_extension(&path, extension, found);
        } else if path.extension().is_some_and(|ext| ext == extension) {
            found.push(path);
        }
    }
}

#[test]
fn every_source_file_says_why_it_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut missing = Vec::new();
    for (dir, extension, opening) in [
        ("src", "rs", "//!"),
        ("tests", "rs", "//!"),
        ("benches", "rs", "//!"),
        ("proto", "proto", "//"),
    ] {
        let mut files = Vec::new();
        files_with_extension(&root.join(dir), extension, &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            if !text.trim_start().starts_with(opening) {
                missing.push(file.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "files without an opening comment: {missing:?}"
    );
}
