//! The many-to-one criterion as the README states it: `*` matches any run of characters
//! (including none), the match is anchored to the whole value, no `?`, no escaping; without
//! `compare_case_sensitive` both sides are compared character by character after simple
//! lowercase folding.

/// Folds one character: its lowercase form when that is a single character, else itself;
/// final sigma folds with sigma.
pub fn fold(c: char) -> char {
    if c == 'ς' {
        return 'σ';
    }
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// Whether `value` matches `criteria`.
pub fn matches(criteria: &str, value: &str, case_sensitive: bool) -> bool {
    let prep = |s: &str| -> Vec<char> {
        if case_sensitive {
            s.chars().collect()
        } else {
            s.chars().map(fold).collect()
        }
    };
    let p = prep(criteria);
    let v = prep(value);
    // Classic dynamic programme: m[i][j] = p[..i] matches v[..j].
    let mut m = vec![vec![false; v.len() + 1]; p.len() + 1];
    m[0][0] = true;
    for i in 1..=p.len() {
        for j in 0..=v.len() {
            m[i][j] = if p[i - 1] == '*' {
                m[i - 1][j] || (j > 0 && m[i][j - 1])
            } else {
                j > 0 && m[i - 1][j - 1] && p[i - 1] == v[j - 1]
            };
        }
    }
    m[p.len()][v.len()]
}
