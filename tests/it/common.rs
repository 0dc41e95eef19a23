//! Shared harness: run the real `kiln` binary in a scratch directory and capture what it did.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// What local builds lend to kiln's sandbox: the host's toolchain.
pub const TOOLCHAIN: &str = "/bin:/usr:/lib:/lib64:/etc/alternatives";

/// The `kiln` binary cargo built for these tests.
pub fn kiln_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kiln"))
}

/// A scratch directory with helpers to write plans and run kiln in it.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `content` to `name` inside the scratch directory and returns its path.
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, content).unwrap();
        path
    }

    /// A `kiln` command whose working directory is the scratch directory, with a minimal
    /// environment (so tests do not depend on the caller's).
    pub fn kiln(&self) -> Command {
        let mut command = Command::new(kiln_bin());
        command
            .current_dir(self.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("TMPDIR", self.path())
            .env("NO_COLOR", "1")
            // Local builds run in kiln's sandbox; it borrows the host's toolchain (IMPURE, as
            // `extra-sandbox-paths` does for the Nix tests).
            .env("KILN_LEND", TOOLCHAIN);
        command
    }
}

/// Output as text, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
