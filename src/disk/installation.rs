//! What an Erlang/OTP installation under a served root is: its ERTS versions, which discovery
//! answers, and the term encoding its release writes.

use std::path::Path;

use crate::etf::Profile;

/// The ERTS versions installed directly under `root` (`erts-13.1.5/` gives `13.1.5`), sorted.
/// A root that cannot be read has none.
pub fn erts_versions(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut versions: Vec<String> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name().into_string().ok()?;
            let version = name.strip_prefix("erts-")?;
            let numeric = !version.is_empty()
                && version
                    .split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            (numeric && entry.file_type().ok()?.is_dir()).then(|| version.to_owned())
        })
        .collect();
    versions.sort_by_key(|v| version_key(v));
    versions
}

fn version_key(version: &str) -> Vec<u64> {
    version.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// The encoding `term_to_binary/1` of the release shipping ERTS `version` uses: ERTS 14 is
/// OTP 26, the first to write UTF-8 atoms by default.
pub fn profile_of(version: &str) -> Profile {
    match version_key(version).first() {
        Some(&major) if major >= 14 => Profile::Otp26,
        _ => Profile::Otp25,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_from_erts_directories() {
        let root =
            std::env::temp_dir().join(format!("erlboot-installation-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for dir in [
            "erts-13.1.5",
            "erts-9.3",
            "erts-15.2.7",
            "erts-x",
            "lib",
            "erts-",
        ] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        std::fs::write(root.join("erts-16.0"), b"a file").unwrap();
        assert_eq!(erts_versions(&root), ["9.3", "13.1.5", "15.2.7"]);
        assert!(erts_versions(&root.join("missing")).is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn releases_from_erts_14_write_utf8_atoms() {
        assert_eq!(profile_of("13.1.5"), Profile::Otp25);
        assert_eq!(profile_of("14.0"), Profile::Otp26);
        assert_eq!(profile_of("17.1.1"), Profile::Otp26);
    }
}
