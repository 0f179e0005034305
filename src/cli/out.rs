//! Standard output, where results go. Written through here rather than
//! `println!`, which panics when the reader has gone (`tracer list --json |
//! head -1`): the error travels up and `main` ends quietly on a closed pipe.

use std::fmt::Display;
use std::io::{self, Write};

/// `text` and a line break.
pub fn line(text: impl Display) -> io::Result<()> {
    writeln!(io::stdout().lock(), "{text}")
}

/// `text` as it is.
pub fn text(text: impl Display) -> io::Result<()> {
    write!(io::stdout().lock(), "{text}")
}

/// Whether an error is stdout's reader having gone away.
pub fn is_closed_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
