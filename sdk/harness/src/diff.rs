use std::time::{Duration, Instant};

use similar::{Algorithm, DiffTag};

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

/// How long a diff may search for the smallest edit before it settles for a larger one:
/// Myers' algorithm is linear in the size of the inputs times the number of differences,
/// and two long outputs that differ everywhere must not stall a test run.
const DIFF_DEADLINE: Duration = Duration::from_millis(500);

/// The edit from `expected` to `actual` as line operations (Myers' diff, `similar`).
fn diff_ops(expected: &[String], actual: &[String]) -> Vec<Op> {
    let deadline = Instant::now() + DIFF_DEADLINE;
    let mut ops = Vec::new();
    for op in similar::capture_diff_slices_deadline(Algorithm::Myers, expected, actual, Some(deadline)) {
        let (tag, old, new) = op.as_tag_tuple();
        match tag {
            DiffTag::Equal => ops.extend(old.map(Op::Same)),
            DiffTag::Delete => ops.extend(old.map(Op::Missing)),
            DiffTag::Insert => ops.extend(new.map(Op::Extra)),
            DiffTag::Replace => {
                ops.extend(old.map(Op::Missing));
                ops.extend(new.map(Op::Extra));
            }
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
    fn an_inserted_line_is_extra_and_the_rest_lines_up() {
        let diff = line_diff(&lines("a b c d e f"), &lines("a b new c d e f"));
        assert!(diff.contains("+ actual      3 new"), "{diff}");
        assert!(!diff.contains("- expected"), "nothing expected is missing: {diff}");
    }

    #[test]
    fn long_outputs_that_differ_everywhere_are_diffed_quickly_and_shown_in_part() {
        let expected: Vec<String> = (0..20_000).map(|i| format!("e{i}")).collect();
        let actual: Vec<String> = (0..20_000).map(|i| format!("a{i}")).collect();
        let diff = line_diff(&expected, &actual);
        assert!(diff.contains("more differences not shown"), "{diff}");
        assert_eq!(diff.lines().filter(|l| l.starts_with(['-', '+'])).count(), 60, "{diff}");
    }

    #[test]
    fn identical_inputs_have_an_empty_diff() {
        assert_eq!(line_diff(&lines("a b"), &lines("a b")), "");
    }
}
