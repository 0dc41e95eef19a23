//! Who owns a build's host directories: [`hand_over`] gives a tree to the build user before a
//! sandbox writes to it, and [`take_back`] gives outputs back to the caller without the
//! set-user-ID and set-group-ID bits the build may have left.
//!
//! When kiln runs as root the build user is [`HOST_BUILD_ID`](crate::HOST_BUILD_ID) on the
//! host (see [`build_owner`](crate::build_owner)), not root: the trees kiln made (the build
//! directory, a restored state, the outputs' staging directory) must become its own before the
//! build can write to them. Both walks change the entries themselves, never what a symlink
//! points to, and run while no process of the build is alive.

use std::fs::Permissions;
use std::io;
use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A tree whose ownership or mode could not be changed.
#[derive(Debug, thiserror::Error)]
#[error("cannot {what} `{}`", path.display())]
pub struct OwnerError {
    /// What kiln was doing.
    pub what: &'static str,
    /// The entry.
    pub path: PathBuf,
    /// The operating system's error.
    #[source]
    pub source: io::Error,
}

/// Set-user-ID and set-group-ID: never kept on what a build made (Nix refuses them too).
const SET_ID_BITS: u32 = 0o6000;

/// Makes `uid`:`gid` the owner of `root` and everything under it, symlinks included (the links
/// themselves). Entries that already have that owner are left alone, so a second call is cheap.
pub fn hand_over(root: &Path, uid: u32, gid: u32) -> Result<(), OwnerError> {
    walk(root, &mut |path, metadata| {
        if metadata.uid() != uid || metadata.gid() != gid {
            lchown(path, Some(uid), Some(gid)).map_err(|source| OwnerError {
                what: "hand to the build user",
                path: path.to_owned(),
                source,
            })?;
        }
        Ok(())
    })
}

/// Makes `uid`:`gid` the owner of `root` and everything under it, and clears the set-user-ID
/// and set-group-ID bits of every file and directory. Returns the entries whose bits it
/// cleared.
pub fn take_back(root: &Path, uid: u32, gid: u32) -> Result<Vec<PathBuf>, OwnerError> {
    let mut cleared = Vec::new();
    walk(root, &mut |path, metadata| {
        if metadata.uid() != uid || metadata.gid() != gid {
            lchown(path, Some(uid), Some(gid)).map_err(|source| OwnerError {
                what: "give back to the caller",
                path: path.to_owned(),
                source,
            })?;
        }
        let mode = metadata.mode();
        // chown(2) clears the bits of an executable for an unprivileged caller only; clear
        // them explicitly (a symlink has none, and chmod would follow it).
        if !metadata.file_type().is_symlink() && mode & SET_ID_BITS != 0 {
            std::fs::set_permissions(path, Permissions::from_mode(mode & 0o1777)).map_err(
                |source| OwnerError {
                    what: "clear the set-user-ID/set-group-ID bits of",
                    path: path.to_owned(),
                    source,
                },
            )?;
            cleared.push(path.to_owned());
        }
        Ok(())
    })?;
    Ok(cleared)
}

/// Calls `visit` on `root` and every entry under it, parents first, without following
/// symlinks. A missing `root` is an empty tree.
fn walk(
    root: &Path,
    visit: &mut dyn FnMut(&Path, &std::fs::Metadata) -> Result<(), OwnerError>,
) -> Result<(), OwnerError> {
    let read_error = |path: &Path| {
        let path = path.to_owned();
        move |source| OwnerError {
            what: "read",
            path,
            source,
        }
    };
    let mut pending = vec![root.to_owned()];
    while let Some(path) = pending.pop() {
        let metadata = match std::fs::symlink_metadata(&path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == io::ErrorKind::NotFound && path == root => return Ok(()),
            Err(error) => return Err(read_error(&path)(error)),
        };
        visit(&path, &metadata)?;
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(read_error(&path))? {
                pending.push(entry.map_err(read_error(&path))?.path());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn take_back_clears_set_id_bits_and_leaves_symlink_targets_alone() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("bin")).unwrap();
        let tool = tree.join("bin/tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, Permissions::from_mode(0o6755)).unwrap();
        std::fs::set_permissions(tree.join("bin"), Permissions::from_mode(0o2755)).unwrap();
        // A link out of the tree: its target keeps its bits.
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "x").unwrap();
        std::fs::set_permissions(&outside, Permissions::from_mode(0o4755)).unwrap();
        symlink(&outside, tree.join("bin/link")).unwrap();

        let (uid, gid) = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        let mut cleared = take_back(&tree, uid, gid).unwrap();
        cleared.sort();
        assert_eq!(cleared, [tree.join("bin"), tool.clone()]);
        assert_eq!(mode(&tool), 0o755);
        assert_eq!(mode(&tree.join("bin")), 0o755);
        assert_eq!(mode(&outside), 0o4755);
    }

    #[test]
    fn a_missing_tree_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let (uid, gid) = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        hand_over(&dir.path().join("nothing"), uid, gid).unwrap();
        assert!(take_back(&dir.path().join("nothing"), uid, gid)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn hand_over_changes_owners_when_root() {
        if !nix::unistd::geteuid().is_root() {
            // Only root may give files away; the integration tests cover the unprivileged
            // case, where the build user is the caller and nothing changes hands.
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("a/b")).unwrap();
        std::fs::write(tree.join("a/b/file"), "x").unwrap();
        symlink("/etc/passwd", tree.join("a/link")).unwrap();
        hand_over(&tree, 4242, 4343).unwrap();
        for path in ["", "a", "a/b", "a/b/file", "a/link"] {
            let metadata = std::fs::symlink_metadata(tree.join(path)).unwrap();
            assert_eq!((metadata.uid(), metadata.gid()), (4242, 4343), "{path}");
        }
        assert_eq!(std::fs::metadata("/etc/passwd").unwrap().uid(), 0);
    }
}
