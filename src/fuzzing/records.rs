//! Targets for the release log reader and the checkpoint.

use super::{replay, split2, text};
use crate::log::attest;
use crate::log::checkpoint::{self, Checkpoint, Stored};
use crate::log::{Head, Record, encode_line, read_log};

/// The release log reader. A log that reads is exactly its entries written again (each line
/// canonical, `seq` counting from 0, `prev` the head before it), its final head the last
/// entry's. A log that does not read names a line that exists. And each input line that holds
/// a record (`type` and `body`) is written as a chained log and reads back the same records.
pub fn log_reader(data: &[u8]) {
    let lines = data.split(|&b| b == b'\n').count();
    match read_log(data) {
        Ok((entries, head)) => {
            let mut again = Vec::new();
            let mut prev = Head::GENESIS;
            for (i, e) in entries.iter().enumerate() {
                assert_eq!(e.seq, i as u64);
                assert_eq!(e.line, i + 1);
                let line = encode_line(e.seq, &prev.hex(), &e.ts, &e.record)
                    .expect("a record read encodes");
                prev = prev.next(line.as_bytes());
                assert_eq!(prev, e.head, "the head after line {}", e.line);
                again.extend_from_slice(line.as_bytes());
                again.push(b'\n');
            }
            assert_eq!(again, data, "a log that reads is its entries written again");
            assert_eq!(head, prev);
        }
        Err(p) => {
            assert!(p.line >= 1 && p.line <= lines, "{p:?} of {lines} lines");
            if p.torn_tail {
                assert!(p.line + 1 >= lines, "a torn tail is at the end: {p:?}");
            }
        }
    }
    // Written by relgate, then read.
    let records: Vec<(String, Record)> = text(data)
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            let obj = v.as_object()?;
            let mut tagged = serde_json::Map::new();
            tagged.insert("type".into(), obj.get("type")?.clone());
            tagged.insert("body".into(), obj.get("body").cloned().unwrap_or_default());
            let r: Record = serde_json::from_value(serde_json::Value::Object(tagged)).ok()?;
            let ts = obj.get("ts").and_then(|t| t.as_str()).unwrap_or("");
            Some((ts.to_string(), r))
        })
        .collect();
    if records.is_empty() {
        return;
    }
    let mut log = Vec::new();
    let mut prev = Head::GENESIS;
    for (seq, (ts, r)) in records.iter().enumerate() {
        let line = encode_line(seq as u64, &prev.hex(), ts, r).expect("a record encodes");
        prev = prev.next(line.as_bytes());
        log.extend_from_slice(line.as_bytes());
        log.push(b'\n');
    }
    match read_log(&log) {
        Ok((entries, head)) => {
            assert_eq!(head, prev);
            assert_eq!(entries.len(), records.len());
            for (e, (ts, r)) in entries.iter().zip(&records) {
                assert_eq!(&e.ts, ts);
                assert_eq!(
                    serde_json::to_value(&e.record).ok(),
                    serde_json::to_value(r).ok(),
                    "record read back differs"
                );
            }
        }
        Err(p) => panic!("a log relgate wrote does not read: {p}"),
    }
}

/// The checkpoint. Text that parses is canonical (it is exactly what `text` writes) and has a
/// history name of history form. A checkpoint made from the input's fields reads back equal.
/// Checked against the seed record's log under its trust root, with the input after a NUL as
/// its signature, a checkpoint is accepted only when it is one the release key signed.
pub fn checkpoint(data: &[u8]) {
    let (body, sig) = split2(data);
    let t = text(body);
    if let Ok(cp) = Checkpoint::parse(&t) {
        assert_eq!(cp.text(), t, "a parsed checkpoint is canonical");
        assert_eq!(Checkpoint::parse(&cp.text()), Ok(cp.clone()));
        // Sizes are log line counts; twelve digits are a trillion lines.
        if cp.size < 1_000_000_000_000 {
            assert!(checkpoint::is_history_name(&checkpoint::history_name(&cp)));
        }
    }
    let mut fields = t.splitn(3, '\n');
    let origin = fields.next().unwrap_or_default();
    let time = fields.next().unwrap_or_default();
    let size = body
        .iter()
        .fold(0u64, |a, &b| a.rotate_left(5) ^ u64::from(b));
    let made = Checkpoint {
        origin: origin.to_string(),
        size,
        head: Head::GENESIS.next(body).hex(),
        time: time.to_string(),
    };
    assert_eq!(
        Checkpoint::parse(&made.text()),
        Ok(made.clone()),
        "{made:?}"
    );
    let base = replay::base();
    let stored = Stored {
        file: "checkpoint".into(),
        text: t.into_owned(),
        sig: (!sig.is_empty()).then(|| text(sig).into_owned()),
    };
    if attest::check_checkpoint(&stored, &base.entries, &base.trust).is_ok() {
        assert!(
            base.signed.contains(&stored.text),
            "a checkpoint the release key never signed was accepted: {:?}",
            stored.text
        );
    }
}
