//! `*` and `?` wildcards as IAM uses them in actions, resources and
//! `...Like` conditions.

/// True when `s` matches `pattern` (`*` any run, `?` one character);
/// case-insensitive when `fold`. Linear backtracking, no recursion; ASCII
/// input (the common case) is matched as bytes without allocating.
pub fn wildcard(pattern: &str, s: &str, fold: bool) -> bool {
    if pattern == "*" {
        return true;
    }
    if pattern.is_ascii() && s.is_ascii() {
        return matches(pattern.as_bytes(), s.as_bytes(), b'*', b'?', |a, b| {
            if fold { a.eq_ignore_ascii_case(&b) } else { a == b }
        });
    }
    let norm = |x: &str| -> Vec<char> {
        if fold {
            x.to_lowercase().chars().collect()
        } else {
            x.chars().collect()
        }
    };
    matches(&norm(pattern), &norm(s), '*', '?', |a, b| a == b)
}

/// The matcher over any symbols: `star` matches a run, `any` one symbol.
fn matches<T: Copy + PartialEq>(p: &[T], s: &[T], star: T, any: T, eq: impl Fn(T, T) -> bool) -> bool {
    let (mut pi, mut si, mut back, mut mark) = (0usize, 0usize, None, 0usize);
    while si < s.len() {
        if pi < p.len() && (p[pi] == any || (p[pi] != star && eq(p[pi], s[si]))) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == star {
            back = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = back {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == star {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::wildcard;

    #[test]
    fn ascii_and_unicode_paths_agree() {
        let cases = [
            ("*", "anything", false, true),
            ("s3:Get*", "s3:GetObject", false, true),
            ("s3:get*", "s3:GetObject", true, true),
            ("s3:get*", "s3:GetObject", false, false),
            ("a?c", "abc", false, true),
            ("a*b*c", "axxbyyc", false, true),
            ("a*b*c", "axxbyy", false, false),
            ("", "", false, true),
            ("*x", "", false, false),
            ("k*é", "kaé", false, true),
            ("K*É", "kaé", true, true),
            ("ü?", "üx", false, true),
        ];
        for (p, s, fold, want) in cases {
            assert_eq!(wildcard(p, s, fold), want, "{p} vs {s}");
        }
    }
}
