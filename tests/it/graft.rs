//! Grafts under real sandboxed Nix (issue 14): `replaceDependencies` swaps a deep runtime
//! dependency (`libgreet` 1.0 → 1.1, fixed by a patch) in a program and the two-output library
//! between them without rebuilding either (`tests/fixtures/graft`).

use std::process::Output;

use crate::common::describe;
use crate::nix::{closure_of, nix_build_on, nonce, on_both_nix, Nix};

/// `nix-build tests/fixtures/graft -A ATTR` on `nix`.
fn build(nix: Nix, attr: &str, nonce: &str) -> Output {
    nix_build_on(nix, "graft", nonce, &["-A", attr])
}

/// The one output path a successful build printed.
fn path_of(nix: Nix, output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}: {}",
        nix.name(),
        describe(output)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .expect("nix-build prints the output path")
        .to_owned()
}

/// The derivations a build said it would build.
fn built(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter_map(|line| line.trim().strip_prefix("building '"))
        .filter_map(|rest| rest.split('\'').next())
        .map(str::to_owned)
        .collect()
}

/// The grafted program runs with the fixed library through both of its paths (directly and
/// through libmid); its closure holds neither the old library nor the old libmid; building it
/// builds the fixed library and two grafts (copies), and neither the program's nor libmid's
/// own derivation.
fn grafting_replaces_a_deep_dependency_without_rebuilding(nix: Nix) {
    let nonce = nonce();
    let app = path_of(nix, &build(nix, "app", &nonce));
    let before = nix
        .command(format!("{app}/bin/graft-app"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&before.stdout),
        "graft-app: libgreet 1.0; libmid sees libgreet 1.0\n",
        "{}: {}",
        nix.name(),
        describe(&before)
    );
    let old_closure = closure_of(nix, &app);
    let old_greet = old_closure
        .iter()
        .find(|p| p.ends_with("-libgreet-1.0"))
        .unwrap()
        .clone();
    let old_mid = old_closure
        .iter()
        .find(|p| p.ends_with("-libmid-1"))
        .unwrap()
        .clone();
    let old_mid_lib = old_closure
        .iter()
        .find(|p| p.ends_with("-libmid-1-lib"))
        .unwrap()
        .clone();

    let grafting = build(nix, "grafted", &nonce);
    let grafted = path_of(nix, &grafting);
    assert_ne!(grafted, app);
    assert_eq!(grafted.len(), app.len(), "a graft keeps the path's length");
    let after = nix
        .command(format!("{grafted}/bin/graft-app"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&after.stdout),
        "graft-app: libgreet 1.1; libmid sees libgreet 1.1\n",
        "{}: {}",
        nix.name(),
        describe(&after)
    );
    let closure = closure_of(nix, &grafted);
    assert!(
        closure.iter().any(|p| p.ends_with("-libgreet-1.1")),
        "{closure:?}"
    );
    assert!(
        !closure.contains(&old_greet),
        "{}: old libgreet in {closure:?}",
        nix.name()
    );
    assert!(
        !closure.contains(&old_mid),
        "{}: old libmid in {closure:?}",
        nix.name()
    );
    // The RUNPATHs name the fixed library and the grafted libmid only (the host's readelf
    // reads the file where the host sees it).
    let program = nix.host_path(std::path::Path::new(&format!("{grafted}/bin/graft-app")));
    let dynamic = std::process::Command::new("readelf")
        .arg("-d")
        .arg(&program)
        .output()
        .expect("readelf runs");
    let text = String::from_utf8_lossy(&dynamic.stdout);
    assert!(
        dynamic.status.success() && text.contains("-libgreet-1.1/lib"),
        "{}: {}",
        nix.name(),
        describe(&dynamic)
    );
    assert!(
        !text.contains(&old_greet) && !text.contains(&old_mid_lib),
        "{}: {text}",
        nix.name()
    );
    // Built: the references graph (read back by evaluation), the fixed library, and the
    // grafts of libmid's two outputs and of the program (which say so), not their own
    // derivations.
    let derivations = built(&grafting);
    let mut names: Vec<&str> = derivations
        .iter()
        .map(|drv| &drv[drv.find('-').map_or(0, |at| at + 1)..])
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "graft-app-references.drv",
            "graft-app.drv",
            "libgreet-1.1.drv",
            "libmid-1-lib.drv",
            "libmid-1.drv",
        ],
        "{}: {}",
        nix.name(),
        describe(&grafting)
    );
    let log = String::from_utf8_lossy(&grafting.stderr);
    assert_eq!(
        log.matches("kiln: grafted ").count(),
        3,
        "{}: {log}",
        nix.name()
    );
    assert!(
        log.contains("applied `"),
        "{}: libgreet 1.1 is the patched source",
        nix.name()
    );
    eprintln!("{}: grafted {grafted}: closure {closure:?}", nix.name());
}
on_both_nix!(grafting_replaces_a_deep_dependency_without_rebuilding);

/// A replacement of another length is refused at evaluation, saying by how much.
fn a_replacement_of_another_length_is_refused_with_the_difference(nix: Nix) {
    let output = build(nix, "mismatched", &nonce());
    assert!(!output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("-libgreet-1.0.1` is 2 characters longer than `")
            && stderr.contains("remove 2 characters"),
        "{}: {stderr}",
        nix.name()
    );
}
on_both_nix!(a_replacement_of_another_length_is_refused_with_the_difference);

/// A cutoff package keeps its references and its path: libmid is not grafted, so the grafted
/// program's closure keeps libmid and, through it, the old library (a cutoff is for paths whose
/// references do not matter).
fn a_cutoff_package_keeps_its_references(nix: Nix) {
    let nonce = nonce();
    let app = path_of(nix, &build(nix, "app", &nonce));
    let grafted = path_of(nix, &build(nix, "cutoff", &nonce));
    assert_ne!(
        grafted,
        app,
        "{}: the program itself is grafted",
        nix.name()
    );
    let old = closure_of(nix, &app);
    let old_mid = old.iter().find(|p| p.ends_with("-libmid-1")).unwrap();
    let closure = closure_of(nix, &grafted);
    assert!(closure.contains(old_mid), "{}: {closure:?}", nix.name());
    assert!(
        closure.iter().any(|p| p.ends_with("-libgreet-1.0")),
        "{closure:?}"
    );
    assert!(
        closure.iter().any(|p| p.ends_with("-libgreet-1.1")),
        "{closure:?}"
    );
}
on_both_nix!(a_cutoff_package_keeps_its_references);
