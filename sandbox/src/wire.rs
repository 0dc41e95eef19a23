//! The command line of the hidden `__sandbox-init` subcommand: [`InitArgs`], written by
//! [`sandboxed_command`](crate::sandboxed_command) and [`probe`](crate::probe), read by
//! [`init_main`](crate::init_main).
//!
//! # Format
//!
//! The arguments after `__sandbox-init`, one value per argument (so paths need no quoting and
//! may be any bytes, and no single argument nears the kernel's 128 KiB limit however many
//! store paths there are):
//!
//! ```text
//! [--terminal] [--probe] [--parent-pid PID] --uid UID --gid GID --hostname NAME
//! --build-dir HOST --sandbox-build-dir INSIDE
//! [--store PATH]... [--lend PATH]... [--writable HOST INSIDE]...
//! --cwd INSIDE --program PATH -- ARGV0 [ARG]...
//! ```
//!
//! The environment is not part of the format: the command inherits the init's, which is the
//! one the caller set on the [`Command`](std::process::Command).

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use crate::error::SandboxError;
use crate::SandboxConfig;

/// Everything the init needs, as carried on its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InitArgs {
    /// The sandbox.
    pub config: SandboxConfig,
    /// The program to run inside (searched in the command's `PATH` when it has no `/`).
    pub program: PathBuf,
    /// Its argv, `argv[0]` included.
    pub argv: Vec<OsString>,
    /// Its working directory, inside.
    pub cwd: PathBuf,
    /// The pid of the process that started the init, to notice that it already exited.
    pub parent_pid: Option<u32>,
    /// Set up the sandbox, run nothing, and report failures for [`probe`](crate::probe).
    pub probe: bool,
}

impl InitArgs {
    /// The arguments that go after `__sandbox-init`.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut flag = |name: &str, value: &OsStr| {
            args.push(name.into());
            args.push(value.to_owned());
        };
        let config = &self.config;
        if let Some(pid) = self.parent_pid {
            flag("--parent-pid", pid.to_string().as_ref());
        }
        flag("--uid", config.uid.to_string().as_ref());
        flag("--gid", config.gid.to_string().as_ref());
        flag("--hostname", config.hostname.as_ref());
        flag("--build-dir", config.build_dir.as_ref());
        flag("--sandbox-build-dir", config.sandbox_build_dir.as_ref());
        for path in &config.store_paths {
            flag("--store", path.as_ref());
        }
        for path in &config.lend {
            flag("--lend", path.as_ref());
        }
        flag("--cwd", self.cwd.as_ref());
        flag("--program", self.program.as_ref());
        for (host, inside) in &config.writable {
            args.push("--writable".into());
            args.push(host.into());
            args.push(inside.into());
        }
        if self.probe {
            args.insert(0, "--probe".into());
        }
        if config.controlling_terminal {
            args.insert(0, "--terminal".into());
        }
        args.push("--".into());
        args.extend(self.argv.iter().cloned());
        args
    }

    /// Reads what [`InitArgs::to_args`] wrote.
    pub fn parse(args: &[OsString]) -> Result<InitArgs, SandboxError> {
        let bad = |reason: String| SandboxError::InitArgs { reason };
        let mut config = SandboxConfig::new(PathBuf::new());
        let mut parsed = InitArgs {
            config: SandboxConfig::new(PathBuf::new()),
            program: PathBuf::new(),
            argv: Vec::new(),
            cwd: PathBuf::new(),
            parent_pid: None,
            probe: false,
        };
        let (mut uid, mut gid, mut hostname) = (None, None, None);
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let name = arg.to_string_lossy();
            let mut value = || {
                iter.next()
                    .cloned()
                    .ok_or_else(|| bad(format!("`{name}` needs a value")))
            };
            let number = |value: OsString| {
                value
                    .to_str()
                    .and_then(|text| text.parse::<u32>().ok())
                    .ok_or_else(|| bad(format!("`{name}` needs a number")))
            };
            match name.as_ref() {
                "--probe" => parsed.probe = true,
                "--terminal" => config.controlling_terminal = true,
                "--parent-pid" => parsed.parent_pid = Some(number(value()?)?),
                "--uid" => uid = Some(number(value()?)?),
                "--gid" => gid = Some(number(value()?)?),
                "--hostname" => {
                    let value = value()?;
                    let text = value
                        .into_string()
                        .map_err(|_| bad("`--hostname` must be UTF-8".into()))?;
                    hostname = Some(text);
                }
                "--build-dir" => config.build_dir = value()?.into(),
                "--sandbox-build-dir" => config.sandbox_build_dir = value()?.into(),
                "--store" => config.store_paths.push(value()?.into()),
                "--lend" => config.lend.push(value()?.into()),
                "--writable" => {
                    let host = value()?;
                    let inside = value()?;
                    config.writable.push((host.into(), inside.into()));
                }
                "--cwd" => parsed.cwd = value()?.into(),
                "--program" => parsed.program = value()?.into(),
                "--" => {
                    parsed.argv = iter.by_ref().cloned().collect();
                    break;
                }
                other => return Err(bad(format!("unknown argument `{other}`"))),
            }
        }
        config.uid = uid.ok_or_else(|| bad("`--uid` is missing".into()))?;
        config.gid = gid.ok_or_else(|| bad("`--gid` is missing".into()))?;
        config.hostname = hostname.ok_or_else(|| bad("`--hostname` is missing".into()))?;
        if config.build_dir.as_os_str().is_empty() {
            return Err(bad("`--build-dir` is missing".into()));
        }
        if !parsed.probe && (parsed.program.as_os_str().is_empty() || parsed.argv.is_empty()) {
            return Err(bad("the program and its argv are missing".into()));
        }
        if parsed.cwd.as_os_str().is_empty() {
            return Err(bad("`--cwd` is missing".into()));
        }
        parsed.config = config;
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStringExt;

    use super::*;

    fn sample() -> InitArgs {
        let mut config = SandboxConfig::new("/tmp/build dir");
        config.store_paths = vec!["/nix/store/aaa-dep".into(), "/nix/store/bbb-dep".into()];
        config.lend = vec!["/usr".into()];
        config.writable = vec![("/tmp/out".into(), "/nix/store/ccc-out".into())];
        config.uid = 4242;
        config.hostname = "kiln".into();
        config.controlling_terminal = true;
        InitArgs {
            config,
            program: "/usr/bin/env".into(),
            argv: vec![
                "env".into(),
                "--".into(),
                OsString::from_vec(vec![0xff, b'x']),
            ],
            cwd: "/build".into(),
            parent_pid: Some(77),
            probe: false,
        }
    }

    #[test]
    fn round_trips() {
        let args = sample();
        assert_eq!(InitArgs::parse(&args.to_args()).unwrap(), args);
        let probe = InitArgs {
            probe: true,
            argv: Vec::new(),
            parent_pid: None,
            ..sample()
        };
        assert_eq!(InitArgs::parse(&probe.to_args()).unwrap(), probe);
    }

    #[test]
    fn one_value_per_argument() {
        let args = sample().to_args();
        let strings: Vec<String> = args
            .iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        let at = strings.iter().position(|a| a == "--build-dir").unwrap();
        assert_eq!(strings[at + 1], "/tmp/build dir");
        let at = strings.iter().position(|a| a == "--writable").unwrap();
        assert_eq!(strings[at + 1..at + 3], ["/tmp/out", "/nix/store/ccc-out"]);
        assert_eq!(strings[strings.len() - 3..strings.len() - 1], ["env", "--"]);
    }

    #[test]
    fn refuses_malformed_arguments() {
        for (args, expected) in [
            (vec!["--uid"], "`--uid` needs a value"),
            (vec!["--uid", "x"], "`--uid` needs a number"),
            (vec!["--frobnicate"], "unknown argument `--frobnicate`"),
            (vec!["--gid", "1"], "`--uid` is missing"),
        ] {
            let args: Vec<OsString> = args.into_iter().map(OsString::from).collect();
            match InitArgs::parse(&args) {
                Err(SandboxError::InitArgs { reason }) => assert_eq!(reason, expected),
                other => panic!("{other:?}"),
            }
        }
    }
}
