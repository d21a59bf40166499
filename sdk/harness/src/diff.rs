/// A readable line diff of `expected` against `actual`: `-` lines are expected but
/// missing, `+` lines are produced but not expected, with two lines of context and at
/// most 60 changed lines shown.
pub fn line_diff(expected: &[String], actual: &[String]) -> String {
    let ops = diff_ops(expected, actual);
    let mut out = String::new();
    let mut shown = 0;
    let changed: Vec<bool> = ops.iter().map(|op| !matches!(op, Op::Same(..))).collect();
    for (i, op) in ops.iter().enumerate() {
        let near_change = changed[i.saturating_sub(2)..(i + 3).min(ops.len())].iter().any(|&c| c);
        if !near_change {
            continue;
        }
        if shown >= 60 {
            out.push_str("  ... (more differences not shown)\n");
            break;
        }
        match op {
            Op::Same(e) => out.push_str(&format!("  line {:>4}   {}\n", e + 1, expected[*e])),
            Op::Missing(e) => {
                shown += 1;
                out.push_str(&format!("- expected {:>4} {}\n", e + 1, expected[*e]));
            }
            Op::Extra(a) => {
                shown += 1;
                out.push_str(&format!("+ actual   {:>4} {}\n", a + 1, actual[*a]));
            }
        }
    }
    out
}

enum Op {
    Same(usize),
    Missing(usize),
    Extra(usize),
}

/// Longest-common-subsequence diff; quadratic, so large inputs fall back to comparing
/// line by line.
fn diff_ops(a: &[String], b: &[String]) -> Vec<Op> {
    if a.len().saturating_mul(b.len()) > 16_000_000 {
        let mut ops = Vec::new();
        for i in 0..a.len().max(b.len()) {
            match (a.get(i), b.get(i)) {
                (Some(x), Some(y)) if x == y => ops.push(Op::Same(i)),
                (x, y) => {
                    if x.is_some() {
                        ops.push(Op::Missing(i));
                    }
                    if y.is_some() {
                        ops.push(Op::Extra(i));
                    }
                }
            }
        }
        return ops;
    }
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut ops) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push(Op::Same(i));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(Op::Missing(i));
            i += 1;
        } else {
            ops.push(Op::Extra(j));
            j += 1;
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn a_changed_line_shows_as_missing_and_extra_with_context() {
        let diff = line_diff(&lines("a b c d"), &lines("a b x d"));
        assert!(diff.contains("- expected    3 c"), "{diff}");
        assert!(diff.contains("+ actual      3 x"), "{diff}");
        assert!(diff.find("- expected").unwrap() < diff.find("+ actual").unwrap(), "{diff}");
        assert!(diff.contains("line    2   b"), "{diff}");
    }

    #[test]
    fn identical_inputs_have_an_empty_diff() {
        assert_eq!(line_diff(&lines("a b"), &lines("a b")), "");
    }
}
