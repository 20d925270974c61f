//! "did you mean" for misspelt keys and values (and, in `cli`, commands and
//! options).

/// The candidate closest to `word` by edit distance, if it is close enough to
/// be a plausible typo (at most a third of its length, and at least 1 or 2
/// edits depending on length).
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance over characters where swapping two neighbours counts as one
/// edit (optimal string alignment), since `lcoal` is one typo, not two.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j] = distance between a[..i] and b[..j]
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_insertions_deletions_substitutions() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("retry_cont", "retry_count"), 1);
        assert_eq!(edit_distance("lcoal", "local"), 1);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggests_the_closest_key() {
        let keys = ["retry_count", "filters"];
        assert_eq!(did_you_mean("retry_cont", &keys), Some("retry_count"));
        assert_eq!(did_you_mean("filter", &keys), Some("filters"));
        assert_eq!(
            did_you_mean("lcoal", &["local", "default", "modal"]),
            Some("local")
        );
    }

    #[test]
    fn no_suggestion_for_unrelated_words() {
        assert_eq!(
            did_you_mean("bogus_top_level", &["offload", "provider", "report"]),
            None
        );
        assert_eq!(did_you_mean("x", &["shell", "env"]), None);
    }
}
