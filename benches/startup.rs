//! Benchmark: kiln's fixed cost for a trivial plan (write one file to the output), from process
//! start to exit, against the same work done by a trivial bash script.
//!
//! Run with `cargo bench --bench startup`. It prints the median and 90th percentile of many runs
//! for each variant and the ratio to bash. For scale: nixpkgs' stdenv spends about 190 ms of
//! bash on such a build (85 ms just sourcing `setup.sh`). Goal: kiln under 10 ms.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 300;

const PLAN: &str = r#"{"version":1,"name":"trivial","phases":[{"name":"install","steps":[
    {"write":{"path":"${outputs.out}/greeting.txt","content":"hello\n"}}]}]}"#;

fn measure(mut make: impl FnMut(usize) -> Command) -> Vec<Duration> {
    let mut times = Vec::with_capacity(RUNS);
    for run in 0..RUNS + 10 {
        let mut command = make(run);
        command.stdout(Stdio::null()).stderr(Stdio::null());
        let started = Instant::now();
        let status = command.status().expect("the command starts");
        let elapsed = started.elapsed();
        assert!(status.success(), "run {run} failed: {status}");
        if run >= 10 {
            times.push(elapsed); // the first runs warm caches
        }
    }
    times.sort();
    times
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn report(name: &str, times: &[Duration], baseline: Option<Duration>) -> Duration {
    let median = times[times.len() / 2];
    let p90 = times[times.len() * 9 / 10];
    let ratio = baseline
        .map(|base| format!("{:>6.2}x bash", median.as_secs_f64() / base.as_secs_f64()))
        .unwrap_or_else(|| "  (baseline)".to_owned());
    println!(
        "{name:<44} median {:>7.3} ms   p90 {:>7.3} ms   {ratio}",
        millis(median),
        millis(p90)
    );
    median
}

fn main() {
    let kiln = Path::new(env!("CARGO_BIN_EXE_kiln"));
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path();
    std::fs::write(root.join("plan.json"), PLAN).unwrap();
    // What Nix gives a builder: a build directory holding .attrs.json.
    let attrs = serde_json::json!({
        "name": "trivial",
        "kiln": serde_json::from_str::<serde_json::Value>(PLAN).unwrap(),
        "outputs": { "out": root.join("nix-out").display().to_string() },
    });
    std::fs::create_dir(root.join("top")).unwrap();
    std::fs::write(root.join("top/.attrs.json"), attrs.to_string()).unwrap();

    println!("trivial plan (write one file to the output), {RUNS} runs each");
    let bash = measure(|run| {
        let mut command = Command::new("bash");
        command.args([
            "-c",
            r#"mkdir -p "$1" && printf 'hello\n' > "$1/greeting.txt""#,
            "bash",
        ]);
        command.arg(root.join(format!("bash-{run}")));
        command
    });
    let base = report("bash script (mkdir + printf)", &bash, None);

    // The static binary Nix runs, when scripts/build-static.sh has built it.
    let static_bin = std::env::var_os("KILN_STATIC_BIN").map(std::path::PathBuf::from);
    let builder_bin = static_bin.as_deref().unwrap_or(kiln);
    let builder = measure(|_| {
        let _ = std::fs::remove_dir_all(root.join("nix-out"));
        let mut command = Command::new(builder_bin);
        command
            .env_clear()
            .env("NIX_BUILD_TOP", root.join("top"))
            .env("NIX_BUILD_CORES", "2")
            .env("NIX_LOG_FD", "2")
            .current_dir(root.join("top"));
        command
    });
    let label = if static_bin.is_some() {
        "kiln as a Nix builder (.attrs.json, static)"
    } else {
        "kiln as a Nix builder (.attrs.json)"
    };
    let builder_median = report(label, &builder, Some(base));

    let local = |sandbox: bool| {
        measure(move |run| {
            let mut command = Command::new(kiln);
            command.args(["build", "--no-cache", "--build-dir"]);
            command.arg(root.join(format!("build-{sandbox}-{run}")));
            command
                .arg("--out-dir")
                .arg(root.join(format!("out-{sandbox}-{run}")));
            if !sandbox {
                command.arg("--no-sandbox");
            }
            command.arg(root.join("plan.json"));
            command
        })
    };
    let unsandboxed = local(false);
    report(
        "kiln build plan.json --no-sandbox (local)",
        &unsandboxed,
        Some(base),
    );
    let sandboxed = local(true);
    report(
        "kiln build plan.json (local, one sandbox per phase)",
        &sandboxed,
        Some(base),
    );

    let goal = Duration::from_millis(10);
    println!(
        "goal: kiln as a builder under {} ms: {} ({:.3} ms); stdenv for scale: ~190 ms",
        millis(goal),
        if builder_median < goal {
            "met"
        } else {
            "NOT met"
        },
        millis(builder_median)
    );
}
