//! Directories: [`read_dir_sorted`] lists a directory in bytewise order of names, so that every
//! walk visits entries in the same order whatever the file system returns, and
//! [`parent_or_dot`] names the directory a path is in.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::Path;

/// The names in `dir`, sorted bytewise (`OsString` orders by bytes on Unix).
pub fn read_dir_sorted(dir: &Path) -> io::Result<Vec<OsString>> {
    let mut names = fs::read_dir(dir)?
        .map(|entry| entry.map(|entry| entry.file_name()))
        .collect::<io::Result<Vec<_>>>()?;
    names.sort();
    Ok(names)
}

/// The directory `path` is in: its parent, or `.` for a bare name (whose parent is empty).
pub fn parent_or_dot(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_dir_sorted_orders_bytewise() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b", "a", "C", "a0"] {
            fs::write(dir.path().join(name), "").unwrap();
        }
        assert_eq!(read_dir_sorted(dir.path()).unwrap(), ["C", "a", "a0", "b"]);
    }

    #[test]
    fn parents() {
        assert_eq!(parent_or_dot(Path::new("a/b")), Path::new("a"));
        assert_eq!(parent_or_dot(Path::new("b")), Path::new("."));
        assert_eq!(parent_or_dot(Path::new("/")), Path::new("."));
    }
}
