//! An error and its causes, outermost first: the one walk of `Error::source` behind every
//! `caused by:` line kiln prints, and behind the one-line form (`a: b: c`) of its warnings.

use std::error::Error;

/// The error's message and each of its sources' messages, outermost first.
pub fn causes(error: &(dyn Error + 'static)) -> Vec<String> {
    let mut messages = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        messages.push(cause.to_string());
        source = cause.source();
    }
    messages
}

/// The error and its causes on one line, `: `-separated.
pub fn one_line(error: &(dyn Error + 'static)) -> String {
    causes(error).join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn causes_go_outermost_first() {
        let error = Outer(std::io::Error::other("inner"));
        assert_eq!(causes(&error), ["outer", "inner"]);
        assert_eq!(one_line(&error), "outer: inner");
    }
}
