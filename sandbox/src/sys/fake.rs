//! [`FakeSys`]: a [`Sys`] for tests that records every changing call as a typed [`Call`], in
//! order, and answers queries about host paths from a table.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use super::{FileKind, Sys};

/// The arguments of one `mount(2)` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountArgs {
    pub source: Option<PathBuf>,
    pub target: PathBuf,
    pub fstype: Option<String>,
    pub flags: MsFlags,
    pub data: Option<String>,
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    Unshare(CloneFlags),
    WriteFile { path: PathBuf, contents: String },
    Mount(MountArgs),
    Umount { target: PathBuf, flags: MntFlags },
    PivotRoot { new_root: PathBuf, put_old: PathBuf },
    CreateDir(PathBuf),
    RemoveDir(PathBuf),
    CreateFile(PathBuf),
    Symlink { original: PathBuf, link: PathBuf },
    Chdir(PathBuf),
    SetHostname(String),
    LoopbackUp,
}

/// Decides whether a call fails, and with which errno.
type FailWhen = Box<dyn Fn(&Call) -> Option<Errno>>;

/// A host whose paths are listed in a table and whose calls are recorded.
#[derive(Default)]
pub(crate) struct FakeSys {
    /// Host paths and what they are; a symlink maps to its target.
    paths: BTreeMap<PathBuf, (FileKind, Option<PathBuf>)>,
    /// `canonicalize` answers; paths absent here canonicalize to themselves if they exist.
    canonical: BTreeMap<PathBuf, PathBuf>,
    /// `mount_flags` answers; empty flags when absent.
    flags: BTreeMap<PathBuf, MsFlags>,
    /// `submounts` answers; none when absent.
    submounts: BTreeMap<PathBuf, Vec<PathBuf>>,
    fail_when: Option<FailWhen>,
    calls: RefCell<Vec<Call>>,
}

impl FakeSys {
    /// A host with the usual device nodes.
    pub fn new() -> FakeSys {
        let mut sys = FakeSys::default();
        for device in ["full", "null", "random", "tty", "urandom", "zero"] {
            sys = sys.with(format!("/dev/{device}"), FileKind::Device);
        }
        sys
    }

    pub fn with(mut self, path: impl Into<PathBuf>, kind: FileKind) -> FakeSys {
        self.paths.insert(path.into(), (kind, None));
        self
    }

    pub fn with_symlink(mut self, path: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Self {
        self.paths
            .insert(path.into(), (FileKind::Symlink, Some(target.into())));
        self
    }

    pub fn with_canonical(
        mut self,
        path: impl Into<PathBuf>,
        canonical: impl Into<PathBuf>,
    ) -> Self {
        self.canonical.insert(path.into(), canonical.into());
        self
    }

    pub fn with_flags(mut self, path: impl Into<PathBuf>, flags: MsFlags) -> FakeSys {
        self.flags.insert(path.into(), flags);
        self
    }

    pub fn with_submounts(mut self, path: impl Into<PathBuf>, below: &[&str]) -> FakeSys {
        self.submounts
            .insert(path.into(), below.iter().map(PathBuf::from).collect());
        self
    }

    pub fn failing(mut self, fail_when: impl Fn(&Call) -> Option<Errno> + 'static) -> Self {
        self.fail_when = Some(Box::new(fail_when));
        self
    }

    /// The calls so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    /// The `mount(2)` calls so far, in order.
    pub fn mounts(&self) -> Vec<MountArgs> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::Mount(args) => Some(args),
                _ => None,
            })
            .collect()
    }

    fn record(&self, call: Call) -> io::Result<()> {
        if let Some(errno) = self.fail_when.as_ref().and_then(|fail| fail(&call)) {
            return Err(io::Error::from_raw_os_error(errno as i32));
        }
        self.calls.borrow_mut().push(call);
        Ok(())
    }

    fn entry(&self, path: &Path) -> io::Result<&(FileKind, Option<PathBuf>)> {
        self.paths
            .get(path)
            .ok_or_else(|| io::Error::from_raw_os_error(Errno::ENOENT as i32))
    }
}

impl Sys for FakeSys {
    fn kind(&self, path: &Path) -> io::Result<FileKind> {
        Ok(self.entry(path)?.0)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        if let Some(canonical) = self.canonical.get(path) {
            return Ok(canonical.clone());
        }
        self.entry(path)?;
        Ok(path.to_owned())
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        self.entry(path)?
            .1
            .clone()
            .ok_or_else(|| io::Error::from_raw_os_error(Errno::EINVAL as i32))
    }

    fn unshare(&self, flags: CloneFlags) -> io::Result<()> {
        self.record(Call::Unshare(flags))
    }

    fn write_file(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        self.record(Call::WriteFile {
            path: path.to_owned(),
            contents: String::from_utf8_lossy(contents).into_owned(),
        })
    }

    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()> {
        self.record(Call::Mount(MountArgs {
            source: source.map(Path::to_owned),
            target: target.to_owned(),
            fstype: fstype.map(str::to_owned),
            flags,
            data: data.map(str::to_owned),
        }))
    }

    fn umount(&self, target: &Path, flags: MntFlags) -> io::Result<()> {
        self.record(Call::Umount {
            target: target.to_owned(),
            flags,
        })
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> io::Result<()> {
        self.record(Call::PivotRoot {
            new_root: new_root.to_owned(),
            put_old: put_old.to_owned(),
        })
    }

    fn mount_flags(&self, path: &Path) -> io::Result<MsFlags> {
        Ok(self.flags.get(path).copied().unwrap_or(MsFlags::empty()))
    }

    fn submounts(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        Ok(self.submounts.get(path).cloned().unwrap_or_default())
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.record(Call::CreateDir(path.to_owned()))
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.record(Call::RemoveDir(path.to_owned()))
    }

    fn create_file(&self, path: &Path) -> io::Result<()> {
        self.record(Call::CreateFile(path.to_owned()))
    }

    fn symlink(&self, original: &Path, link: &Path) -> io::Result<()> {
        self.record(Call::Symlink {
            original: original.to_owned(),
            link: link.to_owned(),
        })
    }

    fn chdir(&self, path: &Path) -> io::Result<()> {
        self.record(Call::Chdir(path.to_owned()))
    }

    fn sethostname(&self, name: &str) -> io::Result<()> {
        self.record(Call::SetHostname(name.to_owned()))
    }

    fn loopback_up(&self) -> io::Result<()> {
        self.record(Call::LoopbackUp)
    }
}
