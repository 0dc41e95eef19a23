//! `kiln-sandbox-probe`: runs inside a sandbox in the tests and reports what it sees, so that
//! the assertions are about the real sandbox (youki's `runtimetest`).
//!
//! Each subcommand prints its result on stdout and exits 0, or prints `errno=NAME` and exits
//! 1 when the operation fails (the tests expect most escapes to fail with a precise errno).
//! Usage errors exit 2.
//!
//! File operations use `std::fs`, not `fs_err`: the errno is the result.

use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{kill, raise, Signal};
use nix::unistd::Pid;

const USAGE: &str = "usage: kiln-sandbox-probe write PATH [TEXT] | remove PATH | chmod PATH MODE
  | read PATH | ls DIR | cwd | hostname | ids | env | pids | pidns | kill0 PID
  | connect ADDR | loopback | interfaces | exit CODE | kill-self SIGNAL | pause | orphan";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["write", path] => std::fs::write(path, "written by the probe\n").map(|()| String::new()),
        ["write", path, text] => std::fs::write(path, text).map(|()| String::new()),
        ["remove", path] => std::fs::remove_file(path).map(|()| String::new()),
        ["chmod", path, mode] => match u32::from_str_radix(mode, 8) {
            Ok(mode) => std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map(|()| String::new()),
            Err(_) => return usage(),
        },
        ["read", path] => std::fs::read_to_string(path),
        ["ls", dir] => list(dir),
        ["cwd"] => std::env::current_dir().map(|dir| format!("{}\n", dir.display())),
        ["hostname"] => nix::unistd::gethostname()
            .map(|name| format!("{}\n", name.to_string_lossy()))
            .map_err(io::Error::from),
        ["ids"] => Ok(ids()),
        ["env"] => Ok(std::env::vars()
            .map(|(name, value)| format!("{name}={value}\n"))
            .collect()),
        ["pids"] => pids(),
        ["pidns"] => {
            std::fs::read_link("/proc/self/ns/pid").map(|link| format!("{}\n", link.display()))
        }
        ["kill0", pid] => match pid.parse() {
            Ok(pid) => kill(Pid::from_raw(pid), None)
                .map(|()| "alive\n".to_owned())
                .map_err(io::Error::from),
            Err(_) => return usage(),
        },
        ["connect", addr] => match addr.parse::<SocketAddr>() {
            Ok(addr) => TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                .map(|_| "connected\n".to_owned()),
            Err(_) => return usage(),
        },
        ["loopback"] => loopback(),
        ["interfaces"] => interfaces(),
        ["exit", code] => match code.parse::<u8>() {
            Ok(code) => return ExitCode::from(code),
            Err(_) => return usage(),
        },
        ["kill-self", signal] => match signal.parse::<i32>().map(Signal::try_from) {
            Ok(Ok(signal)) => raise(signal)
                .map(|()| "still alive\n".to_owned())
                .map_err(io::Error::from),
            _ => return usage(),
        },
        ["pause"] => {
            // The pid namespace's identity lets the test look for leftovers from the host.
            let namespace = std::fs::read_link("/proc/self/ns/pid").unwrap_or_default();
            println!("ready {}", namespace.display());
            let _ = io::stdout().flush();
            loop {
                std::thread::park();
            }
        }
        ["orphan"] => orphan(),
        _ => return usage(),
    };
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            match error.raw_os_error() {
                Some(errno) => println!("errno={:?}", Errno::from_raw(errno)),
                None => println!("error={error}"),
            }
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

/// The names in `dir`, sorted, one per line.
fn list(dir: &str) -> io::Result<String> {
    let mut names = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<Vec<_>>>()?;
    names.sort();
    Ok(names.into_iter().map(|name| name + "\n").collect())
}

fn ids() -> String {
    let groups = nix::unistd::getgroups()
        .unwrap_or_default()
        .iter()
        .map(|gid| gid.as_raw().to_string())
        .collect::<Vec<_>>()
        .join(",");
    format!(
        "uid={} gid={} euid={} egid={} groups={groups}\n",
        nix::unistd::getuid(),
        nix::unistd::getgid(),
        nix::unistd::geteuid(),
        nix::unistd::getegid()
    )
}

/// The pids in `/proc`, ascending.
fn pids() -> io::Result<String> {
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    Ok(pids.iter().map(|pid| format!("{pid}\n")).collect())
}

/// Connects to a listener on 127.0.0.1 inside the sandbox.
fn loopback() -> io::Result<String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr = listener.local_addr()?;
    let _client = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    let (_server, _) = listener.accept()?;
    Ok("loopback works\n".to_owned())
}

/// The network interfaces, from `/proc/net/dev`.
fn interfaces() -> io::Result<String> {
    let table = std::fs::read_to_string("/proc/net/dev")?;
    Ok(table
        .lines()
        .skip(2)
        .filter_map(|line| line.split(':').next())
        .map(|name| format!("{}\n", name.trim()))
        .collect())
}

/// Leaves a process behind, in its own process group so that only the pid namespace's end
/// can stop it, holding our stdout; prints this pid namespace's identity.
fn orphan() -> io::Result<String> {
    let self_exe = std::env::current_exe()?;
    Command::new(self_exe)
        .arg("pause")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()?;
    // The orphan keeps stderr, so the test's read of it ends only when the orphan is gone.
    Ok(format!(
        "{}\n",
        std::fs::read_link("/proc/self/ns/pid")?.display()
    ))
}
