//! The Java properties format of Kafka's `server.properties`: `key=value` or
//! `key: value`, `#` and `!` comment lines, blank lines, whitespace trimmed
//! around keys and values, and a trailing backslash continuing the line.
//! Stricter than Java where Java guesses: a line without `=` or `:` is an
//! error, not a key with an empty value. Other escapes are kept as written
//! (Kafka's settings need none).

/// One `key=value`, with the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// A line that is not a property; `text` is the whole logical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub text: String,
}

pub fn parse(text: &str) -> Result<Vec<Property>, SyntaxError> {
    let mut properties = Vec::new();
    // A logical line being continued: its first line number and text so far.
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let raw = raw.trim_start();
        let (line, mut logical) = match pending.take() {
            Some((line, so_far)) => (line, so_far),
            None if raw.is_empty() || raw.starts_with(['#', '!']) => continue,
            None => (index + 1, String::new()),
        };
        logical.push_str(raw);
        let trailing = logical.len() - logical.trim_end_matches('\\').len();
        if trailing % 2 == 1 {
            logical.pop();
            pending = Some((line, logical));
        } else {
            properties.push(property(line, &logical)?);
        }
    }
    if let Some((line, logical)) = pending {
        properties.push(property(line, &logical)?);
    }
    Ok(properties)
}

fn property(line: usize, logical: &str) -> Result<Property, SyntaxError> {
    let syntax = || SyntaxError {
        line,
        text: logical.to_string(),
    };
    let at = logical.find(['=', ':']).ok_or_else(syntax)?;
    let key = logical[..at].trim().to_string();
    if key.is_empty() {
        return Err(syntax());
    }
    Ok(Property {
        key,
        value: logical[at + 1..].trim().to_string(),
        line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String, usize)> {
        parse(text)
            .expect("valid")
            .into_iter()
            .map(|p| (p.key, p.value, p.line))
            .collect()
    }

    #[test]
    fn reads_both_separators_comments_and_continuations() {
        let text = "# comment\n! also a comment\n\n  num.partitions = 3\n\
                    listeners: PLAINTEXT://h:9092\r\nlog.dirs=/a,\\\n    /b\n\
                    cluster.id=\nlast=x\\";
        assert_eq!(
            pairs(text),
            [
                ("num.partitions".into(), "3".into(), 4),
                ("listeners".into(), "PLAINTEXT://h:9092".into(), 5),
                ("log.dirs".into(), "/a,/b".into(), 6),
                ("cluster.id".into(), String::new(), 8),
                ("last".into(), "x".into(), 9),
            ]
        );
    }

    #[test]
    fn a_line_without_separator_is_an_error() {
        let err = parse("a=1\n\nnum.partitions 3\n").expect_err("no separator");
        assert_eq!(
            err,
            SyntaxError {
                line: 3,
                text: "num.partitions 3".into()
            }
        );
        assert_eq!(parse("=1").expect_err("no key").line, 1);
    }
}
