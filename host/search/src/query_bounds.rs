//! Bounds on a query string, checked in one linear pass before tantivy's parser sees it:
//! the parser recurses on nesting and on chains of operators, and a few kilobytes of
//! `((((…` or `NOT NOT NOT …` from a client would otherwise overflow the thread's stack and
//! abort the whole host.

/// Longest query, in bytes.
pub const MAX_QUERY_BYTES: usize = 1024;
/// Deepest nesting of parentheses.
pub const MAX_QUERY_DEPTH: usize = 8;
/// Most terms and operators (`NOT`, `AND`, `OR`, a leading `+`, `-` or `!`, a `(`).
pub const MAX_QUERY_CLAUSES: usize = 64;

/// Checks `query` against the bounds; the error says which and what to do.
pub fn check(query: &str) -> Result<(), String> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(format!("the query is {} bytes, more than {MAX_QUERY_BYTES}; shorten it", query.len()));
    }
    let (mut depth, mut clauses, mut in_quotes, mut escaped, mut in_token) = (0_usize, 0_usize, false, false, false);
    for c in query.chars() {
        if in_quotes {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => in_quotes = false,
                _ => escaped = false,
            }
            continue;
        }
        match c {
            '"' => {
                in_quotes = true;
                if !in_token {
                    clauses += 1;
                    in_token = true;
                }
            }
            '(' => {
                depth += 1;
                clauses += 1;
                in_token = false;
                if depth > MAX_QUERY_DEPTH {
                    return Err(format!("the query nests parentheses deeper than {MAX_QUERY_DEPTH}; flatten it"));
                }
            }
            ')' => {
                depth = depth.saturating_sub(1);
                in_token = false;
            }
            c if c.is_whitespace() => in_token = false,
            '+' | '-' | '!' if !in_token => clauses += 1,
            _ => {
                if !in_token {
                    clauses += 1;
                    in_token = true;
                }
            }
        }
        if clauses > MAX_QUERY_CLAUSES {
            return Err(format!("the query has more than {MAX_QUERY_CLAUSES} terms and operators; split it"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_queries_pass() {
        for query in [
            "müller",
            "restaurant_name:müller AND total:>=20",
            "(pizza OR sushi) -test \"o-12 delivered\"",
            "status:delivered NOT zone:north",
        ] {
            assert_eq!(check(query), Ok(()), "{query}");
        }
    }

    #[test]
    fn deep_long_and_operator_heavy_queries_are_refused_with_the_bound() {
        let deep = format!("{}a{}", "(".repeat(9), ")".repeat(9));
        assert!(check(&deep).unwrap_err().contains("deeper than 8"));
        let nots = format!("{}a", "NOT ".repeat(70));
        assert!(check(&nots).unwrap_err().contains("more than 64"));
        let minuses = format!("{}a", "- ".repeat(70));
        assert!(check(&minuses).unwrap_err().contains("more than 64"));
        assert!(check(&"a".repeat(2000)).unwrap_err().contains("more than 1024"));
    }

    #[test]
    fn quoted_text_does_not_count_as_structure() {
        let quoted = format!("\"{}\"", "((((((((((NOT ".repeat(5));
        assert_eq!(check(&quoted), Ok(()));
        assert_eq!(check(r#""a \" (((((((((( b""#), Ok(()), "an escaped quote stays inside the phrase");
    }
}
