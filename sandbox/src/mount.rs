//! Assembling the sandbox's root from a [`Layout`] and switching into it: [`enter_root`], run
//! by the sandbox's PID 1 inside the new user, mount and pid namespaces.
//!
//! The sequence (bubblewrap's, with one `pivot_root(2)`):
//!
//! 1. make every mount private (`MS_REC | MS_PRIVATE`);
//! 2. mount a tmpfs, the future root, over the build directory (it is known to exist, and the
//!    mount is visible only in this mount namespace);
//! 3. `pivot_root` into it, keeping the host's root at [`HOST_ROOT`];
//! 4. mount every entry, naming host paths under [`HOST_ROOT`];
//! 5. detach the host's root and remove its mount point;
//! 6. make the new root read-only.
//!
//! Man pages: [mount_namespaces(7)](https://man7.org/linux/man-pages/man7/mount_namespaces.7.html),
//! [pivot_root(2)](https://man7.org/linux/man-pages/man2/pivot_root.2.html),
//! [mount(2)](https://man7.org/linux/man-pages/man2/mount.2.html).

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use crate::error::{SetupError, SetupStep};
use crate::layout::{BindMode, Entry, Layout};
use crate::sys::Sys;

/// Where the host's root stays while the sandbox's root is assembled.
pub(crate) const HOST_ROOT: &str = "/.kiln-host";

/// The flags a read-only remount keeps from the mount it changes.
const KEPT_FLAGS: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC)
    .union(MsFlags::MS_NOATIME)
    .union(MsFlags::MS_NODIRATIME)
    .union(MsFlags::MS_RELATIME);

/// Builds the sandbox's root from `layout` and makes it the process's root; the working
/// directory is `/` afterwards.
pub(crate) fn enter_root(sys: &dyn Sys, layout: &Layout) -> Result<(), SetupError> {
    let at = |step: SetupStep, path: &Path| {
        let path = path.to_owned();
        move |source: io::Error| SetupError {
            step,
            path,
            source,
            hint: None,
        }
    };
    let root = Path::new("/");
    let host_root = Path::new(HOST_ROOT);

    // The new mount namespace starts with copies of the host's mounts and their propagation:
    // a shared mount would send our mounts back to the host (in a namespace owned by a less
    // privileged user namespace they are downgraded to slaves, which still receive the
    // host's), and pivot_root(2) refuses a shared parent. mount_namespaces(7), "MS_PRIVATE".
    sys.mount(
        None,
        root,
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )
    .map_err(at(SetupStep::MakePrivate, root))?;

    let scratch = &layout.scratch;
    let (uid, gid) = layout.owner;
    sys.mount(
        Some(Path::new("tmpfs")),
        scratch,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(&format!("mode=0755,uid={uid},gid={gid}")),
    )
    .map_err(at(SetupStep::MountTmpfs, scratch))?;
    let put_old = scratch.join(host_root.strip_prefix("/").unwrap_or(host_root));
    sys.create_dir_all(&put_old)
        .map_err(at(SetupStep::CreateMountPoint, &put_old))?;
    // pivot_root(2): new_root must be a mount point (the tmpfs) and put_old must be under it.
    // The host's root moves to put_old, from where step 4 binds host paths.
    sys.pivot_root(scratch, &put_old)
        .map_err(at(SetupStep::PivotRoot, scratch))?;
    sys.chdir(root).map_err(at(SetupStep::Chdir, root))?;

    for entry in &layout.entries {
        mount_entry(sys, entry, layout.owner)?;
    }

    // pivot_root(2) moved the host root's lock (MNT_LOCKED, set on every mount copied into a
    // namespace owned by a less privileged user namespace) to our root, so the old root can
    // now be detached, with everything under it.
    sys.umount(host_root, MntFlags::MNT_DETACH)
        .map_err(at(SetupStep::DetachHost, host_root))?;
    sys.remove_dir(host_root)
        .map_err(at(SetupStep::DetachHost, host_root))?;

    // The root's directories belong to the build user (the tmpfs was mounted with its ids, and
    // PID 1 creates entries as it: `Sys::create_*`); a read-only root keeps the command from adding to it, as Nix's
    // root-owned chroot does.
    sys.mount(
        None,
        root,
        None,
        MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV,
        None,
    )
    .map_err(at(SetupStep::RemountReadOnly, root))?;
    Ok(())
}

fn mount_entry(sys: &dyn Sys, entry: &Entry, owner: (u32, u32)) -> Result<(), SetupError> {
    let fail = |step: SetupStep, path: &Path| {
        let path = path.to_owned();
        move |source: io::Error| SetupError {
            step,
            path,
            source,
            hint: None,
        }
    };
    let target = entry.target();
    let parent = target.parent().unwrap_or(Path::new("/"));
    match entry {
        Entry::Proc { target } => {
            sys.create_dir_all(target)
                .map_err(fail(SetupStep::CreateMountPoint, target))?;
            // A proc mount shows the pid namespace of the process that mounts it: PID 1 of
            // the sandbox mounts it. proc(5); the kernel also requires a fully visible proc
            // in this mount namespace, which the host's under HOST_ROOT still is.
            sys.mount(
                Some(Path::new("proc")),
                target,
                Some("proc"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                None,
            )
            .map_err(fail(SetupStep::MountProc, target))?;
        }
        Entry::ReadOnly { target } => {
            if sys.kind(target).is_err() {
                // Not every kernel has every part of /proc.
                return Ok(());
            }
            sys.mount(
                Some(target),
                target,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .map_err(fail(
                SetupStep::Bind {
                    source: target.clone(),
                },
                target,
            ))?;
            remount_read_only(sys, target, MsFlags::empty())?;
        }
        Entry::Tmpfs {
            target,
            mode,
            flags,
        } => {
            sys.create_dir_all(target)
                .map_err(fail(SetupStep::CreateMountPoint, target))?;
            let data = format!("mode={mode:04o},uid={},gid={}", owner.0, owner.1);
            sys.mount(
                Some(Path::new("tmpfs")),
                target,
                Some("tmpfs"),
                *flags,
                Some(&data),
            )
            .map_err(fail(SetupStep::MountTmpfs, target))?;
        }
        Entry::Devpts { target } => {
            sys.create_dir_all(target)
                .map_err(fail(SetupStep::CreateMountPoint, target))?;
            // A new instance, not the host's ptys (devpts in the kernel docs, "newinstance";
            // Nix mounts it the same way). Without gid=5, ptys get the opener's gid, which is
            // all a user namespace with one mapped gid can give.
            sys.mount(
                Some(Path::new("devpts")),
                target,
                Some("devpts"),
                MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
                Some("newinstance,ptmxmode=0666,mode=0620"),
            )
            .map_err(fail(SetupStep::MountDevpts, target))?;
        }
        Entry::Bind {
            source,
            target,
            dir,
            mode,
        } => {
            sys.create_dir_all(parent)
                .map_err(fail(SetupStep::CreateMountPoint, parent))?;
            if *dir {
                sys.create_dir_all(target)
            } else {
                sys.create_file(target)
            }
            .map_err(fail(SetupStep::CreateMountPoint, target))?;
            let host = host_path(source);
            // MS_REC: in a user namespace, binding a tree without its submounts is refused
            // (EINVAL) when they are locked, since it would reveal what they cover.
            sys.mount(
                Some(&host),
                target,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .map_err(fail(
                SetupStep::Bind {
                    source: source.clone(),
                },
                target,
            ))?;
            match mode {
                BindMode::ReadWrite => {}
                BindMode::ReadOnly => {
                    remount_read_only(sys, target, MsFlags::MS_NOSUID | MsFlags::MS_NODEV)?
                }
                // Reads and writes of a device ignore a read-only mount; chmod and chown of
                // its host inode do not.
                BindMode::Device => remount_read_only(sys, target, MsFlags::MS_NOSUID)?,
            }
        }
        Entry::Symlink { link, original } => {
            sys.create_dir_all(parent)
                .map_err(fail(SetupStep::CreateMountPoint, parent))?;
            sys.symlink(original, link)
                .map_err(fail(SetupStep::Symlink, link))?;
        }
        Entry::File { target, contents } => {
            sys.create_dir_all(parent)
                .map_err(fail(SetupStep::CreateMountPoint, parent))?;
            sys.write_file(target, contents.as_bytes())
                .map_err(fail(SetupStep::WriteFile, target))?;
        }
    }
    Ok(())
}

/// Makes the mount at `target` and every mount below it read-only, adding `add`.
///
/// A bind mount's read-only flag is per mount and does not apply to submounts, so each gets
/// its own remount. `MS_REMOUNT | MS_BIND` changes only the per-mount flags; in a user
/// namespace the flags locked by a more privileged one (nosuid, nodev, noexec, atime) must be
/// repeated or the kernel refuses with EPERM (mount(2), "EPERM"; mount_namespaces(7),
/// "Restrictions on mount namespaces"), so they are read back first.
fn remount_read_only(sys: &dyn Sys, target: &Path, add: MsFlags) -> Result<(), SetupError> {
    let inspect = |path: &Path| {
        let path = path.to_owned();
        move |source| SetupError {
            step: SetupStep::InspectMount,
            path,
            source,
            hint: None,
        }
    };
    let below = sys.submounts(target).map_err(inspect(target))?;
    for mount_point in std::iter::once(target.to_owned()).chain(below) {
        let current = sys
            .mount_flags(&mount_point)
            .map_err(inspect(&mount_point))?;
        let mut flags = (current & KEPT_FLAGS)
            | add
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_RDONLY;
        if !current.intersects(MsFlags::MS_NOATIME | MsFlags::MS_RELATIME) {
            // Neither flag means strictatime; saying none would ask for relatime.
            flags |= MsFlags::MS_STRICTATIME;
        }
        sys.mount(None, &mount_point, None, flags, None)
            .map_err(|source| SetupError {
                step: SetupStep::RemountReadOnly,
                path: mount_point.clone(),
                source,
                hint: None,
            })?;
    }
    Ok(())
}

/// Where the host path `source` is while the root is assembled.
fn host_path(source: &Path) -> PathBuf {
    Path::new(HOST_ROOT).join(source.strip_prefix("/").unwrap_or(source))
}

#[cfg(test)]
mod tests {
    use nix::errno::Errno;

    use super::*;
    use crate::sys::fake::{Call, FakeSys, MountArgs};
    use crate::sys::FileKind;
    use crate::SandboxConfig;

    fn host() -> FakeSys {
        let mut sys = FakeSys::new()
            .with("/tmp/b", FileKind::Dir)
            .with("/usr", FileKind::Dir)
            .with("/tmp/out", FileKind::Dir)
            .with("/tmp/probe", FileKind::File)
            // Host flags that a user namespace locks, read back for the remount.
            .with_flags("/usr", MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME)
            .with_submounts("/usr", &["/usr/local"])
            .with_flags("/usr/local", MsFlags::MS_NOATIME);
        for path in crate::layout::PROC_READ_ONLY {
            if path != "/proc/bus" {
                sys = sys.with(path, FileKind::Dir);
            }
        }
        sys
    }

    fn layout(sys: &FakeSys) -> Layout {
        let mut config = SandboxConfig::new("/tmp/b");
        config.lend = vec!["/usr".into(), "/tmp/probe".into()];
        config.writable = vec![("/tmp/out".into(), "/nix/store/ccc-out".into())];
        Layout::new(&config, sys).unwrap()
    }

    fn mount(
        source: Option<&str>,
        target: &str,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Call {
        Call::Mount(MountArgs {
            source: source.map(PathBuf::from),
            target: target.into(),
            fstype: fstype.map(str::to_owned),
            flags,
            data: data.map(str::to_owned),
        })
    }

    fn position(calls: &[Call], call: &Call) -> usize {
        calls
            .iter()
            .position(|c| c == call)
            .unwrap_or_else(|| panic!("{call:?} not in {calls:#?}"))
    }

    #[test]
    fn pivots_into_a_tmpfs_over_the_build_dir() {
        let sys = host();
        enter_root(&sys, &layout(&sys)).unwrap();
        let calls = sys.calls();
        assert_eq!(
            calls[..5],
            [
                mount(None, "/", None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None),
                mount(
                    Some("tmpfs"),
                    "/tmp/b",
                    Some("tmpfs"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                    Some("mode=0755,uid=1000,gid=100")
                ),
                Call::CreateDir("/tmp/b/.kiln-host".into()),
                Call::PivotRoot {
                    new_root: "/tmp/b".into(),
                    put_old: "/tmp/b/.kiln-host".into()
                },
                Call::Chdir("/".into()),
            ]
        );
        // Then proc first, since later steps read /proc/self/mountinfo.
        assert_eq!(calls[5], Call::CreateDir("/proc".into()));
        assert_eq!(
            calls[6],
            mount(
                Some("proc"),
                "/proc",
                Some("proc"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                None
            )
        );
        // And it ends by detaching the host and making the root read-only.
        let n = calls.len();
        assert_eq!(
            calls[n - 3..],
            [
                Call::Umount {
                    target: "/.kiln-host".into(),
                    flags: MntFlags::MNT_DETACH
                },
                Call::RemoveDir("/.kiln-host".into()),
                mount(
                    None,
                    "/",
                    None,
                    MsFlags::MS_REMOUNT
                        | MsFlags::MS_BIND
                        | MsFlags::MS_RDONLY
                        | MsFlags::MS_NOSUID
                        | MsFlags::MS_NODEV,
                    None
                ),
            ]
        );
    }

    #[test]
    fn read_only_binds_are_remounted_with_their_locked_flags() {
        let sys = host();
        enter_root(&sys, &layout(&sys)).unwrap();
        let calls = sys.calls();
        let bind = mount(
            Some("/.kiln-host/usr"),
            "/usr",
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        );
        let remount = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
        let protect = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        let top = mount(
            None,
            "/usr",
            None,
            remount | protect | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME,
            None,
        );
        let sub = mount(
            None,
            "/usr/local",
            None,
            remount | protect | MsFlags::MS_NOATIME,
            None,
        );
        let (b, t, s) = (
            position(&calls, &bind),
            position(&calls, &top),
            position(&calls, &sub),
        );
        assert!(b < t && t < s, "bind, then the top mount, then submounts");
        assert!(position(&calls, &Call::CreateDir("/usr".into())) < b);

        // A lent file gets a file mount point; strictatime is kept explicitly.
        assert!(calls.contains(&Call::CreateFile("/tmp/probe".into())));
        assert!(calls.contains(&mount(
            None,
            "/tmp/probe",
            None,
            remount | protect | MsFlags::MS_STRICTATIME,
            None
        )));
    }

    #[test]
    fn devices_stay_usable_and_outputs_writable() {
        let sys = host();
        enter_root(&sys, &layout(&sys)).unwrap();
        let mounts = sys.mounts();
        let null: Vec<&MountArgs> = mounts
            .iter()
            .filter(|m| m.target == Path::new("/dev/null"))
            .collect();
        assert_eq!(null.len(), 2);
        assert_eq!(
            null[0].source.as_deref(),
            Some(Path::new("/.kiln-host/dev/null"))
        );
        assert!(null[1]
            .flags
            .contains(MsFlags::MS_RDONLY | MsFlags::MS_NOSUID));
        assert!(!null[1].flags.contains(MsFlags::MS_NODEV));

        let out: Vec<&MountArgs> = mounts
            .iter()
            .filter(|m| m.target == Path::new("/nix/store/ccc-out"))
            .collect();
        assert_eq!(out.len(), 1, "binds of outputs are not remounted");
        assert_eq!(
            out[0].source.as_deref(),
            Some(Path::new("/.kiln-host/tmp/out"))
        );
        assert_eq!(out[0].flags, MsFlags::MS_BIND | MsFlags::MS_REC);

        let build: Vec<&MountArgs> = mounts
            .iter()
            .filter(|m| m.target == Path::new("/build"))
            .collect();
        assert_eq!(build.len(), 1);
    }

    #[test]
    fn proc_parts_become_read_only_when_present() {
        let sys = host();
        enter_root(&sys, &layout(&sys)).unwrap();
        let mounts = sys.mounts();
        let sys_ro: Vec<&MountArgs> = mounts
            .iter()
            .filter(|m| m.target == Path::new("/proc/sys"))
            .collect();
        assert_eq!(sys_ro.len(), 2);
        assert_eq!(sys_ro[0].source.as_deref(), Some(Path::new("/proc/sys")));
        assert!(sys_ro[1].flags.contains(MsFlags::MS_RDONLY));
        // /proc/bus is missing from this fake kernel: skipped, not an error.
        assert!(!mounts.iter().any(|m| m.target == Path::new("/proc/bus")));
    }

    #[test]
    fn dev_and_tmp() {
        let sys = host();
        enter_root(&sys, &layout(&sys)).unwrap();
        let calls = sys.calls();
        assert!(calls.contains(&mount(
            Some("devpts"),
            "/dev/pts",
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620")
        )));
        assert!(calls.contains(&Call::Symlink {
            original: "/dev/pts/ptmx".into(),
            link: "/dev/ptmx".into()
        }));
        assert!(calls.contains(&mount(
            Some("tmpfs"),
            "/tmp",
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=1777,uid=1000,gid=100")
        )));
        let dev = position(
            &calls,
            &mount(
                Some("tmpfs"),
                "/dev",
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
                Some("mode=0755,uid=1000,gid=100"),
            ),
        );
        assert!(dev < position(&calls, &Call::CreateFile("/dev/null".into())));
        let passwd = calls
            .iter()
            .position(
                |c| matches!(c, Call::WriteFile { path, .. } if path == Path::new("/etc/passwd")),
            )
            .unwrap();
        assert!(passwd < position(&calls, &Call::RemoveDir("/.kiln-host".into())));
    }

    #[test]
    fn a_failed_step_names_the_step_and_path() {
        let sys = host().failing(|call| match call {
            Call::Mount(args) if args.fstype.as_deref() == Some("proc") => Some(Errno::EPERM),
            _ => None,
        });
        let error = enter_root(&sys, &layout(&sys)).unwrap_err();
        assert_eq!(error.step, SetupStep::MountProc);
        assert_eq!(error.path, Path::new("/proc"));
        assert_eq!(error.source.raw_os_error(), Some(Errno::EPERM as i32));
        assert_eq!(error.to_string(), "cannot mount a fresh proc at `/proc`");
    }
}
