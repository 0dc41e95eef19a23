//! Why namespaces are unavailable, said plainly: [`Hint`], chosen by [`diagnose`] from the
//! failed step, its errno and a few facts about the host ([`HostFacts`]).
//!
//! The usual causes, in the order they are checked:
//! - `user.max_user_namespaces` is 0: user namespaces are disabled for everyone
//!   ([namespaces(7)](https://man7.org/linux/man-pages/man7/namespaces.7.html), `/proc/sys/user`);
//! - Debian's and older Ubuntu's `kernel.unprivileged_userns_clone` is 0, or Ubuntu 23.10+'s
//!   `kernel.apparmor_restrict_unprivileged_userns` is 1: only root may create them;
//! - inside a container, the default seccomp profile blocks `unshare(2)` and `mount(2)`, and a
//!   fresh `/proc` is refused while the container masks parts of its own `/proc` (the kernel
//!   mounts a new proc only where an existing one is fully visible: `mnt_too_revealing`).

use std::fmt;
use std::path::Path;

use nix::errno::Errno;

/// What the user can do so that the sandbox works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hint {
    /// `user.max_user_namespaces` is 0.
    UserNamespacesDisabled,
    /// The per-user limit of user namespaces is reached.
    NamespaceLimit,
    /// `kernel.unprivileged_userns_clone` is 0 and kiln is not root.
    UnprivilegedUsernsDisabled,
    /// AppArmor restricts unprivileged user namespaces and kiln is not root.
    AppArmorRestricted,
    /// Running in a container whose seccomp profile blocks namespaces and mounts.
    Container,
    /// The host's `/proc` is partly masked, so a fresh one may not be mounted.
    ProcMasked,
    /// The init was called in a process that already runs threads.
    MultiThreaded,
    /// None of the known causes applies.
    Generic,
}

impl Hint {
    /// A stable name for the wire between [`probe`](crate::probe) and its helper.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Hint::UserNamespacesDisabled => "user-namespaces-disabled",
            Hint::NamespaceLimit => "namespace-limit",
            Hint::UnprivilegedUsernsDisabled => "unprivileged-userns-disabled",
            Hint::AppArmorRestricted => "apparmor-restricted",
            Hint::Container => "container",
            Hint::ProcMasked => "proc-masked",
            Hint::MultiThreaded => "multi-threaded",
            Hint::Generic => "generic",
        }
    }

    /// The inverse of [`Hint::key`].
    pub(crate) fn from_key(key: &str) -> Option<Hint> {
        [
            Hint::UserNamespacesDisabled,
            Hint::NamespaceLimit,
            Hint::UnprivilegedUsernsDisabled,
            Hint::AppArmorRestricted,
            Hint::Container,
            Hint::ProcMasked,
            Hint::MultiThreaded,
            Hint::Generic,
        ]
        .into_iter()
        .find(|hint| hint.key() == key)
    }
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Hint::UserNamespacesDisabled => {
                "user namespaces are disabled on this host (`user.max_user_namespaces` is 0); \
                 enable them as root with `sysctl -w user.max_user_namespaces=15000`, or build \
                 under Nix instead"
            }
            Hint::NamespaceLimit => {
                "the limit of user namespaces is reached (`user.max_user_namespaces`); raise it \
                 as root with `sysctl -w user.max_user_namespaces=15000`"
            }
            Hint::UnprivilegedUsernsDisabled => {
                "this host lets only root create user namespaces \
                 (`kernel.unprivileged_userns_clone` is 0); allow them as root with \
                 `sysctl -w kernel.unprivileged_userns_clone=1`, or run kiln as root"
            }
            Hint::AppArmorRestricted => {
                "AppArmor restricts unprivileged user namespaces on this host \
                 (`kernel.apparmor_restrict_unprivileged_userns` is 1); allow them as root with \
                 `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`, add an AppArmor \
                 profile that grants `userns` to kiln, or run kiln as root"
            }
            Hint::Container => {
                "kiln seems to run in a container whose seccomp profile or missing \
                 CAP_SYS_ADMIN forbids namespaces and mounts; run the container with \
                 `--privileged` (or `--security-opt seccomp=unconfined --security-opt \
                 apparmor=unconfined`), or build under Nix instead"
            }
            Hint::ProcMasked => {
                "the kernel mounts a fresh /proc only where the existing one is fully visible, \
                 and this host's /proc has parts masked (as in a Docker container); run the \
                 container with `--security-opt systempaths=unconfined` or `--privileged`"
            }
            Hint::MultiThreaded => {
                "the sandbox init must run before the process starts any thread: call \
                 `kiln_sandbox::init_main` first thing in `main`"
            }
            Hint::Generic => {
                "kiln's sandbox needs user, mount and pid namespaces (see \
                 https://man7.org/linux/man-pages/man7/user_namespaces.7.html); check that \
                 this kernel and its security modules allow them, or build under Nix instead"
            }
        })
    }
}

/// The step that failed, as far as [`diagnose`] cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// `unshare(2)` of the namespaces.
    Unshare,
    /// Writing `uid_map`, `gid_map` or `setgroups`.
    IdMap,
    /// Mounting a fresh `/proc`.
    MountProc,
    /// Any other mount step.
    Mount,
}

/// The facts about this host that decide the hint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HostFacts {
    /// The effective uid of the process that tried.
    pub euid: u32,
    /// `/proc/sys/user/max_user_namespaces`, when readable.
    pub max_user_namespaces: Option<u64>,
    /// `/proc/sys/kernel/unprivileged_userns_clone` (Debian, older Ubuntu), when present.
    pub unprivileged_userns_clone: Option<u64>,
    /// `/proc/sys/kernel/apparmor_restrict_unprivileged_userns` (Ubuntu 23.10+), when present.
    pub apparmor_restrict: Option<u64>,
    /// Whether a container runtime left its marker file (`/.dockerenv`, `/run/.containerenv`).
    pub in_container: bool,
}

impl HostFacts {
    /// Reads the facts from this host.
    pub fn detect() -> HostFacts {
        fn number(path: &str) -> Option<u64> {
            std::fs::read_to_string(path).ok()?.trim().parse().ok()
        }
        HostFacts {
            euid: nix::unistd::geteuid().as_raw(),
            max_user_namespaces: number("/proc/sys/user/max_user_namespaces"),
            unprivileged_userns_clone: number("/proc/sys/kernel/unprivileged_userns_clone"),
            apparmor_restrict: number("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
            in_container: Path::new("/.dockerenv").exists()
                || Path::new("/run/.containerenv").exists(),
        }
    }
}

/// The most likely reason `failure` failed with `errno` on a host with `facts`.
pub(crate) fn diagnose(failure: Failure, errno: Option<Errno>, facts: &HostFacts) -> Hint {
    let unprivileged = facts.euid != 0;
    if failure == Failure::Unshare {
        if errno == Some(Errno::EINVAL) {
            // unshare(2): CLONE_NEWUSER fails with EINVAL in a multithreaded process.
            return Hint::MultiThreaded;
        }
        if facts.max_user_namespaces == Some(0) {
            return Hint::UserNamespacesDisabled;
        }
        if errno == Some(Errno::ENOSPC) || errno == Some(Errno::EUSERS) {
            return Hint::NamespaceLimit;
        }
        if unprivileged && facts.unprivileged_userns_clone == Some(0) {
            return Hint::UnprivilegedUsernsDisabled;
        }
        if unprivileged && facts.apparmor_restrict == Some(1) {
            return Hint::AppArmorRestricted;
        }
    }
    if failure == Failure::MountProc && errno == Some(Errno::EPERM) {
        return Hint::ProcMasked;
    }
    if facts.in_container && matches!(errno, Some(Errno::EPERM) | Some(Errno::EACCES)) {
        return Hint::Container;
    }
    if unprivileged && facts.apparmor_restrict == Some(1) {
        // The AppArmor restriction lets unshare succeed and then denies the capabilities the
        // mounts and id maps need.
        return Hint::AppArmorRestricted;
    }
    Hint::Generic
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> HostFacts {
        HostFacts {
            euid: 0,
            max_user_namespaces: Some(15000),
            ..HostFacts::default()
        }
    }

    fn user() -> HostFacts {
        HostFacts {
            euid: 1000,
            ..root()
        }
    }

    #[test]
    fn disabled_user_namespaces_win() {
        let facts = HostFacts {
            max_user_namespaces: Some(0),
            unprivileged_userns_clone: Some(0),
            ..user()
        };
        let hint = diagnose(Failure::Unshare, Some(Errno::ENOSPC), &facts);
        assert_eq!(hint, Hint::UserNamespacesDisabled);
        assert!(hint.to_string().contains("user.max_user_namespaces"));
    }

    #[test]
    fn debian_sysctl_applies_only_to_unprivileged_users() {
        let facts = HostFacts {
            unprivileged_userns_clone: Some(0),
            ..user()
        };
        let hint = diagnose(Failure::Unshare, Some(Errno::EPERM), &facts);
        assert_eq!(hint, Hint::UnprivilegedUsernsDisabled);
        assert!(hint
            .to_string()
            .contains("kernel.unprivileged_userns_clone=1"));

        let as_root = HostFacts {
            unprivileged_userns_clone: Some(0),
            ..root()
        };
        assert_eq!(
            diagnose(Failure::Unshare, Some(Errno::EPERM), &as_root),
            Hint::Generic
        );
    }

    #[test]
    fn apparmor_restriction() {
        let facts = HostFacts {
            apparmor_restrict: Some(1),
            ..user()
        };
        assert_eq!(
            diagnose(Failure::Unshare, Some(Errno::EPERM), &facts),
            Hint::AppArmorRestricted
        );
        assert_eq!(
            diagnose(Failure::IdMap, Some(Errno::EPERM), &facts),
            Hint::AppArmorRestricted
        );
    }

    #[test]
    fn containers_and_masked_proc() {
        let facts = HostFacts {
            in_container: true,
            ..root()
        };
        let hint = diagnose(Failure::Unshare, Some(Errno::EPERM), &facts);
        assert_eq!(hint, Hint::Container);
        assert!(hint.to_string().contains("--privileged"));
        assert_eq!(
            diagnose(Failure::MountProc, Some(Errno::EPERM), &facts),
            Hint::ProcMasked
        );
        assert_eq!(
            diagnose(Failure::Mount, Some(Errno::EPERM), &facts),
            Hint::Container
        );
    }

    #[test]
    fn limits_and_threads() {
        assert_eq!(
            diagnose(Failure::Unshare, Some(Errno::ENOSPC), &user()),
            Hint::NamespaceLimit
        );
        assert_eq!(
            diagnose(Failure::Unshare, Some(Errno::EINVAL), &root()),
            Hint::MultiThreaded
        );
        assert_eq!(diagnose(Failure::Mount, None, &root()), Hint::Generic);
    }

    #[test]
    fn keys_round_trip() {
        for hint in [
            Hint::UserNamespacesDisabled,
            Hint::NamespaceLimit,
            Hint::UnprivilegedUsernsDisabled,
            Hint::AppArmorRestricted,
            Hint::Container,
            Hint::ProcMasked,
            Hint::MultiThreaded,
            Hint::Generic,
        ] {
            assert_eq!(Hint::from_key(hint.key()), Some(hint));
        }
        assert_eq!(Hint::from_key("nonsense"), None);
    }
}
