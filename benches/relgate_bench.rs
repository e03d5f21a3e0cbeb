//! Measurement helper for benches/bench.sh: times relgate's library calls (staging, reading
//! the log) and builds large but valid release logs. Not a test: it prints numbers.
//!
//! ```text
//! relgate_bench stage-one SRC DST            copy_and_hash one file; prints seconds and MiB/s
//! relgate_bench stage-dir ROOT DST WORKERS   resolve ROOT/* and stage it; prints seconds
//! relgate_bench extend-log RECORD KEY N      append N filler lines to RECORD's log and re-sign
//!                                            its checkpoints with KEY (so replay accepts it)
//! relgate_bench read-log FILE [ROUNDS]       time log::read_log; prints lines and lines/s
//! relgate_bench render-report RECORD [ROUNDS] time building and rendering the release report
//!                                            from RECORD's log (every line taken as trusted:
//!                                            the checkpoint checks are replay's, timed apart)
//! ```
#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a measurement tool: its numbers are its output"
)]

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use relgate::log::{self, Record};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; ignore it so the binary also runs through cargo.
    let args: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--bench")
        .collect();
    let result = match args.as_slice() {
        ["stage-one", src, dst] => stage_one(Path::new(src), Path::new(dst)),
        ["stage-dir", root, dst, workers] => stage_dir(Path::new(root), Path::new(dst), workers),
        ["extend-log", record, key, n] => extend_log(Path::new(record), Path::new(key), n),
        ["read-log", file] => read_log(Path::new(file), "3"),
        ["read-log", file, rounds] => read_log(Path::new(file), rounds),
        ["render-report", record] => render_report(Path::new(record), "3"),
        ["render-report", record, rounds] => render_report(Path::new(record), rounds),
        _ => Err(
            "usage: relgate_bench stage-one SRC DST | stage-dir ROOT DST WORKERS | \
             extend-log RECORD KEY N | read-log FILE [ROUNDS] | render-report RECORD [ROUNDS]"
                .to_string(),
        ),
    };
    if let Err(e) = result {
        eprintln!("relgate_bench: {e}");
        std::process::exit(2);
    }
}

fn stage_one(src: &Path, dst: &Path) -> Result<(), String> {
    let t = Instant::now();
    let (digest, size) = relgate::stage::copy_and_hash(src, dst).map_err(|e| e.to_string())?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "seconds={secs:.3} mib_per_s={:.0} size={size} sha256={digest}",
        size as f64 / secs / 1048576.0
    );
    Ok(())
}

fn stage_dir(root: &Path, dst: &Path, workers: &str) -> Result<(), String> {
    let workers: usize = workers.parse().map_err(|_| "WORKERS is not a number")?;
    let files = relgate::stage::resolve(root, &["*".to_string()]).map_err(|p| format!("{p:?}"))?;
    let t = Instant::now();
    let staged = relgate::stage::stage(root, &files, dst, workers).map_err(|e| e.to_string())?;
    let secs = t.elapsed().as_secs_f64();
    let size: u64 = staged.artefacts.iter().map(|a| a.size).sum();
    println!(
        "seconds={secs:.3} mib_per_s={:.0} files={} size={size}",
        size as f64 / secs / 1048576.0,
        staged.artefacts.len()
    );
    Ok(())
}

/// Append `n` filler lines after the last line, chained and canonical exactly as `LogWriter`
/// writes them, then seal the log with a new checkpoint signed by `key` (the old history no
/// longer matches and is dropped). The filler is `recovered-torn-tail`, the one record replay
/// accepts in any number outside a run: the point is a big valid log whose reading, chaining
/// and canonical re-encoding are measured, not a plausible release. Written in one go with one
/// fsync: the point is the reader's speed, not the writer's.
fn extend_log(record: &Path, key: &Path, n: &str) -> Result<(), String> {
    let n: u64 = n.parse().map_err(|_| "N is not a number")?;
    let log_path = record.join(relgate::record::LOG_FILE);
    let bytes = std::fs::read(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let (entries, mut head) = log::read_log(&bytes).map_err(|e| e.to_string())?;
    let started = entries
        .iter()
        .rev()
        .find_map(|e| match &e.record {
            Record::RunStarted(r) => Some(r.clone()),
            _ => None,
        })
        .ok_or("the log holds no run")?;
    let mut out = Vec::with_capacity(n as usize * 200);
    let mut seq = entries.len() as u64;
    let ts = log::clock::now_rfc3339();
    for i in 0..n {
        let record = Record::RecoveredTornTail(log::RecoveredTornTail {
            bytes: i,
            sha256: relgate::digest::sha256_hex(&i.to_le_bytes()),
            saved_as: format!("log.torn-{i:012}"),
        });
        let line = log::encode_line(seq, &head.hex(), &ts, &record).map_err(|e| e.to_string())?;
        head = head.next(line.as_bytes());
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
        seq += 1;
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&log_path)
        .map_err(|e| e.to_string())?;
    f.write_all(&out).map_err(|e| e.to_string())?;
    f.sync_all().map_err(|e| e.to_string())?;
    let key = relgate::sshsig::load_private_key(key).map_err(|e| e.to_string())?;
    let origin = format!("relgate/{}/{}", started.project, started.version);
    let history = record.join(log::checkpoint::HISTORY_DIR);
    if history.exists() {
        std::fs::remove_dir_all(&history).map_err(|e| e.to_string())?;
    }
    let cp = log::checkpoint::Checkpoint::new(&origin, seq, head);
    log::checkpoint::write(record, &cp, Some(&key)).map_err(|e| e.to_string())?;
    println!("lines={seq} bytes={}", bytes.len() + out.len());
    Ok(())
}

fn read_log(file: &Path, rounds: &str) -> Result<(), String> {
    let rounds: u32 = rounds.parse().map_err(|_| "ROUNDS is not a number")?;
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    // Best of a few rounds: the number is the reader's speed, not the machine's noise.
    let mut best = f64::MAX;
    let mut lines = 0;
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        let (entries, _) = log::read_log(&bytes).map_err(|e| e.to_string())?;
        best = best.min(t.elapsed().as_secs_f64());
        lines = entries.len();
    }
    println!(
        "lines={lines} seconds={best:.3} lines_per_s={:.0}",
        lines as f64 / best
    );
    Ok(())
}

/// The report's own cost, best of a few rounds: reading the log, building the report and
/// rendering it as HTML; and building it again and rendering it as Markdown.
fn render_report(record: &Path, rounds: &str) -> Result<(), String> {
    use relgate::report::release::{self, Markdown, Reporter};
    let rounds: u32 = rounds.parse().map_err(|_| "ROUNDS is not a number")?;
    let rec = relgate::record::Record::new(record);
    let (mut html_best, mut md_best) = (f64::MAX, f64::MAX);
    let (mut html_bytes, mut md_bytes, mut lines) = (0, 0, 0);
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        let bytes = std::fs::read(rec.log_path()).map_err(|e| e.to_string())?;
        let (entries, _) = log::read_log(&bytes).map_err(|e| e.to_string())?;
        let trusted = vec![true; entries.len()];
        let html = release::embedded(record, &entries, &trusted);
        html_best = html_best.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let (relied, notes) = release::relied_on(&entries, Some(&trusted));
        let report = release::build(release::Inputs {
            entries: &relied,
            record: &rec,
            unauthenticated: None,
            notes,
            evidence_links: false,
            verification: release::Verification::default(),
        });
        let md = Markdown.render(&report);
        md_best = md_best.min(t.elapsed().as_secs_f64());
        (html_bytes, md_bytes, lines) = (html.len(), md.len(), entries.len());
    }
    println!(
        "lines={lines} html_seconds={html_best:.3} html_bytes={html_bytes} \
         markdown_seconds={md_best:.3} markdown_bytes={md_bytes}"
    );
    Ok(())
}
