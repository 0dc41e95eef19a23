//! No command: kiln is a Nix derivation's builder. It reads `.attrs.json`, runs the whole
//! build or one part of a split build, and speaks Nix's `@nix` log protocol.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kiln_builder::run::executor::ExecutorOptions;
use kiln_builder::setup::env::nix_defined;
use kiln_builder::split::{prepare_part, run_part};
use kiln_builder::{
    attrs_json_path, load_attrs_file, prepare, run_build, BuildPaths, LoadedPlan, LogFormat,
    Reporter, WriterReporter,
};

use super::nix_build_cores;
use crate::cli::{GlobalArgs, LogFormatArg};
use crate::error::CliError;
use crate::{log_format, max_level};

/// For a derivation translated from stdenv's attributes: its warnings and the shell hooks it
/// runs.
fn report_translation(loaded: &LoadedPlan, reporter: &mut dyn Reporter) {
    if let Some(report) = &loaded.stdenv {
        for (level, text) in report.messages() {
            reporter.report(&kiln_schema::events::LogEvent::Message { level, text: &text });
        }
    }
}

/// No command: kiln is a Nix derivation's builder.
pub fn nix_builder(global: &GlobalArgs) -> Result<(), CliError> {
    let Some(build_top) = std::env::var_os("NIX_BUILD_TOP").map(PathBuf::from) else {
        return Err(CliError::NotUnderNix);
    };
    let attrs_var = std::env::var("NIX_ATTRS_JSON_FILE").ok();
    let attrs = attrs_json_path(attrs_var.as_deref(), &build_top);
    let loaded = load_attrs_file(&attrs).map_err(CliError::Load)?;
    if let Some(outputs) = &loaded.outputs {
        if outputs.values().any(|path| path.as_os_str().is_empty()) {
            return Err(CliError::Usage(format!(
                "`{}` lists output names without their paths; under Nix, `.attrs.json` maps each \
                 output to its store path",
                attrs.display()
            )));
        }
    }
    let cores = nix_build_cores();
    let paths = BuildPaths {
        build_top,
        outputs: BTreeMap::new(),
        cores,
    };
    let nix_env = nix_defined(std::env::vars());
    let format = match global.log_format {
        LogFormatArg::Auto => LogFormat::Nix,
        _ => log_format(global),
    };
    let mut reporter = WriterReporter::new(format, max_level(global), std::io::stderr());
    report_translation(&loaded, &mut reporter);
    if let Some(part) = &loaded.split {
        let derivation_outputs = loaded.outputs.clone().unwrap_or_default();
        let prepared = prepare_part(&loaded, part, paths.build_top, paths.cores, &nix_env)
            .map_err(CliError::Load)?;
        let (_, result) = run_part(
            &prepared,
            part,
            &derivation_outputs,
            ExecutorOptions::default(),
            &mut reporter,
        );
        return result.map_err(|error| CliError::Split {
            name: prepared.plan.name.clone(),
            error,
        });
    }
    let prepared = prepare(&loaded, paths, &nix_env).map_err(CliError::Load)?;
    let (_, result) = run_build(&prepared, ExecutorOptions::default(), &mut reporter);
    result.map_err(|error| CliError::Run {
        name: prepared.plan.name.clone(),
        error,
        note: None,
    })
}
