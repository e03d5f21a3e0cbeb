//! The time the log and the checkpoint stamp on what they write; a module of its own so that
//! the writer and the checkpoint, which the writer reads, do not import each other.

/// RFC 3339 UTC timestamp of now.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
