//! Embeds every file of `sdk/template/` into the binary, so that
//! `umbra policy new` works from any directory: `*.tmpl` files are rendered
//! and lose the suffix, others are copied as they are.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/template");
    let root = root.canonicalize().expect("sdk/template exists");
    println!("cargo::rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    walk(&root, &mut files);
    let mut code = String::from(
        "/// The SDK template's files: path in the new crate, text, whether to render it.\n",
    );
    code.push_str("pub(crate) const TEMPLATE: &[(&str, &str, bool)] = &[\n");
    for file in &files {
        println!("cargo::rerun-if-changed={}", file.display());
        let relative = file
            .strip_prefix(&root)
            .expect("under the template")
            .to_string_lossy()
            .into_owned();
        let (path, render) = match relative.strip_suffix(".tmpl") {
            Some(path) => (path.to_owned(), true),
            None => (relative.clone(), false),
        };
        writeln!(
            code,
            "    ({path:?}, include_str!({:?}), {render}),",
            file.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("template.rs");
    std::fs::write(out, code).expect("write template.rs");
}
