//! Durations (`30m`, `14d`) and sizes (`100M`) as written in the pipeline, and back to text.

/// Parse `<digits><unit>` with unit s, m, h or d into seconds. Zero and overflow are refused.
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let unit = s.chars().last()?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    let digits = &s[..s.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let secs = n.checked_mul(mult)?;
    (secs > 0).then_some(secs)
}

/// Seconds back to the largest whole unit, for `plan`.
pub fn format_duration(secs: u64) -> String {
    for (unit, mult) in [('d', 86_400), ('h', 3600), ('m', 60)] {
        if secs >= mult && secs.is_multiple_of(mult) {
            return format!("{}{unit}", secs / mult);
        }
    }
    format!("{secs}s")
}

/// Parse `<digits>[K|M|G]` (binary multiples) into bytes. Zero and overflow are refused.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, mult) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], 1u64 << 10),
        'M' => (&s[..s.len() - 1], 1 << 20),
        'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let bytes = n.checked_mul(mult)?;
    (bytes > 0).then_some(bytes)
}

/// Bytes back to the largest whole binary unit, for `plan`.
pub fn format_size(bytes: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        let mult = 1u64 << shift;
        if bytes >= mult && bytes.is_multiple_of(mult) {
            return format!("{} {unit}", bytes / mult);
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Some(1800));
        assert_eq!(parse_duration("14d"), Some(14 * 86_400));
        assert_eq!(parse_duration("45s"), Some(45));
        assert_eq!(parse_duration("1h"), Some(3600));
        for bad in [
            "",
            "m",
            "30",
            "30x",
            "-5m",
            "1.5h",
            "0s",
            "soon",
            "3 m",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(format_duration(1800), "30m");
        assert_eq!(format_duration(86_400 * 14), "14d");
        assert_eq!(format_duration(90), "90s");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100M"), Some(100 << 20));
        assert_eq!(parse_size("512K"), Some(512 << 10));
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("1234"), Some(1234));
        for bad in ["", "M", "0", "1.5M", "10T", "ten"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
        assert_eq!(format_size(100 << 20), "100 MiB");
    }
}
