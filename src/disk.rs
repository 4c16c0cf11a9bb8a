//! Free space on the file system holding a path: for the preflight's backup check, and so
//! that a write refused for want of space says so (SQLite often reports a full disk only
//! as a "disk I/O error").

use std::path::Path;

/// Below this many free bytes a refused write is explained as a full file system.
const NEARLY_FULL: u64 = 256 * 1024;

/// Bytes an unprivileged writer may still use on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    fs4::available_space(dir)
}

/// `"the file system holding PATH is full (12 KiB free)"` when it nearly is, else `None`.
/// `path` may be a file that does not exist yet: its nearest existing folder is asked.
pub fn full_hint(path: &Path) -> Option<String> {
    let mut dir = path;
    while !dir.is_dir() {
        dir = dir.parent()?;
    }
    let free = free_bytes(dir).ok()?;
    (free < NEARLY_FULL).then(|| {
        format!(
            "the file system holding {} is full ({} free)",
            path.display(),
            human(free)
        )
    })
}

pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(12 * 1024), "12.0 KiB");
        assert_eq!(human(3 * 1024 * 1024 + 512 * 1024), "3.5 MiB");
    }

    #[test]
    fn a_roomy_file_system_gives_no_hint() {
        let d = tempfile::tempdir().unwrap();
        assert!(free_bytes(d.path()).unwrap() > NEARLY_FULL);
        assert_eq!(full_hint(&d.path().join("not/yet/journal.db")), None);
    }
}
