//! `DIR/notes.toml` (SPEC "Notes"): what a writer adds to a flow's pages by
//! hand, kept beside them and merged in at every export.
//!
//! A note names its step by what the step is — `POST /v2/images` for a
//! request, `201 /v2/images` for a response, paths with the pages'
//! `{placeholders}` — and which occurrence (`nth`), never by its number, so
//! it survives a re-recording of the same command.

use serde::Deserialize;

/// The parsed notes file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notes {
    pub notes: Vec<Note>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Note {
    /// `METHOD /path` (a request section) or `STATUS /path` (a response).
    pub step: String,
    /// Which of the sections that match (1 is the first).
    #[serde(default = "first")]
    pub nth: usize,
    /// Markdown placed under the step's caller line.
    #[serde(default)]
    pub text: String,
    /// JSON pointers into the body (`/image/name`) and header names
    /// (`Location`): their lines are highlighted.
    #[serde(default)]
    pub highlight: Vec<String>,
}

fn first() -> usize {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default, rename = "note")]
    notes: Vec<Note>,
}

/// What a step names: the side and how it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Request { method: String, path: String },
    Response { status: u16, path: String },
}

impl Step {
    /// `POST /v2/images` or `201 /v2/images`.
    pub fn parse(s: &str) -> Result<Step, String> {
        let (word, path) = s
            .trim()
            .split_once(' ')
            .ok_or_else(|| format!("step {s:?} is not \"METHOD /path\" or \"STATUS /path\""))?;
        let path = path.trim().to_string();
        if !path.starts_with('/') {
            return Err(format!("step {s:?}: the path must start with /"));
        }
        if word.len() == 3 && word.bytes().all(|b| b.is_ascii_digit()) {
            let status = word
                .parse()
                .map_err(|_| format!("step {s:?}: bad status"))?;
            return Ok(Step::Response { status, path });
        }
        if word.is_empty() || !word.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(format!(
                "step {s:?}: {word:?} is neither a method nor a status"
            ));
        }
        Ok(Step::Request {
            method: word.to_ascii_uppercase(),
            path,
        })
    }
}

impl Notes {
    /// Parses a notes file; the error is one line naming the note at fault.
    pub fn parse(text: &str) -> Result<Notes, String> {
        let file: File = toml::from_str(text).map_err(|e| {
            e.to_string()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })?;
        for (i, note) in file.notes.iter().enumerate() {
            Step::parse(&note.step).map_err(|e| format!("note #{}: {e}", i + 1))?;
            if note.nth == 0 {
                return Err(format!("note #{}: nth counts from 1", i + 1));
            }
        }
        Ok(Notes { notes: file.notes })
    }

    pub fn is_empty(&self) -> bool {
        self.notes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_example_parses() {
        let notes = Notes::parse(
            r#"
[[note]]
step = "POST /v2/images"
text = """
Creates the image record; the data is uploaded in the next steps.
"""
highlight = ["/name", "/disk_format", "Location"]

[[note]]
step = "201 /v2/images"
nth = 2
"#,
        )
        .unwrap();
        assert_eq!(notes.notes.len(), 2);
        assert_eq!(notes.notes[0].nth, 1);
        assert_eq!(
            notes.notes[0].highlight,
            ["/name", "/disk_format", "Location"]
        );
        assert_eq!(
            Step::parse(&notes.notes[1].step),
            Ok(Step::Response {
                status: 201,
                path: "/v2/images".into()
            })
        );
    }

    #[test]
    fn bad_notes_are_named() {
        let err = Notes::parse("[[note]]\nstep = \"/v2/images\"\n").unwrap_err();
        assert!(err.contains("note #1"), "{err}");
        let err = Notes::parse("[[note]]\nstep = \"GET /x\"\nnth = 0\n").unwrap_err();
        assert!(err.contains("nth"), "{err}");
        let err = Notes::parse("[[note]]\nstep = \"GET /x\"\ncolour = 1\n").unwrap_err();
        assert!(err.contains("colour") && !err.contains('\n'), "{err}");
        assert!(Step::parse("get /v2")
            .is_ok_and(|s| matches!(s, Step::Request { method, .. } if method == "GET")));
    }
}
