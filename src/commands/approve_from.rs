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

/// One `approve --from`: the command's arguments, and the share and release it is for.
struct FromRun<'a> {
    args: &'a FromArgs,
    share: &'a Share,
    trust: &'a TrustRoot,
    project: &'a str,
    version: &'a str,
}

/// Run `approve --from` ([`FromRun::steps`]); its exit code.
async fn run(
    args: &FromArgs,
    share: &Share,
    trust: &TrustRoot,
    project: &str,
    version: &str,
) -> i32 {
    let from = FromRun {
        args,
        share,
        trust,
        project,
        version,
    };
    from.steps().await.unwrap_or_else(|code| code)
}

impl FromRun<'_> {
    /// The steps of `approve --from`, in this order: the open request fetched and checked, and
    /// its recorded policy derived again from its sources; what is signed shown; the signers
    /// it carries put where the signing code reads them; the statement signed; then judged
    /// with the sign-offs on the share as the next run will, so that one that would not count
    /// is refused before anything is uploaded; confirmed; uploaded. A step that ends the
    /// command has said why, and its exit code is the error.
    async fn steps(&self) -> Result<i32, i32> {
        // 1. The open request, and the policy it records.
        let request = self.open_request().await?;
        let r = &request.report;
        let pipeline = recorded_pipeline(r)?;
        // 2. What is signed.
        show(&request, self.trust);
        // 3. The request's signers, in a private folder that also takes the statement.
        let scratch = private_folder()?;
        let pipeline = with_signers(pipeline, r, scratch.path())?;
        // 4. Sign it.
        let now = share::now();
        let pair = self.sign(&pipeline, r, scratch.path(), now)?;
        // 5. Judge it as the next run will; one that would not count is refused.
        self.would_count(&pipeline, r, &pair, now).await?;
        // 6. Ask, unless `--yes`.
        let what = if self.args.reject {
            "rejection"
        } else {
            "approval"
        };
        self.ask(r, what)?;
        // 7. Upload it.
        Ok(self.upload(&pair, what).await)
    }

    /// The open request for the release, checked (its name is its digest, the release signer
    /// signed it); the share's notes are said on the way.
    async fn open_request(&self) -> Result<Checked, i32> {
        let (notes, request) =
            share::request::open(self.share, self.project, self.version, self.trust).await;
        for n in &notes {
            errln!("relgate: share: {n}");
        }
        request.map_err(|e| super::approve::refuse(&[(e.code().to_string(), e.to_string())], false))
    }

    /// Sign the statement into `out_dir`. A signer the judge would never count is refused;
    /// any other problem is a mistake in the request.
    fn sign(
        &self,
        pipeline: &crate::model::Pipeline,
        r: &RunReport,
        out_dir: &std::path::Path,
        now: i64,
    ) -> Result<Pair, i32> {
        let args = self.args;
        let req = ApproveRequest {
            pipeline,
            version: self.version,
            gate: &args.gate,
            key: &args.key,
            principal: &args.principal,
            comment: args.comment.as_deref(),
            reject: args.reject,
            subject: &r.subject,
            policy: &r.policy,
            out_dir,
            now,
        };
        approval::sign(&req).map_err(|e| match e.code() {
            Some(code) => {
                super::approve::refuse(&[(code.to_string(), super::approve::chain(&e))], false)
            }
            None => {
                errln!("error: {}", super::approve::chain(&e));
                exit::CONFIG
            }
        })
    }

    /// Judge the signed pair with the sign-offs on the share ([`judge`]); one that would not
    /// count is refused with its reasons.
    async fn would_count(
        &self,
        pipeline: &crate::model::Pipeline,
        r: &RunReport,
        pair: &Pair,
        now: i64,
    ) -> Result<(), i32> {
        let refusals = match judge(self.share, pipeline, r, &self.args.gate, pair, now).await {
            Ok(r) => r,
            Err(e) => {
                errln!("error: {e}");
                return Err(exit::REFUSED);
            }
        };
        if !refusals.is_empty() {
            return Err(super::approve::refuse(&refusals, false));
        }
        Ok(())
    }

    /// Say what is signed, and (without `--yes`) ask the approver to confirm it.
    fn ask(&self, r: &RunReport, what: &str) -> Result<(), i32> {
        let args = self.args;
        let p = printable;
        outln!(
            "you sign: {what} of gate {} for {} {}, subject {}, as {}",
            printable(&args.gate),
            printable(self.project),
            printable(self.version),
            p(&r.subject),
            printable(&args.principal)
        );
        if args.yes {
            return Ok(());
        }
        confirm(what)
    }

    /// Put the pair onto the share (create-only) and say where.
    async fn upload(&self, pair: &Pair, what: &str) -> i32 {
        match share::statements::upload(self.share, self.project, self.version, pair).await {
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
}

/// The pipeline the request's recorded policy follows from: derived again from its sources
/// (and signers), it must be the recorded pipeline and digest to the recorded policy.
fn recorded_pipeline(r: &RunReport) -> Result<crate::model::Pipeline, i32> {
    let policy = crate::digest::policy_digest(&r.sources);
    match config::derive_recorded(&r.pipeline, &r.sources, r.signers.as_deref()) {
        Ok(l) if l.pipeline == r.pipeline && policy == r.policy => Ok(l.pipeline),
        _ => {
            let why = "its recorded policy does not follow from its pipeline sources".to_string();
            Err(super::approve::refuse(
                &[("request-invalid".into(), why)],
                false,
            ))
        }
    }
}

/// A private folder for the request's signers and the statement.
fn private_folder() -> Result<tempfile::TempDir, i32> {
    tempfile::tempdir().map_err(|e| {
        errln!("error: cannot make a private folder: {e}");
        exit::REFUSED
    })
}

/// The statement is judged under the signers the request carries, through the same code a
/// local approve uses, which reads them from a file: a private copy in `dir`, named by the
/// pipeline.
fn with_signers(
    mut pipeline: crate::model::Pipeline,
    r: &RunReport,
    dir: &std::path::Path,
) -> Result<crate::model::Pipeline, i32> {
    if let Some(text) = &r.signers {
        let path = dir.join("allowed_signers");
        if let Err(e) = std::fs::write(&path, text) {
            errln!("error: cannot write {}: {e}", path.display());
            return Err(exit::REFUSED);
        }
        pipeline.signers = Some(path);
    }
    Ok(pipeline)
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
