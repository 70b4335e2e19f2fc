//! Scratch JSON reports for the CLI tests: where a run writes one, and the report read back.

use std::path::{Path, PathBuf};

/// A scratch path for the JSON report of the `command` test `name`, unique to this process.
pub fn scratch(command: &str, name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "erlboot-{command}-{name}-{}.json",
        std::process::id()
    ))
}

/// The report at `path`, which is removed: it must have been written, and be JSON.
pub fn read(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("the JSON file was written");
    std::fs::remove_file(path).unwrap();
    serde_json::from_str(&text).expect("valid JSON")
}
