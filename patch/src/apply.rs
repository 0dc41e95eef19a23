//! Applying hunks to file contents in memory: [`apply_hunks`] places each hunk the way GNU patch
//! does by default, and [`locate`] finds where one hunk fits.
//!
//! For each hunk, in order, kiln tries fuzz 0, then 1, then 2 ([`MAX_FUZZ`], GNU's default); at
//! each fuzz level it looks at the line the hunk names (moved by the offset the previous hunk
//! needed), then at growing distances above and below it, nearest first, never before the end of
//! the previous hunk. Fuzz `n` ignores up to `n` context lines at the start and at the end of the
//! hunk; ignored lines are kept from the file. A hunk with less context at its start than at its
//! end must match at the start of the file (diff shortens context only there), and one with less
//! context at its end must match at the end — GNU patch's `locate_hunk` rules.
//!
//! Fuzz never ignores more lines than a hunk has (a hunk of context only has all its lines
//! counted as both leading and trailing context), and the search starts no further than the
//! end of the file, however large the line number the patch states.

use crate::parse::Hunk;

/// GNU patch's default fuzz factor.
pub(crate) const MAX_FUZZ: usize = 2;

/// Where a hunk was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    /// The 0-based line of the old file where the hunk's old lines start.
    pub(crate) position: usize,
    /// Context lines ignored at the start of the hunk.
    pub(crate) prefix_fuzz: usize,
    /// Context lines ignored at the end of the hunk.
    pub(crate) suffix_fuzz: usize,
    /// The fuzz level that was needed.
    pub(crate) fuzz: usize,
}

/// One applied hunk: its placement and the 0-based line the patch said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Applied {
    pub(crate) placement: Placement,
    pub(crate) stated: usize,
}

/// Applies `hunks` to `content`; returns the new content and where each hunk went, or the
/// index of the first hunk that fits nowhere.
pub(crate) fn apply_hunks(
    content: &[u8],
    hunks: &[Hunk<'_>],
) -> Result<(Vec<u8>, Vec<Applied>), usize> {
    let lines: Vec<&[u8]> = content.split_inclusive(|byte| *byte == b'\n').collect();
    let mut output = Vec::with_capacity(content.len() + 1024);
    let mut applied = Vec::with_capacity(hunks.len());
    let mut consumed = 0;
    let mut offset: isize = 0;
    for (index, hunk) in hunks.iter().enumerate() {
        let stated = if hunk.old.is_empty() {
            hunk.old_start
        } else {
            hunk.old_start.saturating_sub(1)
        };
        let placement = locate(&lines, hunk, stated, offset, consumed).ok_or(index)?;
        let Placement {
            position,
            prefix_fuzz,
            suffix_fuzz,
            ..
        } = placement;
        for line in &lines[consumed..position + prefix_fuzz] {
            output.extend_from_slice(line);
        }
        for line in hunk
            .new
            .range(prefix_fuzz..hunk.new.len().saturating_sub(suffix_fuzz))
        {
            output.extend_from_slice(line);
        }
        consumed = position + hunk.old.len().saturating_sub(suffix_fuzz);
        offset = position as isize - stated as isize;
        applied.push(Applied { placement, stated });
    }
    for line in &lines[consumed..] {
        output.extend_from_slice(line);
    }
    Ok((output, applied))
}

/// Finds where `hunk` fits in `lines`: at or after line `consumed`, nearest to
/// `stated + offset`, with the least fuzz.
pub(crate) fn locate(
    lines: &[&[u8]],
    hunk: &Hunk<'_>,
    stated: usize,
    offset: isize,
    consumed: usize,
) -> Option<Placement> {
    let context = hunk.leading.max(hunk.trailing);
    // Positions past the end of the file cannot fit: start the search no further.
    let first_guess = (stated as isize)
        .saturating_add(offset)
        .clamp(0, lines.len() as isize) as usize;
    for fuzz in 0..=MAX_FUZZ {
        let prefix = fuzz as isize + hunk.leading as isize - context as isize;
        let suffix = fuzz as isize + hunk.trailing as isize - context as isize;
        let fits = |position: usize, prefix_fuzz: usize, suffix_fuzz: usize| {
            let prefix_fuzz = prefix_fuzz.min(hunk.leading).min(hunk.old.len());
            let placement = Placement {
                position,
                prefix_fuzz,
                suffix_fuzz: suffix_fuzz
                    .min(hunk.trailing)
                    .min(hunk.old.len() - prefix_fuzz),
                fuzz,
            };
            matches(lines, hunk, placement, consumed).then_some(placement)
        };
        if prefix < 0 && hunk.old_start <= 1 {
            // Short leading context: only the start of the file will do.
            if suffix < 0 && hunk.old.len() != lines.len() {
                continue;
            }
            if let Some(placement) = fits(0, 0, suffix.max(0) as usize) {
                return Some(placement);
            }
            continue;
        }
        let prefix_fuzz = prefix.max(0) as usize;
        if suffix < 0 {
            // Short trailing context: only the end of the file will do.
            let Some(position) = lines.len().checked_sub(hunk.old.len()) else {
                continue;
            };
            if let Some(placement) = fits(position, prefix_fuzz, 0) {
                return Some(placement);
            }
            continue;
        }
        let suffix_fuzz = suffix as usize;
        let mut distance = 0;
        loop {
            let after = first_guess + distance;
            let before = first_guess.checked_sub(distance);
            let after_possible = after + hunk.old.len().saturating_sub(suffix_fuzz) <= lines.len();
            let before_possible = before.is_some_and(|before| before + prefix_fuzz >= consumed);
            if !after_possible && !before_possible {
                break;
            }
            if after_possible {
                if let Some(placement) = fits(after, prefix_fuzz, suffix_fuzz) {
                    return Some(placement);
                }
            }
            if distance > 0 && before_possible {
                if let Some(placement) = fits(before.expect("checked"), prefix_fuzz, suffix_fuzz) {
                    return Some(placement);
                }
            }
            distance += 1;
        }
    }
    None
}

/// Whether the hunk's old lines, less the fuzzed context, are the file's lines at `position`.
fn matches(lines: &[&[u8]], hunk: &Hunk<'_>, placement: Placement, consumed: usize) -> bool {
    let Placement {
        position,
        prefix_fuzz,
        suffix_fuzz,
        ..
    } = placement;
    let end = hunk.old.len().saturating_sub(suffix_fuzz);
    let compared = end.saturating_sub(prefix_fuzz);
    let start = position + prefix_fuzz;
    if start < consumed || start + compared > lines.len() {
        return false;
    }
    hunk.old
        .range(prefix_fuzz..end)
        .zip(&lines[start..])
        .all(|(expected, actual)| expected == *actual)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;
    use std::path::Path;

    fn hunks(patch: &str) -> Vec<Hunk<'_>> {
        parse(patch.as_bytes(), Path::new("t.patch")).unwrap()[0]
            .hunks
            .clone()
    }

    fn numbered(count: usize) -> String {
        (1..=count).map(|line| format!("line {line}\n")).collect()
    }

    #[test]
    fn exact_and_offset() {
        let patch = "--- a/f\n+++ b/f\n@@ -4,3 +4,3 @@\n line 4\n-line 5\n+LINE 5\n line 6\n";
        let (out, applied) = apply_hunks(numbered(10).as_bytes(), &hunks(patch)).unwrap();
        assert_eq!(applied[0].placement.position, 3);
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("line 4\nLINE 5\nline 6\n"));

        // Three lines inserted at the top: the hunk is found 3 lines lower.
        let shifted = format!("x\ny\nz\n{}", numbered(10));
        let (out, applied) = apply_hunks(shifted.as_bytes(), &hunks(patch)).unwrap();
        assert_eq!(applied[0].placement.position, 6);
        assert_eq!(applied[0].stated, 3);
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("line 4\nLINE 5\nline 6\n"));
    }

    #[test]
    fn fuzz_ignores_outer_context() {
        let patch =
            "--- a/f\n+++ b/f\n@@ -3,5 +3,5 @@\n line 3\n line 4\n-line 5\n+LINE 5\n line 6\n line 7\n";
        let changed = numbered(10).replace("line 3\n", "changed 3\n");
        let (out, applied) = apply_hunks(changed.as_bytes(), &hunks(patch)).unwrap();
        assert_eq!(applied[0].placement.fuzz, 1);
        // The fuzzed line is kept from the file.
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("changed 3\nline 4\nLINE 5\n"));

        let broken = numbered(10)
            .replace("line 4\n", "changed 4\n")
            .replace("line 3\n", "c\n");
        assert!(apply_hunks(broken.as_bytes(), &hunks(patch)).is_ok());
        let too_far = numbered(10)
            .replace("line 4\n", "changed 4\n")
            .replace("line 6\n", "c\n");
        assert!(apply_hunks(too_far.as_bytes(), &hunks(patch)).is_ok());
        let changed_core = numbered(10).replace("line 5\n", "other\n");
        assert_eq!(apply_hunks(changed_core.as_bytes(), &hunks(patch)), Err(0));
    }

    #[test]
    fn short_leading_context_anchors_at_start() {
        // diff gives a hunk at the top of the file only one leading context line... none here.
        let patch = "--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n-line 1\n+LINE 1\n line 2\n line 3\n";
        let shifted = format!("x\n{}", numbered(5));
        // Leading context 0 < trailing 2: must match at the start, which it does not at fuzz 0;
        // with fuzz 2 the prefix rule no longer applies and it matches one line lower.
        let (_, applied) = apply_hunks(shifted.as_bytes(), &hunks(patch)).unwrap();
        assert_eq!(applied[0].placement.position, 1);
        assert_eq!(applied[0].placement.fuzz, 2);
    }

    #[test]
    fn context_only_hunks_with_fuzz() {
        // A hunk of context only that does not match exactly: fuzz may not ignore more lines
        // than it has (this panicked), so at fuzz 1 it compares nothing and applies as a
        // no-op, as a pure insertion does at full fuzz.
        let patch = "--- a/f\n+++ b/f\n@@ -1 +1 @@\n nothere\n";
        assert_eq!(
            apply_hunks(b"x\ny\n", &hunks(patch)),
            Ok((
                b"x\ny\n".to_vec(),
                vec![Applied {
                    placement: Placement {
                        position: 0,
                        prefix_fuzz: 1,
                        suffix_fuzz: 0,
                        fuzz: 1
                    },
                    stated: 0,
                }]
            ))
        );
        let patch = "--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n b\n c\n";
        let (out, _) = apply_hunks(b"x\ny\n", &hunks(patch)).unwrap();
        assert_eq!(out, b"x\ny\n");
    }

    #[test]
    fn stated_lines_far_past_the_end() {
        // The search starts at the end of the file rather than 4 billion lines down.
        let patch = "--- a/f\n+++ b/f\n@@ -4294967295,1 +4294967295,1 @@\n-line 2\n+LINE 2\n";
        let (out, applied) = apply_hunks(numbered(3).as_bytes(), &hunks(patch)).unwrap();
        assert_eq!(out, b"line 1\nLINE 2\nline 3\n");
        assert_eq!(applied[0].placement.position, 1);
    }
}
