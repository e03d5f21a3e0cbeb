//! `relgate approve --from SHARE-URL --release PROJECT/VERSION …`: sign off from any machine
//! with the relgate binary, one's own key, the share's URL and the release key's fingerprint
//! (the trust root, given out of band: docs/team.md) — no checkout, no release record.
//!
//! The open request is fetched and checked (its name is its digest, the release signer signed
//! it), what is signed is shown — subject, artefacts with digests, every gate's verdict and
//! reasons, open findings with owners — and the statement is signed and judged, with the
//! sign-offs already on the share, exactly as the next run will judge it (the same preview
//! `approve` uses, under the policy, signers, operator and commit authors the request carries).
//! One that could not count is refused with its reason and nothing is uploaded. Otherwise the
//! approver confirms (or passed `--yes`) and the pair goes onto the share, create-only.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use crate::approval::{self, ApproveRequest, Folder, Pair};
use crate::config;
use crate::exit;
use crate::gates::signoff::AuthorsEvidence;
use crate::gates::signoff::preview::{self, PreviewRequest};
use crate::model::GateKind;
use crate::output::{err, errln, outln};
use crate::report::printable;
use crate::share::report::{Checked, RunReport, Voucher};
use crate::share::{self, Share};
use crate::trust::{TrustArgs, TrustRoot};

pub struct FromArgs {
    /// A pipeline to take the trust root from when no `--trust-key`/`--signers` is given.
    pub pipeline: PathBuf,
    pub from: String,
    /// `PROJECT/VERSION`.
    pub release: String,
    pub gate: String,
    pub key: PathBuf,
    pub principal: String,
    pub comment: Option<String>,
    pub reject: bool,
    /// Sign without asking.
    pub yes: bool,
    pub trust: TrustArgs,
    pub access: share::Access,
}

/// Why a sign-off would not count: `(code, reason)` pairs.
type Reasons = Vec<(String, String)>;

pub fn approve_from(args: FromArgs) -> i32 {
    let Some((project, version)) = args
        .release
        .split_once('/')
        .filter(|(p, v)| share::layout::check_name(p).is_ok() && crate::engine::valid_version(v))
    else {
        errln!(
            "error: --release {:?}: expected PROJECT/VERSION, e.g. acme-engine/1.4.2",
            args.release
        );
        return exit::CONFIG;
    };
    let (trust, share, rt) =
        match super::open_share(&args.from, &args.trust, &args.pipeline, &args.access) {
            Ok(opened) => opened,
            Err(code) => return code,
        };
    rt.block_on(run(&args, &share, &trust, project, version))
}

#[expect(
    clippy::too_many_lines,
    reason = "a sequence of steps not yet split into functions (issue 15)"
)]
async fn run(
    args: &FromArgs,
    share: &Share,
    trust: &TrustRoot,
    project: &str,
    version: &str,
) -> i32 {
    let (notes, request) = share::request::open(share, project, version, trust).await;
    for n in &notes {
        errln!("relgate: share: {n}");
    }
    let request = match request {
        Ok(x) => x,
        Err(e) => {
            return super::approve::refuse(&[(e.code().to_string(), e.to_string())], false);
        }
    };
    let r = &request.report;
    let policy = crate::digest::policy_digest(&r.sources);
    let loaded = match config::derive_recorded(&r.pipeline, &r.sources, r.signers.as_deref()) {
        Ok(l) if l.pipeline == r.pipeline && policy == r.policy => l,
        _ => {
            let why = "its recorded policy does not follow from its pipeline sources".to_string();
            return super::approve::refuse(&[("request-invalid".into(), why)], false);
        }
    };
    show(&request, trust);
    // The statement is judged under the signers the request carries, through the same code a
    // local approve uses, which reads them from a file: a private copy.
    let scratch = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            errln!("error: cannot make a private folder: {e}");
            return exit::REFUSED;
        }
    };
    let mut pipeline = loaded.pipeline;
    if let Some(text) = &r.signers {
        let path = scratch.path().join("allowed_signers");
        if let Err(e) = std::fs::write(&path, text) {
            errln!("error: cannot write {}: {e}", path.display());
            return exit::REFUSED;
        }
        pipeline.signers = Some(path);
    }
    let now = share::now();
    let req = ApproveRequest {
        pipeline: &pipeline,
        version,
        gate: &args.gate,
        key: &args.key,
        principal: &args.principal,
        comment: args.comment.as_deref(),
        reject: args.reject,
        subject: &r.subject,
        policy: &r.policy,
        out_dir: scratch.path(),
        now,
    };
    let pair = match approval::sign(&req) {
        Ok(p) => p,
        Err(e) => {
            return match e.code() {
                Some(code) => {
                    super::approve::refuse(&[(code.to_string(), super::approve::chain(&e))], false)
                }
                None => {
                    errln!("error: {}", super::approve::chain(&e));
                    exit::CONFIG
                }
            };
        }
    };
    let refusals = match judge(share, &pipeline, r, &args.gate, &pair, now).await {
        Ok(r) => r,
        Err(e) => {
            errln!("error: {e}");
            return exit::REFUSED;
        }
    };
    if !refusals.is_empty() {
        return super::approve::refuse(&refusals, false);
    }
    let what = if args.reject { "rejection" } else { "approval" };
    let p = printable;
    outln!(
        "you sign: {what} of gate {} for {} {}, subject {}, as {}",
        printable(&args.gate),
        printable(project),
        printable(version),
        p(&r.subject),
        printable(&args.principal)
    );
    if !args.yes
        && let Err(code) = confirm(what)
    {
        return code;
    }
    match share::statements::upload(share, project, version, &pair).await {
        Ok(at) => {
            outln!("{what} uploaded to {at}");
            exit::SUCCESS
        }
        Err(e) => {
            errln!("error: the {what} was not uploaded: {e}");
            exit::REFUSED
        }
    }
}

/// Ask on the terminal; without one (stdin closed, a pipe, /dev/null) nobody can be asked,
/// and nothing is signed (a usage error: `--yes` says to go ahead).
fn confirm(what: &str) -> Result<(), i32> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        errln!(
            "relgate: not signed: stdin is not a terminal, so nobody can be asked; pass --yes to \
             sign what is shown above"
        );
        return Err(exit::CONFIG);
    }
    err!("Sign and upload this {what}? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let read = stdin.lock().read_line(&mut answer);
    if read.is_ok() && matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        return Ok(());
    }
    errln!("relgate: not signed");
    Err(exit::REFUSED)
}

/// Judge the signed `pair` with the sign-offs on the share, as the next run will: the policy,
/// signers, operator, commit authors and subject the request carries.
async fn judge(
    share: &Share,
    pipeline: &crate::model::Pipeline,
    r: &RunReport,
    gate_id: &str,
    pair: &Pair,
    now: i64,
) -> Result<Reasons, String> {
    let Some(gate) = pipeline.gate(gate_id) else {
        return Ok(Vec::new());
    };
    let GateKind::Signoff(spec) = &gate.kind else {
        return Ok(Vec::new());
    };
    let found = share::statements::read(share, &r.project, &r.version)
        .await
        .map_err(|e| format!("cannot read the sign-offs on the share: {e}"))?;
    let folder = Folder {
        pairs: found.pairs,
        unpaired: Vec::new(),
        refused: Vec::new(),
    };
    // Without the authors in the request, nothing on this machine may stand in for them.
    let unknown;
    let raw;
    let known = match &r.authors {
        Some(a) => {
            raw = a
                .log
                .as_deref()
                .and_then(|b| <base64ct::Base64 as base64ct::Encoding>::decode_vec(b).ok())
                .unwrap_or_default();
            (&a.evidence, raw.as_slice())
        }
        None => {
            unknown = AuthorsEvidence {
                range: pipeline
                    .changes
                    .as_ref()
                    .map(|c| c.range.clone())
                    .unwrap_or_default(),
                history: None,
                log: None,
                error: Some("the request does not carry the commit authors".into()),
                emails: Vec::new(),
            };
            (&unknown, &[][..])
        }
    };
    let req = PreviewRequest {
        pipeline,
        gate,
        spec,
        version: &r.version,
        subject: &r.subject,
        policy: &r.policy,
        operator: r.operator.as_deref(),
        signers: r.signers.as_deref(),
        subject_since: r.subject_since,
        now,
        prior: &[],
        record: None,
        folder: &folder,
        extra: Some(pair),
        known_authors: Some(known),
    };
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    let got = preview::preview(&req, cancel).await;
    if let Some(why) = got.authors_unknown {
        errln!(
            "warning: cannot tell whether {} wrote a change in changes.range ({why}); the next \
             run will tell",
            pair_signer(pair)
        );
    }
    let mut out: Reasons = Vec::new();
    for i in got.report.ignored.iter().filter(|i| i.name == pair.name) {
        if !out.iter().any(|(code, _)| *code == i.code) {
            out.push((i.code.to_string(), i.reason.clone()));
        }
    }
    Ok(out)
}

fn pair_signer(pair: &Pair) -> String {
    approval::parse_statement(&pair.statement)
        .map(|s| printable(&s.signer))
        .unwrap_or_default()
}

/// What the approver is asked to sign, from the checked request.
fn show(c: &Checked, trust: &TrustRoot) {
    let r = &c.report;
    let p = printable;
    outln!(
        "request: {} {}, run {} ({}), awaiting sign-off",
        p(&r.project),
        p(&r.version),
        r.run,
        p(&r.time)
    );
    if let Voucher::Release(who) = &c.voucher {
        outln!("  signed by {} (trust root: {})", p(who), trust.source);
    }
    outln!(
        "  operator: {}",
        r.operator.as_deref().map_or("none".into(), p)
    );
    outln!("  subject: {}", p(&r.subject));
    outln!("  artefacts:");
    for a in &r.artefacts {
        outln!(
            "    {}  {} bytes  sha256:{}",
            p(&a.release_path),
            a.size,
            a.sha256
        );
    }
    outln!("  gates:");
    for g in &r.gates {
        outln!("    {:<20} {}", p(&g.id), p(&g.state));
        for reason in &g.reasons {
            outln!("      {}: {}", p(&reason.code), p(&reason.message));
        }
        if !g.waiting_on.is_empty() {
            outln!("      waiting on {}", p(&g.waiting_on.join(", ")));
        }
    }
    if r.findings.is_empty() {
        outln!("  findings not fixed: none");
    } else {
        outln!("  findings not fixed:");
        for f in &r.findings {
            let o = |v: &Option<String>| v.as_deref().map_or("-".to_string(), p);
            outln!(
                "    {}  {}  owner {}  due {}  {}  ({})",
                p(&f.finding),
                o(&f.severity),
                o(&f.owner),
                o(&f.due),
                o(&f.status),
                p(&f.gate)
            );
        }
    }
}
