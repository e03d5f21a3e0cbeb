//! Scan a folder's files with the virus-scan gate, as `relgate run` would, and time the scan.
//!
//! `cargo run --release --example clamd_scan -- DIR ADDRESS [CONCURRENCY]` where ADDRESS is
//! `tcp://host:port` or `unix:PATH`. DIR plays the pipeline folder with artefacts `**`; the
//! files are staged into a temporary record first (not timed), then scanned (timed).
//! Over a `unix:` address the gate passes descriptors (FILDES), over `tcp://` it streams
//! (INSTREAM). Prints the scan time and this process's CPU time. Used by benches/clamd.sh.
#![expect(
    clippy::print_stdout,
    reason = "a measurement tool: its numbers are its output"
)]

use std::sync::Arc;
use std::time::Instant;

use relgate::clamd::Address;
use relgate::gates::virus_scan::{self, ScanOptions};
use relgate::gates::{CollectContext, JudgeContext};
use relgate::model::{ClamdAddr, GateKind, GateSpec, Pipeline, VirusScanSpec};
use relgate::record::Record;
use relgate::stage;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, addr, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: clamd_scan DIR tcp://HOST:PORT|unix:PATH [CONCURRENCY]");
    };
    let concurrency: usize = rest.first().map(|c| c.parse()).transpose()?.unwrap_or(4);
    let clamd = match Address::parse(addr) {
        Some(Address::Tcp(hp)) => ClamdAddr::Tcp(hp),
        Some(Address::Unix(p)) => ClamdAddr::Unix(p),
        None => anyhow::bail!("bad address {addr:?}"),
    };
    let spec = VirusScanSpec {
        clamd,
        max_signature_age_secs: None,
        max_size: 100 * 1024 * 1024,
        concurrency,
    };
    let gate = GateSpec {
        id: "virus-scan".into(),
        needs: vec![],
        timeout_secs: 3600,
        when: None,
        kind: GateKind::VirusScan(spec.clone()),
    };
    let root = std::fs::canonicalize(dir)?;
    let record_dir = tempfile::tempdir()?;
    let pipeline = Pipeline {
        file: root.join("pipeline.yaml"),
        root: root.clone(),
        project: "bench".into(),
        state_dir: record_dir.path().to_path_buf(),
        artefacts: vec!["**".into()],
        signers: None,
        roles: Default::default(),
        changes: None,
        gates: vec![gate.clone()],
        publish: None,
        share: None,
    };
    let files = stage::resolve(&root, &pipeline.artefacts)
        .map_err(|p| anyhow::anyhow!("cannot resolve artefacts: {p:?}"))?;
    let record = Record::new(record_dir.path().join("record"));
    let staged = stage::stage(&root, &files, &record.dir.join("staged/run"), 2)?;
    let total: u64 = staged.artefacts.iter().map(|a| a.size).sum();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let cx = CollectContext {
        pipeline: Arc::new(pipeline),
        record,
        staged: Arc::new(staged),
        version: "0.0.0".into(),
        operator: None,
        dry_run: true,
        started_at: 0,
        policy: String::new(),
        subject_since: 0,
        prior: Arc::new(Vec::new()),
        cancel: rx,
        rehearsal: false,
    };
    let t = Instant::now();
    let cpu0 = cpu_secs();
    let ev = virus_scan::collect_with(&spec, &cx, &ScanOptions::for_gate(&gate, &spec)).await?;
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    let jcx = JudgeContext {
        project: "bench",
        version: "0.0.0",
        subject: &cx.staged.subject,
        operator: None,
        started_at: 0,
        dry_run: true,
        signers: None,
        pipeline: &cx.pipeline,
        policy: &cx.policy,
        subject_since: 0,
        blobs: &cx.record,
    };
    let v = virus_scan::judge(&spec, &ev, &jcx);
    println!(
        "relgate gate: {} files, {:.0} MiB in {secs:.2} s ({:.0} MiB/s, relgate cpu {cpu:.2} s), {}, verdict {:?}",
        ev.files.len(),
        total as f64 / 1048576.0,
        total as f64 / 1048576.0 / secs,
        ev.files
            .first()
            .map(|f| format!("{:?}", f.method).to_lowercase())
            .unwrap_or_default(),
        v.outcome
    );
    for r in &v.reasons {
        println!("  {}: {}", r.code, r.message);
    }
    Ok(())
}

/// This process's user + system CPU seconds so far (Linux: /proc/self/stat, in clock ticks of
/// 1/100 s), to show what hashing costs next to clamd's work.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    // After the command name: state is field 3, utime 14 and stime 15 (1-based).
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / 100.0
}
