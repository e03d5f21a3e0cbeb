//! `relgate history SHARE-URL [PROJECT]`: the releases and dry runs a share holds, oldest
//! first — date, release, run, decision, first red gate, subject, and who vouches for it. The
//! trust root comes from outside the share as for `verify`; a release run whose report the
//! release signer did not sign is left out and said, and a dry run (signed by a throwaway key)
//! is listed as unauthenticated.

use std::path::PathBuf;

use super::Format;
use crate::exit;
use crate::output::{errln, outln};
use crate::report::printable;
use crate::share;
use crate::trust::TrustArgs;

pub struct HistoryArgs {
    pub pipeline: PathBuf,
    pub share: String,
    pub project: Option<String>,
    pub trust: TrustArgs,
    pub access: share::Access,
    pub format: Format,
}

pub fn history(args: HistoryArgs) -> i32 {
    if let Some(p) = &args.project
        && share::layout::check_name(p).is_err()
    {
        errln!("error: {p:?} is not a project name");
        return exit::CONFIG;
    }
    let (trust, s, rt) =
        match super::open_share(&args.share, &args.trust, &args.pipeline, &args.access) {
            Ok(opened) => opened,
            Err(code) => return code,
        };
    let (lines, notes) =
        match rt.block_on(share::history::read(&s, args.project.as_deref(), &trust)) {
            Ok(x) => x,
            Err(e) => {
                errln!("relgate: cannot read the share: {e}");
                return exit::REFUSED;
            }
        };
    for n in &notes {
        errln!("relgate: share: {n}");
    }
    match args.format {
        Format::Json => {
            let doc = serde_json::json!({ "share": share::Store::describe(&s), "runs": lines });
            outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Format::Human => {
            if lines.is_empty() {
                outln!("no runs on {}", share::Store::describe(&s));
            }
            for l in &lines {
                let what = if l.dry_run { "dry run" } else { "run" };
                let vouched = if l.authenticated {
                    format!("signed by {}", printable(&l.signed_by))
                } else {
                    "UNAUTHENTICATED (a dry run's throwaway key)".to_string()
                };
                outln!(
                    "{}  {} {}  {what} {}  {}  first red: {}",
                    l.date,
                    printable(&l.project),
                    printable(&l.version),
                    l.run,
                    printable(&l.decision),
                    l.first_red.as_deref().map_or("-".to_string(), printable)
                );
                // A dry run's report is anyone's to write: every field is shown escaped.
                outln!("    subject {}  {vouched}", printable(&l.subject));
                if let Some(rec) = &l.record {
                    outln!("    record {}", printable(rec));
                }
            }
        }
    }
    exit::SUCCESS
}
