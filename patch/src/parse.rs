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
//! space). Line numbers and counts are at most `u32::MAX`.
//!
//! # Memory
//!
//! The parse borrows from the patch text and copies none of it: a hunk's lines are kept as
//! 4-byte offsets into the text ([`Lines`]), which [`MAX_PATCH_SIZE`] keeps below 4 GiB. A hunk
//! header's counts are not trusted for allocation sizes.

use std::ops::Range;
use std::path::Path;

use crate::{PatchError, MAX_PATCH_SIZE};

// Offsets into the text are `u32`.
const _: () = assert!(MAX_PATCH_SIZE <= u32::MAX as u64);

/// Git's extended header lines for one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GitHeader {
    /// `new file mode`: the file is created with this mode.
    pub(crate) new_file_mode: Option<GitMode>,
    /// `deleted file mode`: the file is removed.
    pub(crate) deleted: bool,
    /// `new mode`: the file's mode changes to this.
    pub(crate) new_mode: Option<GitMode>,
    /// `rename from`/`rename to`.
    pub(crate) rename: bool,
    /// `copy from`/`copy to`.
    pub(crate) copy: bool,
    /// `GIT binary patch` or `Binary files ... differ`.
    pub(crate) binary: bool,
}

/// A mode from a git header, as written: file type and permission bits (`100755`, `120000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GitMode {
    /// The mode, octal in the patch.
    pub(crate) mode: u32,
    /// The 1-based line of the header.
    pub(crate) line: usize,
}

/// The diff of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FilePatch<'a> {
    /// The old name as written (before stripping); `None` for `/dev/null`.
    pub(crate) old: Option<String>,
    /// The new name as written (before stripping); `None` for `/dev/null`.
    pub(crate) new: Option<String>,
    /// The 1-based line where this file's diff starts (`diff --git` or `---`).
    pub(crate) line: usize,
    /// The 1-based line of the header that names the old file: `rename from` or `copy from`
    /// if there is one, else `---`, else `diff --git`.
    pub(crate) old_line: usize,
    /// The 1-based line of the header that names the new file: `rename to` or `copy to` if
    /// there is one, else `+++`, else `diff --git`.
    pub(crate) new_line: usize,
    /// Present for a `diff --git` section.
    pub(crate) git: Option<GitHeader>,
    /// The hunks, in order.
    pub(crate) hunks: Vec<Hunk<'a>>,
}

/// One hunk: the lines it expects (`old`) and the lines it leaves (`new`), each with its line
/// terminator unless the patch said `\ No newline at end of file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hunk<'a> {
    /// The header without the section text, e.g. `@@ -12,7 +12,8 @@`.
    pub(crate) header: String,
    /// The 1-based first old line (for an empty old side: the line after which to insert).
    pub(crate) old_start: usize,
    /// The old lines: context and removed lines.
    pub(crate) old: Lines<'a>,
    /// The new lines: context and added lines.
    pub(crate) new: Lines<'a>,
    /// Context lines before the first change.
    pub(crate) leading: usize,
    /// Context lines after the last change.
    pub(crate) trailing: usize,
}

/// One side of a hunk, borrowed from the patch text: where each line's content starts.
///
/// A line's content runs to its `\n` included, or without it when the next line of the text is
/// a `\ No newline at end of file` marker (which always belongs to the hunk).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Lines<'a> {
    text: &'a [u8],
    /// Offsets into `text`, in order. MUST each be at most `text.len()`.
    starts: Vec<u32>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a [u8]) -> Lines<'a> {
        Lines {
            text,
            starts: Vec::new(),
        }
    }

    /// The number of lines.
    pub(crate) fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether there are no lines.
    pub(crate) fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The content of the line at `start`.
    fn line_at(&self, start: u32) -> &'a [u8] {
        let rest = self.text.get(start as usize..).unwrap_or_default();
        match rest.iter().position(|byte| *byte == b'\n') {
            Some(newline) if rest.get(newline + 1) == Some(&b'\\') => &rest[..newline],
            Some(newline) => &rest[..=newline],
            None => rest,
        }
    }

    /// The lines in `range` (clamped to the lines there are).
    pub(crate) fn range(&self, range: Range<usize>) -> impl Iterator<Item = &'a [u8]> + '_ {
        let end = range.end.min(self.starts.len());
        let start = range.start.min(end);
        self.starts[start..end]
            .iter()
            .map(|start| self.line_at(*start))
    }

    /// All the lines.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.range(0..self.len())
    }
}

impl std::fmt::Debug for Lines<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

/// Walks the patch text line by line (each line with its `\n`, the last one maybe without).
struct Cursor<'a> {
    text: &'a [u8],
    /// Where the current line starts.
    offset: usize,
    /// The current line's 0-based number.
    index: usize,
    /// The current line; `None` at the end.
    line: Option<&'a [u8]>,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a [u8]) -> Cursor<'a> {
        Cursor {
            text,
            offset: 0,
            index: 0,
            line: line_at(text, 0),
        }
    }

    /// The line after the current one.
    fn peek(&self) -> Option<&'a [u8]> {
        line_at(self.text, self.offset + self.line?.len())
    }

    fn advance(&mut self) {
        if let Some(line) = self.line {
            self.offset += line.len();
            self.index += 1;
            self.line = line_at(self.text, self.offset);
        }
    }
}

/// The line of `text` starting at `offset`.
fn line_at(text: &[u8], offset: usize) -> Option<&[u8]> {
    let rest = text.get(offset..).filter(|rest| !rest.is_empty())?;
    let end = rest
        .iter()
        .position(|byte| *byte == b'\n')
        .map_or(rest.len(), |newline| newline + 1);
    Some(&rest[..end])
}

/// Parses the unified diff `text`; `patch` names it in errors.
pub(crate) fn parse<'a>(text: &'a [u8], patch: &Path) -> Result<Vec<FilePatch<'a>>, PatchError> {
    if u64::try_from(text.len()).map_or(true, |length| length > MAX_PATCH_SIZE) {
        return Err(PatchError::TooLarge {
            patch: patch.to_owned(),
            limit: MAX_PATCH_SIZE,
        });
    }
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
    let mut cursor = Cursor::new(text);
    while let Some(line) = cursor.line {
        let number = cursor.index + 1;
        if let Some(rest) = line.strip_prefix(b"diff --git ") {
            let (old, new) = git_names(trim_eol(rest));
            files.push(FilePatch {
                old: Some(old),
                new: Some(new),
                line: number,
                old_line: number,
                new_line: number,
                git: Some(GitHeader::default()),
                hunks: Vec::new(),
            });
            git_open = true;
            git_names_pending = true;
            cursor.advance();
            continue;
        }
        if git_open {
            if let Some(file) = files.last_mut() {
                if git_header(file, trim_eol(line), number) {
                    cursor.advance();
                    continue;
                }
            }
            git_open = false;
            // Not a header line: look at it again below.
        }
        let next = cursor.peek().unwrap_or_default();
        if line.starts_with(b"--- ") && next.starts_with(b"+++ ") {
            let old = file_name(&line[4..]);
            let new = file_name(&next[4..]);
            match files.last_mut() {
                // The names of the `diff --git` section just read.
                Some(file) if git_names_pending => {
                    file.old = old;
                    file.new = new;
                    let git = file.git.as_ref();
                    if !git.is_some_and(|git| git.rename || git.copy) {
                        file.old_line = number;
                        file.new_line = number + 1;
                    }
                }
                _ => files.push(FilePatch {
                    old,
                    new,
                    line: number,
                    old_line: number,
                    new_line: number + 1,
                    git: None,
                    hunks: Vec::new(),
                }),
            }
            git_names_pending = false;
            cursor.advance();
            cursor.advance();
            continue;
        }
        if line.starts_with(b"@@ -") {
            let Some(file) = files.last_mut() else {
                return Err(parse_error(
                    cursor.index,
                    "a hunk before any file header".to_owned(),
                ));
            };
            let hunk = parse_hunk(&mut cursor).map_err(|(at, message)| parse_error(at, message))?;
            file.hunks.push(hunk);
            git_names_pending = false;
            continue;
        }
        cursor.advance();
    }
    Ok(files)
}

/// Reads the git extended header `text` (line `number`) into `file`; `false` if it is not one.
fn git_header(file: &mut FilePatch, text: &[u8], number: usize) -> bool {
    let Some(git) = file.git.as_mut() else {
        return false;
    };
    if let Some(mode) = text.strip_prefix(b"new file mode ") {
        git.new_file_mode = parse_mode(mode, number);
        file.old = None;
    } else if text.starts_with(b"deleted file mode ") {
        git.deleted = true;
        file.new = None;
    } else if let Some(mode) = text.strip_prefix(b"new mode ") {
        git.new_mode = parse_mode(mode, number);
    } else if text.starts_with(b"rename from ") || text.starts_with(b"copy from ") {
        git.rename |= text.starts_with(b"rename");
        git.copy |= text.starts_with(b"copy");
        file.old_line = number;
    } else if text.starts_with(b"rename to ") || text.starts_with(b"copy to ") {
        git.rename |= text.starts_with(b"rename");
        git.copy |= text.starts_with(b"copy");
        file.new_line = number;
    } else if text.starts_with(b"GIT binary patch") || text.starts_with(b"Binary files ") {
        git.binary = true;
    } else if !(text.starts_with(b"old mode ")
        || text.starts_with(b"index ")
        || text.starts_with(b"similarity index ")
        || text.starts_with(b"dissimilarity index "))
    {
        return false;
    }
    true
}

/// Parses the hunk whose header is the cursor's line, leaving the cursor after it; returns it,
/// or the 0-based line and text of an error.
fn parse_hunk<'a>(cursor: &mut Cursor<'a>) -> Result<Hunk<'a>, (usize, String)> {
    let start = cursor.index;
    let header_line = String::from_utf8_lossy(trim_eol(cursor.line.unwrap_or_default()));
    let malformed = || (start, format!("malformed hunk header `{header_line}`"));
    let rest = header_line.strip_prefix("@@ -").ok_or_else(malformed)?;
    let (ranges, _section) = rest.split_once(" @@").ok_or_else(malformed)?;
    let (old_range, new_range) = ranges.split_once(" +").ok_or_else(malformed)?;
    let (old_start, old_count) = parse_range(old_range).ok_or_else(malformed)?;
    let (_new_start, new_count) = parse_range(new_range).ok_or_else(malformed)?;
    let header = format!("@@ -{old_range} +{new_range} @@");
    cursor.advance();

    let text = cursor.text;
    let offset = |at: usize| {
        // `parse` checked that the text is at most MAX_PATCH_SIZE long.
        u32::try_from(at).map_err(|_| (start, "the hunk is too far into the patch".to_owned()))
    };
    let mut hunk = Hunk {
        header,
        old_start,
        old: Lines::new(text),
        new: Lines::new(text),
        leading: 0,
        trailing: 0,
    };
    let (mut old_left, mut new_left) = (old_count, new_count);
    let mut seen_change = false;
    // Whether a hunk line was read, for a following `\ No newline` marker.
    let mut any_line = false;
    loop {
        let line = cursor.line;
        // A `\ No newline at end of file` marker applies to the line before it (`Lines`
        // leaves out that line's newline); it is part of the hunk.
        if line.is_some_and(|line| line.starts_with(b"\\")) {
            if !any_line {
                return Err((cursor.index, "a `\\` line before any hunk line".to_owned()));
            }
            cursor.advance();
            continue;
        }
        if old_left == 0 && new_left == 0 {
            break;
        }
        let Some(line) = line else {
            return Err((
                cursor.index.saturating_sub(1),
                format!(
                    "the hunk `{}` ends early: {old_left} old and {new_left} new lines missing",
                    hunk.header
                ),
            ));
        };
        // An empty line is an empty context line (its content is the line itself).
        let (kind, content) = match line {
            b"\n" | b"\r\n" => (b' ', offset(cursor.offset)?),
            [kind, ..] => (*kind, offset(cursor.offset + 1)?),
            [] => (b'?', 0),
        };
        match kind {
            b' ' if old_left > 0 && new_left > 0 => {
                hunk.old.starts.push(content);
                hunk.new.starts.push(content);
                old_left -= 1;
                new_left -= 1;
                if seen_change {
                    hunk.trailing += 1;
                } else {
                    hunk.leading += 1;
                }
                any_line = true;
            }
            b'-' if old_left > 0 => {
                hunk.old.starts.push(content);
                old_left -= 1;
                seen_change = true;
                hunk.trailing = 0;
                any_line = true;
            }
            b'+' if new_left > 0 => {
                hunk.new.starts.push(content);
                new_left -= 1;
                seen_change = true;
                hunk.trailing = 0;
                any_line = true;
            }
            _ => {
                return Err((
                    cursor.index,
                    format!(
                        "the hunk `{}` ends early: {old_left} old and {new_left} new lines \
                         missing",
                        hunk.header
                    ),
                ))
            }
        }
        cursor.advance();
    }
    if !seen_change {
        // Context only: all of it is "leading"; count it on both ends for fuzz purposes.
        hunk.trailing = hunk.leading;
    }
    Ok(hunk)
}

/// `START[,COUNT]`, COUNT defaulting to 1; each at most `u32::MAX`, so that line arithmetic
/// cannot overflow.
fn parse_range(range: &str) -> Option<(usize, usize)> {
    let number = |text: &str| text.parse::<u32>().ok().map(|number| number as usize);
    match range.split_once(',') {
        Some((start, count)) => Some((number(start)?, number(count)?)),
        None => Some((number(range)?, 1)),
    }
}

/// The octal mode `text`, from header line `line`; `None` if it is not one.
fn parse_mode(text: &[u8], line: usize) -> Option<GitMode> {
    let mode = u32::from_str_radix(std::str::from_utf8(text).ok()?.trim(), 8).ok()?;
    Some(GitMode { mode, line })
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

    fn parse_ok(text: &str) -> Vec<FilePatch<'_>> {
        parse(text.as_bytes(), Path::new("test.patch")).unwrap()
    }

    fn lines<'a>(side: &Lines<'a>) -> Vec<&'a [u8]> {
        side.iter().collect()
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
        assert_eq!(lines(&hunk.old), [b"a\n"]);
        assert_eq!(lines(&hunk.new), [b"b\n", b"c\n"]);
        assert_eq!(
            (files[0].line, files[0].old_line, files[0].new_line),
            (2, 2, 3)
        );
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
        assert_eq!(
            files[0].git.as_ref().unwrap().new_file_mode,
            Some(GitMode {
                mode: 0o100755,
                line: 2
            })
        );
        assert_eq!(lines(&files[0].hunks[0].new), [b"hi"]);
        assert_eq!(
            (files[0].line, files[0].old_line, files[0].new_line),
            (1, 4, 5)
        );
        assert_eq!(files[1].old.as_deref(), Some("a/old.txt"));
        assert_eq!(files[1].new.as_deref(), Some("b/renamed.txt"));
        assert!(files[1].git.as_ref().unwrap().rename);
        // A rename's names come from `rename from`/`rename to`.
        assert_eq!(
            (files[1].line, files[1].old_line, files[1].new_line),
            (9, 11, 12)
        );
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

    #[test]
    fn no_newline_markers_apply_to_the_line_before() {
        let files = parse_ok(
            "--- a/x\n+++ b/x\n@@ -1,2 +1,3 @@\n one\n-two\n\\ No newline at end of file\n+TWO\n\
             +three\n\\ No newline at end of file\n\n\n",
        );
        let hunk = &files[0].hunks[0];
        assert_eq!(lines(&hunk.old), [&b"one\n"[..], b"two"]);
        assert_eq!(lines(&hunk.new), [&b"one\n"[..], b"TWO\n", b"three"]);

        // An empty line is an empty context line, on both sides.
        let files = parse_ok("--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n\n-a\n+b\n");
        assert_eq!(lines(&files[0].hunks[0].old), [&b"\n"[..], b"a\n"]);
        assert_eq!(lines(&files[0].hunks[0].new), [&b"\n"[..], b"b\n"]);
    }

    #[test]
    fn counts_are_not_trusted() {
        // A count far beyond the patch: an error, not an allocation of that size.
        let error = parse(
            b"--- a/x\n+++ b/x\n@@ -1,4000000000 +1,4000000000 @@\n a\n",
            Path::new("huge.patch"),
        )
        .unwrap_err();
        assert!(error.to_string().contains("ends early"), "{error}");
        // Numbers beyond u32 are malformed.
        let error = parse(
            b"--- a/x\n+++ b/x\n@@ -9223372036854775808,1 +1 @@\n-a\n+b\n",
            Path::new("big.patch"),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "`big.patch` line 3: malformed hunk header `@@ -9223372036854775808,1 +1 @@`"
        );
    }

    #[test]
    fn text_over_the_limit_is_refused() {
        let text = vec![b'\n'; MAX_PATCH_SIZE as usize + 1];
        let error = parse(&text, Path::new("big.patch")).unwrap_err();
        assert!(matches!(error, PatchError::TooLarge { .. }), "{error}");
    }
}
