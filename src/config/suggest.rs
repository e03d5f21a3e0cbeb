//! "Did you mean …?": the closest known name to a misspelt key or gate id.

/// Edit distance over chars where swapping two neighbours counts as one edit (optimal string
/// alignment), since `hihg` for `high` is the commonest typo. Names are short, so the O(n·m)
/// table is fine.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
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
        assert_eq!(distance("timeuot", "timeout"), 1);
        assert_eq!(distance("hihg", "high"), 1);
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
