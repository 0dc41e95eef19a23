//! [`LinuxSys`]: the real system calls behind [`Sys`].
//!
//! File-system calls use `std::fs` directly rather than `fs_err`: every failure is wrapped in an
//! error that already names the path and the step, and [`diagnose`](crate::hint) needs the raw
//! errno, which `fs_err` hides.

use std::ffi::OsString;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::socket::{
    recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};
use nix::sys::statvfs::{statvfs, FsFlags};

use super::netlink;
use super::{FileKind, Sys};

/// The real system calls.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinuxSys;

impl Sys for LinuxSys {
    fn kind(&self, path: &Path) -> io::Result<FileKind> {
        let file_type = std::fs::symlink_metadata(path)?.file_type();
        Ok(if file_type.is_symlink() {
            FileKind::Symlink
        } else if file_type.is_dir() {
            FileKind::Dir
        } else if file_type.is_char_device() || file_type.is_block_device() {
            FileKind::Device
        } else {
            FileKind::File
        })
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::read_link(path)
    }

    fn unshare(&self, flags: CloneFlags) -> io::Result<()> {
        Ok(nix::sched::unshare(flags)?)
    }

    fn write_file(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        std::fs::write(path, contents)
    }

    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()> {
        Ok(nix::mount::mount(source, target, fstype, flags, data)?)
    }

    fn umount(&self, target: &Path, flags: MntFlags) -> io::Result<()> {
        Ok(nix::mount::umount2(target, flags)?)
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> io::Result<()> {
        Ok(nix::unistd::pivot_root(new_root, put_old)?)
    }

    fn mount_flags(&self, path: &Path) -> io::Result<MsFlags> {
        Ok(mount_flags_of(statvfs(path)?.flags()))
    }

    fn submounts(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        let mountinfo = std::fs::read("/proc/self/mountinfo")?;
        Ok(submounts_in(&mountinfo, path))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }

    fn create_file(&self, path: &Path) -> io::Result<()> {
        if std::fs::symlink_metadata(path).is_ok() {
            // Already there (e.g. inside a read-only bind), which is all a mount point needs.
            return Ok(());
        }
        std::fs::File::create(path).map(drop)
    }

    fn symlink(&self, original: &Path, link: &Path) -> io::Result<()> {
        std::os::unix::fs::symlink(original, link)
    }

    fn chdir(&self, path: &Path) -> io::Result<()> {
        Ok(nix::unistd::chdir(path)?)
    }

    fn sethostname(&self, name: &str) -> io::Result<()> {
        Ok(nix::unistd::sethostname(name)?)
    }

    fn loopback_up(&self) -> io::Result<()> {
        // A fresh network namespace has only `lo`, and it is down
        // (network_namespaces(7)); `ip link set lo up` is one rtnetlink request.
        let index = nix::net::if_::if_nametoindex("lo")?;
        let socket = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        let request = netlink::link_up_request(index, 1);
        sendto(
            socket.as_raw_fd(),
            &request,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )?;
        let mut reply = [0u8; 1024];
        let len = recv(socket.as_raw_fd(), &mut reply, MsgFlags::empty())?;
        netlink::check_ack(&reply[..len])
    }
}

/// `statvfs(3)` flags as the `mount(2)` flags that keep them on a remount.
///
/// `ST_RELATIME` is spelled out: the C library's constant is missing on musl.
fn mount_flags_of(flags: FsFlags) -> MsFlags {
    let st_relatime = FsFlags::from_bits_retain(0x1000);
    let mut mount = MsFlags::empty();
    for (statvfs, flag) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
    ] {
        if flags.contains(statvfs) {
            mount |= flag;
        }
    }
    if flags.contains(st_relatime) {
        mount |= MsFlags::MS_RELATIME;
    }
    mount
}

/// The mount points strictly below `path` in a `/proc/self/mountinfo` text, in its order
/// (parents before children).
///
/// The fifth field is the mount point, relative to the process's root, with space, tab,
/// newline and backslash escaped as octal (`\040`)
/// ([proc_pid_mountinfo(5)](https://man7.org/linux/man-pages/man5/proc_pid_mountinfo.5.html)).
fn submounts_in(mountinfo: &[u8], path: &Path) -> Vec<PathBuf> {
    mountinfo
        .split(|&byte| byte == b'\n')
        .filter_map(|line| line.split(|&byte| byte == b' ').nth(4))
        .map(|field| PathBuf::from(OsString::from_vec(unescape_octal(field))))
        .filter(|mount_point| mount_point != path && mount_point.starts_with(path))
        .collect()
}

fn unescape_octal(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' {
            if let Some(digits) = field.get(i + 1..i + 4) {
                if digits.iter().all(|digit| (b'0'..=b'7').contains(digit)) {
                    let value = digits
                        .iter()
                        .fold(0u32, |value, digit| value * 8 + u32::from(digit - b'0'));
                    if let Ok(byte) = u8::try_from(value) {
                        out.push(byte);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statvfs_flags_carry_over() {
        let flags = FsFlags::ST_NOSUID | FsFlags::ST_NODEV | FsFlags::ST_NOATIME;
        assert_eq!(
            mount_flags_of(flags),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOATIME
        );
        let relatime = FsFlags::from_bits_retain(0x1000);
        assert_eq!(mount_flags_of(relatime), MsFlags::MS_RELATIME);
    }

    #[test]
    fn submounts_below_a_path() {
        let mountinfo = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
40 27 254:0 /usr /usr ro,relatime - ext4 /dev/vda rw
41 40 0:50 / /usr/local rw,relatime - tmpfs tmpfs rw
42 40 0:51 / /usr/with\\040space rw,relatime - tmpfs tmpfs rw
43 27 0:52 / /usrx rw,relatime - tmpfs tmpfs rw
";
        assert_eq!(
            submounts_in(mountinfo.as_bytes(), Path::new("/usr")),
            [
                PathBuf::from("/usr/local"),
                PathBuf::from("/usr/with space")
            ]
        );
        assert!(submounts_in(mountinfo.as_bytes(), Path::new("/usr/local")).is_empty());
    }

    #[test]
    fn octal_escapes() {
        assert_eq!(unescape_octal(br"/a\040b\011c\134d"), b"/a b\tc\\d");
        assert_eq!(unescape_octal(br"/trailing\04"), br"/trailing\04");
        assert_eq!(unescape_octal(br"/big\777"), br"/big\777");
    }
}

/// The real system calls for a PID 1 that has no id in its own user namespace (kiln runs as
/// root and the ids were mapped from outside, see `init::map_from_outside`): files and
/// directories are created as the build user (`uid`, `gid` inside), everything else is
/// [`LinuxSys`].
///
/// A file system mounted in the sandbox's user namespace (the root's tmpfs, `/dev`) refuses to
/// create an inode for a caller whose file-system ids are not mapped in it (EOVERFLOW), while
/// the host paths PID 1 binds must still be looked up as root. File-system ids are per thread,
/// so each creation runs on a short-lived thread that takes the build user's (`setfsuid(2)`,
/// `setfsgid(2)`); PID 1 itself keeps its own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CreatingAs {
    /// The uid inside that creates.
    pub uid: u32,
    /// The gid inside that creates.
    pub gid: u32,
}

impl CreatingAs {
    fn create<T: Send>(&self, create: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    nix::unistd::setfsgid(nix::unistd::Gid::from_raw(self.gid));
                    nix::unistd::setfsuid(nix::unistd::Uid::from_raw(self.uid));
                    // Both calls return the previous id and never fail; a second call with an
                    // invalid id tells whether the first took effect.
                    let now = nix::unistd::setfsuid(nix::unistd::Uid::from_raw(u32::MAX));
                    if now.as_raw() != self.uid {
                        return Err(io::Error::from_raw_os_error(nix::libc::EPERM));
                    }
                    create()
                })
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the creating thread panicked")))
        })
    }
}

impl Sys for CreatingAs {
    fn kind(&self, path: &Path) -> io::Result<FileKind> {
        LinuxSys.kind(path)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        LinuxSys.canonicalize(path)
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        LinuxSys.read_link(path)
    }

    fn unshare(&self, flags: CloneFlags) -> io::Result<()> {
        LinuxSys.unshare(flags)
    }

    fn write_file(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        self.create(|| LinuxSys.write_file(path, contents))
    }

    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()> {
        LinuxSys.mount(source, target, fstype, flags, data)
    }

    fn umount(&self, target: &Path, flags: MntFlags) -> io::Result<()> {
        LinuxSys.umount(target, flags)
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> io::Result<()> {
        LinuxSys.pivot_root(new_root, put_old)
    }

    fn mount_flags(&self, path: &Path) -> io::Result<MsFlags> {
        LinuxSys.mount_flags(path)
    }

    fn submounts(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        LinuxSys.submounts(path)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.create(|| LinuxSys.create_dir_all(path))
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        LinuxSys.remove_dir(path)
    }

    fn create_file(&self, path: &Path) -> io::Result<()> {
        self.create(|| LinuxSys.create_file(path))
    }

    fn symlink(&self, original: &Path, link: &Path) -> io::Result<()> {
        self.create(|| LinuxSys.symlink(original, link))
    }

    fn chdir(&self, path: &Path) -> io::Result<()> {
        LinuxSys.chdir(path)
    }

    fn sethostname(&self, name: &str) -> io::Result<()> {
        LinuxSys.sethostname(name)
    }

    fn loopback_up(&self) -> io::Result<()> {
        LinuxSys.loopback_up()
    }
}
