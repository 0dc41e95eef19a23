//! Applies one patch to a tree and reports what happened: a driver for trying kiln-patch by
//! hand and for measuring it (e.g. peak memory with `/usr/bin/time -v`).
//!
//! ```text
//! cargo run --release -p kiln-patch --example apply -- PATCH ROOT [STRIP]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use kiln_patch::{apply_patch_file, PatchOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(patch), Some(root)) = (args.first(), args.get(1)) else {
        eprintln!("usage: apply PATCH ROOT [STRIP]");
        return ExitCode::from(2);
    };
    let strip = match args.get(2).map(|strip| strip.parse()) {
        None => 1,
        Some(Ok(strip)) => strip,
        Some(Err(_)) => {
            eprintln!("error: the strip level `{}` is not a number", args[2]);
            return ExitCode::from(2);
        }
    };
    let result = apply_patch_file(
        &PathBuf::from(patch),
        &PathBuf::from(root),
        &PatchOptions { strip },
    );
    match result {
        Ok(report) => {
            for file in &report.files {
                println!("{:?} `{}`", file.change, file.path.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            if let Some(hint) = error.hint() {
                eprintln!("\nhint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}
