//! `*` and `?` wildcards as IAM uses them in actions, resources and
//! `...Like` conditions.

/// True when `s` matches `pattern` (`*` any run, `?` one character);
/// case-insensitive when `fold`. Linear backtracking, no recursion.
pub fn wildcard(pattern: &str, s: &str, fold: bool) -> bool {
    let norm = |x: &str| -> Vec<char> {
        if fold {
            x.to_lowercase().chars().collect()
        } else {
            x.chars().collect()
        }
    };
    let (p, s) = (norm(pattern), norm(s));
    let (mut pi, mut si, mut star, mut mark) = (0usize, 0usize, None, 0usize);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}
