//! The host directories of a local build: creating nothing until asked, removing partial
//! outputs and temporary build directories, and installing finished outputs without replacing
//! anything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln_schema::events::{Level, LogEvent};

use super::{HostDirs, LocalReporter, SessionError};

/// Directories a local build created.
pub struct CreatedDirs {
    /// The host side of the build.
    pub host: HostDirs,
    /// Whether the build directory is a fresh temporary one.
    pub temporary: bool,
}

impl CreatedDirs {
    /// No directories: for looking at the plan and the cache only.
    pub fn none() -> CreatedDirs {
        CreatedDirs {
            host: HostDirs {
                build_top: PathBuf::new(),
                outputs: BTreeMap::new(),
                staging: None,
            },
            temporary: false,
        }
    }

    /// Removes partial outputs: the staging directory (with its mount points), or without the
    /// sandbox the outputs themselves.
    pub fn remove_staging(&self) {
        match &self.host.staging {
            Some((staging, _)) => remove_tree(staging),
            None => {
                for path in self.host.outputs.values() {
                    match std::fs::symlink_metadata(path) {
                        Ok(meta) if meta.is_dir() => remove_tree(path),
                        Ok(_) => {
                            let _ = std::fs::remove_file(path);
                        }
                        Err(_) => {}
                    }
                }
            }
        }
    }

    /// Removes the build directory.
    pub fn remove_build_dir(&self) {
        remove_tree(&self.host.build_top);
    }

    /// Moves each finished output from the staging directory to `OUT_DIR/NAME`, never replacing
    /// what may have appeared there meanwhile; on a failure, the outputs moved so far go back.
    ///
    /// First each output becomes the caller's (in the sandbox, when kiln runs as root, the build
    /// user is another host id) and loses any set-user-ID or set-group-ID bit: a build's result
    /// never carries them, as in Nix, whoever runs kiln. Each cleared bit is reported.
    pub fn install_outputs(
        &self,
        final_outputs: &BTreeMap<String, PathBuf>,
        reporter: &mut dyn LocalReporter,
    ) -> Result<(), SessionError> {
        let dirs = self;
        let (uid, gid) = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        for (output, host) in &dirs.host.outputs {
            let cleared =
                kiln_sandbox::take_back(host, uid, gid).map_err(|error| SessionError::Io {
                    what: error.what,
                    path: error.path,
                    source: error.source,
                })?;
            for path in cleared {
                // Named where the output is installed, not in the staging directory.
                let path = match path.strip_prefix(host) {
                    Ok(rest) => final_outputs[output].join(rest),
                    Err(_) => path,
                };
                reporter.report(&LogEvent::Message {
                    level: Level::Warn,
                    text: &format!(
                        "cleared the set-user-ID/set-group-ID bits of `{}`: a build's \
                         outputs never keep them",
                        path.display()
                    ),
                });
            }
        }
        if dirs.host.staging.is_none() {
            return Ok(());
        }
        let mut moved: Vec<(&PathBuf, &PathBuf)> = Vec::new();
        for (output, host) in &dirs.host.outputs {
            let target = &final_outputs[output];
            let renamed = nix::fcntl::renameat2(
                nix::fcntl::AT_FDCWD,
                host.as_path(),
                nix::fcntl::AT_FDCWD,
                target.as_path(),
                nix::fcntl::RenameFlags::RENAME_NOREPLACE,
            );
            if let Err(errno) = renamed {
                for (back_host, back_target) in moved.into_iter().rev() {
                    let _ = std::fs::rename(back_target, back_host);
                }
                return Err(SessionError::Io {
                    what: "move the finished output to",
                    path: target.clone(),
                    source: std::io::Error::from(errno),
                });
            }
            moved.push((host, target));
        }
        Ok(())
    }
}

/// Removes a tree, making read-only directories writable first (fixup leaves some).
fn remove_tree(path: &Path) {
    if std::fs::remove_dir_all(path).is_ok() {
        return;
    }
    let _ = std::process::Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(path)
        .status();
    let _ = std::fs::remove_dir_all(path);
}

/// The one parent directory of every output path.
pub(super) fn common_parent(outputs: &BTreeMap<String, PathBuf>) -> Option<PathBuf> {
    let mut parents = outputs.values().filter_map(|path| path.parent());
    let first = parents.next()?.to_owned();
    parents.all(|p| p == first).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_share_one_parent() {
        let outputs = BTreeMap::from([
            ("out".to_owned(), PathBuf::from("/o/out")),
            ("dev".to_owned(), PathBuf::from("/o/dev")),
        ]);
        assert_eq!(common_parent(&outputs), Some(PathBuf::from("/o")));
        let split = BTreeMap::from([
            ("out".to_owned(), PathBuf::from("/o/out")),
            ("dev".to_owned(), PathBuf::from("/p/dev")),
        ]);
        assert_eq!(common_parent(&split), None);
    }
}
