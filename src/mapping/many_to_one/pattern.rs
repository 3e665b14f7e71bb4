//! The `*` glob of a rule's `match_criteria`, and the case folding IIS applies when
//! `compare_case_sensitive = false`.

/// A `*` glob split into literal segments at compile time, so matching walks the value once per
/// segment and never allocates: case folding is applied character by character on the fly.
#[derive(Debug, Clone)]
pub(super) struct Pattern {
    /// Literal pieces between `*`s, already folded when the comparison ignores case. A pattern
    /// without `*` has exactly one segment and is an exact match.
    segments: Vec<String>,
    case_sensitive: bool,
}

impl Pattern {
    pub(super) fn new(criteria: &str, case_sensitive: bool) -> Self {
        let segments = criteria
            .split('*')
            .map(|s| {
                if case_sensitive {
                    s.to_owned()
                } else {
                    s.chars().map(fold_char).collect()
                }
            })
            .collect();
        Self {
            segments,
            case_sensitive,
        }
    }

    pub(super) fn matches(&self, value: &str) -> bool {
        let fold: fn(char) -> char = if self.case_sensitive {
            identity
        } else {
            fold_char
        };
        let (first, rest) = match self.segments.split_first() {
            Some(split) => split,
            None => return value.is_empty(),
        };
        let Some((last, middle)) = rest.split_last() else {
            // No `*`: exact match.
            return prefix_len(value, first, fold) == Some(value.len());
        };
        let Some(head) = prefix_len(value, first, fold) else {
            return false;
        };
        let Some(tail) = suffix_start(value, last, fold) else {
            return false;
        };
        // The prefix and the suffix must not overlap: "ab*ba" does not match "aba".
        if tail < head {
            return false;
        }
        let mut window = &value[head..tail];
        for segment in middle {
            match find(window, segment, fold) {
                Some(end) => window = &window[end..],
                None => return false,
            }
        }
        true
    }
}

fn identity(c: char) -> char {
    c
}

/// Unicode simple case folding, approximated by the single-character lowercase mapping.
/// Characters whose lowercase form is several characters (`İ`) stay as they are, which is what
/// simple folding does for them; final sigma folds with sigma. Working per character keeps byte
/// offsets into the original value valid and avoids allocating a folded copy per connection.
fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    if c == 'ς' {
        return 'σ';
    }
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

pub(super) fn fold_eq(a: &str, b: &str) -> bool {
    a.chars().map(fold_char).eq(b.chars().map(fold_char))
}

/// If `value` starts with `segment` (after folding), the byte length of that prefix in `value`.
fn prefix_len(value: &str, segment: &str, fold: fn(char) -> char) -> Option<usize> {
    let mut chars = value.char_indices();
    for want in segment.chars() {
        let (_, got) = chars.next()?;
        if fold(got) != want {
            return None;
        }
    }
    Some(chars.next().map_or(value.len(), |(i, _)| i))
}

/// If `value` ends with `segment` (after folding), the byte offset where that suffix starts.
fn suffix_start(value: &str, segment: &str, fold: fn(char) -> char) -> Option<usize> {
    let mut start = value.len();
    let mut chars = value.char_indices().rev();
    for want in segment.chars().rev() {
        let (i, got) = chars.next()?;
        if fold(got) != want {
            return None;
        }
        start = i;
    }
    Some(start)
}

/// Leftmost occurrence of `segment` in `haystack`; returns the byte offset just past it. Leftmost
/// is enough for `*`-only globs: taking the earliest match leaves the most room for the rest.
fn find(haystack: &str, segment: &str, fold: fn(char) -> char) -> Option<usize> {
    if segment.is_empty() {
        return Some(0);
    }
    haystack
        .char_indices()
        .find_map(|(i, _)| prefix_len(&haystack[i..], segment, fold).map(|len| i + len))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn pattern_table() {
        // (criteria, case_sensitive, value, expected)
        let cases: &[(&str, bool, &str, bool)] = &[
            ("Sales", true, "Sales", true),
            ("Sales", true, "Sales Team", false),
            ("Sales", true, "Big Sales", false),
            ("Sales", true, "sales", false),
            ("Sales", false, "sALES", true),
            ("Sal*", true, "Sales", true),
            ("Sal*", true, "Sal", true),
            ("Sal*", true, "xSales", false),
            ("*les", true, "Sales", true),
            ("*les", true, "les", true),
            ("*les", true, "Salesx", false),
            ("S*s", true, "Sales", true),
            ("S*s", true, "Ss", true),
            ("S*s", true, "S", false),
            ("ab*ba", true, "aba", false),
            ("ab*ba", true, "abba", true),
            ("*a*b*", true, "xxaxxbxx", true),
            ("*a*b*", true, "xxbxxaxx", false),
            ("a*b*c", true, "abc", true),
            ("a*b*c", true, "aXbYc", true),
            ("a*b*c", true, "acb", false),
            ("a**c", true, "ac", true),
            ("*", true, "anything", true),
            ("*", true, "", true),
            ("**", true, "", true),
            ("", true, "", true),
            ("", true, "x", false),
            ("x*", true, "", false),
            ("?", true, "a", false),
            ("?", true, "?", true),
            ("a.c", true, "abc", false),
            // Non-ASCII folding, both directions.
            ("Örebro", false, "örebro", true),
            ("örebro", false, "ÖREBRO", true),
            ("Örebro", true, "örebro", false),
            ("*BRO", false, "Örebro", true),
            ("ö*", false, "Ö", true),
            // Kelvin sign folds to a one-byte 'k'; offsets must stay on the original value.
            ("*k", false, "x\u{212A}", true),
            ("\u{212A}*", false, "kelvin", true),
            ("ΣΑΣ", false, "σας", true),
        ];
        for &(criteria, case, value, want) in cases {
            let p = Pattern::new(criteria, case);
            assert_eq!(
                p.matches(value),
                want,
                "criteria {criteria:?} case_sensitive={case} value {value:?}"
            );
        }
    }
}
