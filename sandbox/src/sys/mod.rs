//! The operating-system calls the sandbox makes, behind the [`Sys`] trait, so that what gets
//! mounted where, in what order and with which flags is testable without root (youki's
//! `libcontainer` syscall trait). [`LinuxSys`] makes the real calls; tests inject a fake that
//! records typed calls.

mod calls;
mod linux;
mod netlink;

#[cfg(test)]
pub(crate) mod fake;

pub use calls::{FileKind, Sys};
pub(crate) use linux::CreatingAs;
pub use linux::LinuxSys;
