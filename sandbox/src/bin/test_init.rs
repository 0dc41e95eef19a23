//! A stand-in for `kiln` in the sandbox's tests: the binary that `sandboxed_command`
//! re-executes, whose `main` hands `__sandbox-init` to `kiln_sandbox::init_main` as kiln's does.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|arg| arg == kiln_sandbox::INIT_SUBCOMMAND)
    {
        kiln_sandbox::init_main(&args[2..]);
    }
    eprintln!(
        "usage: kiln-sandbox-test-init {} ARGS...",
        kiln_sandbox::INIT_SUBCOMMAND
    );
    ExitCode::from(2)
}
