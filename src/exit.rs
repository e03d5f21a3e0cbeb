//! Exit codes, the same for every command (SPEC §1).

/// `run` published (or a dry run found nothing red); `check` valid; `replay`/`verify` verified.
pub const SUCCESS: i32 = 0;
/// At least one gate is red, `replay`/`verify` found a problem, or `approve` refused a sign-off
/// that would not count (nothing was written).
pub const REFUSED: i32 = 1;
/// Usage or configuration error: nothing was run.
pub const CONFIG: i32 = 2;
/// `run` without `--dry-run`: nothing is red, but a sign-off is still awaited.
pub const PENDING: i32 = 3;
/// `run` could not take the release record's lock: another run of the same version holds it.
/// Nothing was run and nothing changed; running again once the other run has finished is safe.
/// Also when every gate is green but another machine holds the release's publish lease on the
/// team's share (docs/team.md): nothing was published. Distinct from [`CONFIG`] so that CI can
/// wait and retry instead of failing the pipeline.
pub const BUSY: i32 = 4;
