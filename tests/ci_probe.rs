//! Issue 15, defect 9: CI's libclang probe (`.ci/has-libclang`, called by `.ci/run` before it
//! decides whether to install libclang for the HiGHS build) must find what bindgen loads and
//! nothing else. The old probe globbed `libclang*.so*`, which `libclang-cpp.so.14` (present on
//! the bare image, useless to bindgen) matched, so the install was skipped and the build failed.

use std::path::Path;
use std::process::Command;

/// True when the probe finds a libclang in `dirs`.
fn probe(dirs: &[&Path]) -> bool {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/has-libclang");
    let status = Command::new("bash")
        .arg(script)
        .args(dirs)
        .status()
        .expect("bash runs");
    assert!(status.code().is_some(), "the probe was killed: {status}");
    status.success()
}

/// A temporary directory holding empty files named `files`.
fn dir_with(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in files {
        std::fs::write(dir.path().join(f), b"").unwrap();
    }
    dir
}

#[test]
fn the_cpp_library_alone_is_not_libclang() {
    let dir = dir_with(&["libclang-cpp.so.14", "libclang-cpp.so"]);
    assert!(!probe(&[dir.path()]));
}

#[test]
fn the_libraries_bindgen_loads_are_found() {
    for name in [
        "libclang.so.1",
        "libclang-14.so.1",
        "libclang.so",
        "libclang-14.so",
    ] {
        let dir = dir_with(&["libclang-cpp.so.14", name]);
        assert!(probe(&[dir.path()]), "{name}");
    }
}

#[test]
fn every_directory_is_searched_and_missing_ones_are_skipped() {
    let empty = dir_with(&[]);
    let cpp = dir_with(&["libclang-cpp.so.14"]);
    let found = dir_with(&["libclang.so.1"]);
    let missing = empty.path().join("no-such-dir");
    assert!(!probe(&[]));
    assert!(!probe(&[empty.path(), cpp.path(), &missing]));
    assert!(probe(&[&missing, cpp.path(), found.path()]));
}
