//! "Did you mean …?": the closest known name to a misspelt key or gate id.

/// Levenshtein distance over chars (names here are short, so the O(n·m) table is fine).
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a plausible typo: at most one
/// edit for short names, about a third of the length for longer ones.
pub fn closest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let limit = (word.chars().count() / 3).max(1);
    let lower = word.to_lowercase();
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| (distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The help line for a diagnostic, when there is a close candidate.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    closest(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("timeout", "timeout"), 0);
        assert_eq!(distance("timeuot", "timeout"), 2);
        assert_eq!(distance("timout", "timeout"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggests_only_close_names() {
        let keys = ["timeout", "needs", "kind", "when", "uses"];
        assert_eq!(closest("timout", keys), Some("timeout"));
        assert_eq!(closest("need", keys), Some("needs"));
        assert_eq!(closest("Kind", keys), Some("kind"));
        assert_eq!(closest("banana", keys), None);
        assert_eq!(
            did_you_mean("unit-test", ["unit-tests", "sign"]).as_deref(),
            Some("did you mean `unit-tests`?")
        );
    }
}
