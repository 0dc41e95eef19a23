//! Reading unified diffs: [`parse`] turns a patch into [`FilePatch`]es, each with its
//! [`Hunk`]s, the way GNU patch reads its input.
//!
//! # Format
//!
//! Anything that is not part of a diff is skipped (commit messages, DEP-3 headers, `Index:`
//! lines, diffstats, the `-- ` trailer of `git format-patch`). A file's diff starts with
//!
//! - `--- OLD` then `+++ NEW` (a tab ends the name; a timestamp may follow), or
//! - `diff --git a/OLD b/NEW` with git's extended headers (`new file mode`, `deleted file
//!   mode`, `old mode`/`new mode`, `rename from`/`rename to`, `copy from`/`copy to`, `index`,
//!   `similarity index`, `GIT binary patch`), then `---`/`+++` when content changes.
//!
//! `/dev/null` as a name means the file is created (old side) or deleted (new side). Names in
//! double quotes use C escapes, as git writes unusual names. Each hunk is
//! `@@ -OLD_START[,OLD_COUNT] +NEW_START[,NEW_COUNT] @@` followed by exactly the counted lines:
//! ` ` context, `-` removed, `+` added, and `\ No newline at end of file` after a line that has no
//! newline. An empty line inside a hunk counts as an empty context line (mail clients strip the
//! space).

use std::path::Path;

use crate::PatchError;

/// Git's extended header lines for one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GitHeader {
    /// `new file mode`: the file is created with this mode.
    pub(crate) new_file_mode: Option<u32>,
    /// `deleted file mode`: the file is removed.
    pub(crate) deleted: bool,
    /// `new mode`: the file's mode changes to this.
    pub(crate) new_mode: Option<u32>,
    /// `rename from`/`rename to`.
    pub(crate) rename: bool,
    /// `copy from`/`copy to`.
    pub(crate) copy: bool,
    /// `GIT binary patch` or `Binary files ... differ`.
    pub(crate) binary: bool,
}

/// The diff of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FilePatch {
    /// The old name as written (before stripping); `None` for `/dev/null`.
    pub(crate) old: Option<String>,
    /// The new name as written (before stripping); `None` for `/dev/null`.
    pub(crate) new: Option<String>,
    /// Present for a `diff --git` section.
    pub(crate) git: Option<GitHeader>,
    /// The hunks, in order.
    pub(crate) hunks: Vec<Hunk>,
}

/// One hunk: the lines it expects (`old`) and the lines it leaves (`new`), each with its line
/// terminator unless the patch said `\ No newline at end of file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hunk {
    /// The header without the section text, e.g. `@@ -12,7 +12,8 @@`.
    pub(crate) header: String,
    /// The 1-based first old line (for an empty old side: the line after which to insert).
    pub(crate) old_start: usize,
    /// The old lines: context and removed lines.
    pub(crate) old: Vec<Vec<u8>>,
    /// The new lines: context and added lines.
    pub(crate) new: Vec<Vec<u8>>,
    /// Context lines before the first change.
    pub(crate) leading: usize,
    /// Context lines after the last change.
    pub(crate) trailing: usize,
}

/// Which side(s) a hunk line went to, for a following `\ No newline` marker.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Both,
    Old,
    New,
}

/// Parses the unified diff `text`; `patch` names it in errors.
pub(crate) fn parse(text: &[u8], patch: &Path) -> Result<Vec<FilePatch>, PatchError> {
    let lines: Vec<&[u8]> = text.split_inclusive(|byte| *byte == b'\n').collect();
    let parse_error = |index: usize, message: String| PatchError::Parse {
        patch: patch.to_owned(),
        line: index + 1,
        message,
    };
    let mut files: Vec<FilePatch> = Vec::new();
    // Whether the last file may still take `---`/`+++` names (a git header without them yet).
    let mut git_open = false;
    // Whether the last file is a git section that has not had `---`/`+++` names or hunks yet.
    let mut git_names_pending = false;
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index];
        if let Some(rest) = line.strip_prefix(b"diff --git ") {
            let (old, new) = git_names(trim_eol(rest));
            files.push(FilePatch {
                old: Some(old),
                new: Some(new),
                git: Some(GitHeader::default()),
                hunks: Vec::new(),
            });
            git_open = true;
            git_names_pending = true;
            index += 1;
            continue;
        }
        if git_open {
            let file = files.last_mut().expect("a git section is open");
            let git = file.git.as_mut().expect("git sections have a header");
            let text = trim_eol(line);
            if let Some(mode) = text.strip_prefix(b"new file mode ") {
                git.new_file_mode = parse_mode(mode);
                file.old = None;
            } else if text.starts_with(b"deleted file mode ") {
                git.deleted = true;
                file.new = None;
            } else if let Some(mode) = text.strip_prefix(b"new mode ") {
                git.new_mode = parse_mode(mode);
            } else if text.starts_with(b"rename from ") || text.starts_with(b"rename to ") {
                git.rename = true;
            } else if text.starts_with(b"copy from ") || text.starts_with(b"copy to ") {
                git.copy = true;
            } else if text.starts_with(b"GIT binary patch") || text.starts_with(b"Binary files ") {
                git.binary = true;
            } else if !(text.starts_with(b"old mode ")
                || text.starts_with(b"index ")
                || text.starts_with(b"similarity index ")
                || text.starts_with(b"dissimilarity index "))
            {
                git_open = false;
                continue; // not a header line: look at it again below
            }
            index += 1;
            continue;
        }
        let next = lines.get(index + 1).copied().unwrap_or_default();
        if line.starts_with(b"--- ") && next.starts_with(b"+++ ") {
            let old = file_name(&line[4..]);
            let new = file_name(&next[4..]);
            match files.last_mut() {
                // The names of the `diff --git` section just read.
                Some(file) if git_names_pending => {
                    file.old = old;
                    file.new = new;
                }
                _ => files.push(FilePatch {
                    old,
                    new,
                    git: None,
                    hunks: Vec::new(),
                }),
            }
            git_names_pending = false;
            index += 2;
            continue;
        }
        if line.starts_with(b"@@ -") {
            let Some(file) = files.last_mut() else {
                return Err(parse_error(
                    index,
                    "a hunk before any file header".to_owned(),
                ));
            };
            let (hunk, next_index) =
                parse_hunk(&lines, index).map_err(|(at, message)| parse_error(at, message))?;
            file.hunks.push(hunk);
            git_names_pending = false;
            index = next_index;
            continue;
        }
        index += 1;
    }
    Ok(files)
}

/// Parses the hunk whose header is `lines[start]`; returns it and the index after it, or the
/// index and text of an error.
fn parse_hunk(lines: &[&[u8]], start: usize) -> Result<(Hunk, usize), (usize, String)> {
    let header_line = String::from_utf8_lossy(trim_eol(lines[start])).into_owned();
    let malformed = || (start, format!("malformed hunk header `{header_line}`"));
    let rest = header_line.strip_prefix("@@ -").ok_or_else(malformed)?;
    let (ranges, _section) = rest.split_once(" @@").ok_or_else(malformed)?;
    let (old_range, new_range) = ranges.split_once(" +").ok_or_else(malformed)?;
    let (old_start, old_count) = parse_range(old_range).ok_or_else(malformed)?;
    let (_new_start, new_count) = parse_range(new_range).ok_or_else(malformed)?;
    let header = format!("@@ -{old_range} +{new_range} @@");

    let mut hunk = Hunk {
        header,
        old_start,
        old: Vec::with_capacity(old_count),
        new: Vec::with_capacity(new_count),
        leading: 0,
        trailing: 0,
    };
    let (mut old_left, mut new_left) = (old_count, new_count);
    let mut seen_change = false;
    let mut last_side = None;
    let mut index = start + 1;
    loop {
        let line = lines.get(index).copied();
        // A `\ No newline at end of file` marker applies to the line before it.
        if line.is_some_and(|line| line.starts_with(b"\\")) {
            let strip = |lines: &mut Vec<Vec<u8>>| {
                if let Some(last) = lines.last_mut() {
                    if last.last() == Some(&b'\n') {
                        last.pop();
                    }
                }
            };
            match last_side {
                Some(Side::Both) => {
                    strip(&mut hunk.old);
                    strip(&mut hunk.new);
                }
                Some(Side::Old) => strip(&mut hunk.old),
                Some(Side::New) => strip(&mut hunk.new),
                None => return Err((index, "a `\\` line before any hunk line".to_owned())),
            }
            index += 1;
            continue;
        }
        if old_left == 0 && new_left == 0 {
            break;
        }
        let Some(line) = line else {
            return Err((
                index.saturating_sub(1),
                format!(
                    "the hunk `{}` ends early: {old_left} old and {new_left} new lines missing",
                    hunk.header
                ),
            ));
        };
        let (kind, content) = match line.split_first() {
            Some((b'\n', _)) => (b' ', &b"\n"[..]),
            Some((b'\r', b"\n")) => (b' ', &b"\r\n"[..]),
            Some((kind, content)) => (*kind, content),
            None => (b'?', &b""[..]),
        };
        match kind {
            b' ' if old_left > 0 && new_left > 0 => {
                hunk.old.push(content.to_vec());
                hunk.new.push(content.to_vec());
                old_left -= 1;
                new_left -= 1;
                if seen_change {
                    hunk.trailing += 1;
                } else {
                    hunk.leading += 1;
                }
                last_side = Some(Side::Both);
            }
            b'-' if old_left > 0 => {
                hunk.old.push(content.to_vec());
                old_left -= 1;
                seen_change = true;
                hunk.trailing = 0;
                last_side = Some(Side::Old);
            }
            b'+' if new_left > 0 => {
                hunk.new.push(content.to_vec());
                new_left -= 1;
                seen_change = true;
                hunk.trailing = 0;
                last_side = Some(Side::New);
            }
            _ => {
                return Err((
                    index,
                    format!(
                        "the hunk `{}` ends early: {old_left} old and {new_left} new lines \
                         missing",
                        hunk.header
                    ),
                ))
            }
        }
        index += 1;
    }
    if !seen_change {
        // Context only: all of it is "leading"; count it on both ends for fuzz purposes.
        hunk.trailing = hunk.leading;
    }
    Ok((hunk, index))
}

/// `START[,COUNT]`, COUNT defaulting to 1.
fn parse_range(range: &str) -> Option<(usize, usize)> {
    match range.split_once(',') {
        Some((start, count)) => Some((start.parse().ok()?, count.parse().ok()?)),
        None => Some((range.parse().ok()?, 1)),
    }
}

fn parse_mode(text: &[u8]) -> Option<u32> {
    u32::from_str_radix(std::str::from_utf8(text).ok()?.trim(), 8).ok()
}

/// `line` without its trailing `\n` or `\r\n`.
fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The name on a `---`/`+++` line: up to a tab (a timestamp may follow), unquoted; `None` for
/// `/dev/null`.
fn file_name(text: &[u8]) -> Option<String> {
    let text = trim_eol(text);
    let name = if text.starts_with(b"\"") {
        unquote(text).0
    } else {
        let end = text
            .iter()
            .position(|byte| *byte == b'\t')
            .unwrap_or(text.len());
        String::from_utf8_lossy(&text[..end]).trim_end().to_owned()
    };
    (name != "/dev/null").then_some(name)
}

/// The two names of a `diff --git A B` line.
///
/// Unquoted names may contain spaces, so the line is split where both halves name the same path
/// after their first component (`a/x b/x`); for renames, where they differ, at ` b/`.
fn git_names(text: &[u8]) -> (String, String) {
    if text.starts_with(b"\"") {
        let (old, rest) = unquote(text);
        let rest = rest.trim_start();
        let new = if rest.starts_with('"') {
            unquote(rest.as_bytes()).0
        } else {
            rest.to_owned()
        };
        return (old, new);
    }
    let text = String::from_utf8_lossy(text).into_owned();
    let after_first = |name: &str| name.split_once('/').map(|(_, rest)| rest.to_owned());
    for (index, _) in text.match_indices(' ') {
        let (old, new) = (&text[..index], &text[index + 1..]);
        if after_first(old).is_some() && after_first(old) == after_first(new) {
            return (old.to_owned(), new.to_owned());
        }
    }
    match text.split_once(" b/") {
        Some((old, new)) => (old.to_owned(), format!("b/{new}")),
        None => match text.split_once(' ') {
            Some((old, new)) => (old.to_owned(), new.to_owned()),
            None => (text.clone(), text),
        },
    }
}

/// Decodes a C-quoted name at the start of `text` (which starts with `"`); returns it and the
/// text after the closing quote.
fn unquote(text: &[u8]) -> (String, String) {
    let mut bytes = Vec::new();
    let mut index = 1;
    while index < text.len() {
        match text[index] {
            b'"' => {
                index += 1;
                break;
            }
            b'\\' if index + 1 < text.len() => {
                index += 1;
                let escaped = text[index];
                let octal = text
                    .get(index..index + 3)
                    .filter(|digits| digits.iter().all(|digit| (b'0'..=b'7').contains(digit)));
                if let Some(digits) = octal {
                    let value = digits
                        .iter()
                        .fold(0u32, |value, digit| value * 8 + u32::from(digit - b'0'));
                    bytes.push(u8::try_from(value).unwrap_or(b'?'));
                    index += 3;
                    continue;
                }
                bytes.push(match escaped {
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'r' => b'\r',
                    b'a' => 0x07,
                    b'b' => 0x08,
                    b'f' => 0x0c,
                    b'v' => 0x0b,
                    other => other,
                });
                index += 1;
            }
            other => {
                bytes.push(other);
                index += 1;
            }
        }
    }
    let rest = String::from_utf8_lossy(text.get(index..).unwrap_or_default()).into_owned();
    (String::from_utf8_lossy(&bytes).into_owned(), rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Vec<FilePatch> {
        parse(text.as_bytes(), Path::new("test.patch")).unwrap()
    }

    #[test]
    fn names_and_ranges() {
        let files = parse_ok(
            "Description: fix\n\
             --- a/src/x.c\t2020-01-01 00:00:00.000000000 +0000\n\
             +++ b/src/x.c\t2020-01-02 00:00:00.000000000 +0000\n\
             @@ -1 +1,2 @@ int main()\n\
             -a\n\
             +b\n\
             +c\n",
        );
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].old.as_deref(), Some("a/src/x.c"));
        assert_eq!(files[0].new.as_deref(), Some("b/src/x.c"));
        let hunk = &files[0].hunks[0];
        assert_eq!(hunk.header, "@@ -1 +1,2 @@");
        assert_eq!(hunk.old, vec![b"a\n".to_vec()]);
        assert_eq!(hunk.new, vec![b"b\n".to_vec(), b"c\n".to_vec()]);
    }

    #[test]
    fn git_headers() {
        let files = parse_ok(
            "diff --git a/new file.txt b/new file.txt\n\
             new file mode 100755\n\
             index 0000000..e69de29\n\
             --- /dev/null\n\
             +++ b/new file.txt\n\
             @@ -0,0 +1 @@\n\
             +hi\n\
             \\ No newline at end of file\n\
             diff --git a/old.txt b/renamed.txt\n\
             similarity index 100%\n\
             rename from old.txt\n\
             rename to renamed.txt\n\
             diff --git \"a/tab\\there\" \"b/tab\\there\"\n\
             deleted file mode 100644\n",
        );
        assert_eq!(files.len(), 3);
        assert_eq!(files[0].old, None);
        assert_eq!(files[0].new.as_deref(), Some("b/new file.txt"));
        assert_eq!(files[0].git.as_ref().unwrap().new_file_mode, Some(0o100755));
        assert_eq!(files[0].hunks[0].new, vec![b"hi".to_vec()]);
        assert_eq!(files[1].old.as_deref(), Some("a/old.txt"));
        assert_eq!(files[1].new.as_deref(), Some("b/renamed.txt"));
        assert!(files[1].git.as_ref().unwrap().rename);
        assert_eq!(files[2].old.as_deref(), Some("a/tab\there"));
        assert_eq!(files[2].new, None);
    }

    #[test]
    fn truncated_hunk() {
        let error = parse(
            b"--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n-b\n",
            Path::new("cut.patch"),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "`cut.patch` line 5: the hunk `@@ -1,3 +1,3 @@` ends early: 1 old and 2 new lines \
             missing"
        );
    }
}
