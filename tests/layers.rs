//! The layer order of `src/`: `src/lib.rs` declares the top-level modules from the top
//! layer down, one layer per paragraph (the last holds the shared leaves), and no module
//! may use a module of a layer above its own. This test reads every `crate::` path in the
//! code under `src/` and fails on one that points up.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

/// The layer of each top-level module, 0 for the top, as `src/lib.rs` lists them.
fn layers(lib: &str) -> HashMap<String, usize> {
    let mut layers = HashMap::new();
    let mut layer = 0;
    let mut in_layer = false;
    for line in lib.lines() {
        if let Some(name) = line
            .strip_prefix("pub mod ")
            .and_then(|rest| rest.strip_suffix(';'))
        {
            layers.insert(name.to_string(), layer);
            in_layer = true;
        } else if line.trim().is_empty() && in_layer {
            layer += 1;
            in_layer = false;
        }
    }
    layers
}

/// The top-level modules a line of code names as `crate::NAME` (comments skipped).
fn named_modules(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or_default();
    code.match_indices("crate::")
        .filter(|(at, _)| !code[..*at].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
        .map(|(at, _)| {
            code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

#[test]
fn no_module_uses_a_layer_above_its_own() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layers = layers(&std::fs::read_to_string(root.join("lib.rs")).unwrap());
    assert!(
        layers.len() > 5 && layers.values().max() > Some(&5),
        "src/lib.rs should list the modules in layers: {layers:?}"
    );
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut upward = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&root).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        // The binary and the crate root stand above every layer.
        if top == "main" || top == "lib" {
            continue;
        }
        let own = *layers
            .get(&top)
            .unwrap_or_else(|| panic!("src/lib.rs does not declare {top}"));
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            for used in named_modules(line) {
                let Some(&theirs) = layers.get(&used) else {
                    continue;
                };
                if theirs < own {
                    upward.push(format!(
                        "src/{}:{}: {top} uses {used}, a layer above it",
                        relative.display(),
                        number + 1
                    ));
                }
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that point up:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_reader_finds_the_modules_a_line_names() {
    assert_eq!(
        named_modules("use crate::store::{Store, StoreError}; // crate::server"),
        ["store"]
    );
    assert_eq!(
        named_modules("let x = crate::domain::MAX + crate::ids::new_id(\"a\");"),
        ["domain", "ids"]
    );
    assert!(named_modules("use mycrate::server;").is_empty());
}
