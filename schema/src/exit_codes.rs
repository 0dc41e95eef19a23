//! The exit codes of the `kiln` binary, documented in `kiln --help`.

/// The build (or command) succeeded.
pub const SUCCESS: i32 = 0;
/// A phase failed: a step exited non-zero, was killed by a signal, or timed out.
pub const BUILD_FAILED: i32 = 1;
/// The plan or the command line is invalid. Nothing was run and no output was created. A plan
/// file (or `.attrs.json`) that is not UTF-8 is an invalid plan, not an unreadable one.
pub const INVALID_INPUT: i32 = 2;
/// kiln could not set the build up: `.attrs.json` or the plan file cannot be read (it does not
/// exist, a permission, an I/O error), an output that cannot be created, a build directory that
/// exists already.
pub const SETUP_FAILED: i32 = 3;
/// kiln itself was stopped by signal `n` (SIGINT, SIGTERM, SIGHUP): it exits with `128 + n`
/// after killing the running step's process group.
pub const SIGNAL_BASE: i32 = 128;

/// The exit code for a stop by signal `signal`: `128 + signal`, as shells report it.
pub fn for_signal(signal: i32) -> i32 {
    SIGNAL_BASE + signal
}
