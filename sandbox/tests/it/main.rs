//! Integration tests of kiln's sandbox: each runs `kiln-sandbox-probe` inside a real sandbox,
//! through `kiln-sandbox-test-init` as the re-executed binary, and checks what it saw.
//!
//! They need user namespaces and fail, not skip, where there are none: the sandbox is what
//! they test. `escapes` tries to get out; `inside` checks what a build sees; `lifecycle`
//! checks exit statuses, signals and teardown;
//! `unprivileged` repeats the essentials for a caller without privileges.

mod escapes;
mod inside;
mod lifecycle;
mod unprivileged;
mod util;
