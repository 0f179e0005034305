use clap::Parser;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = tracer::cli::Cli::parse();
    match tracer::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // One clear line for the user: the error and its causes, no backtrace.
            let mut line = format!("tracer: {err}");
            for cause in err.chain().skip(1) {
                line.push_str(&format!(": {cause}"));
            }
            eprintln!("{line}");
            ExitCode::FAILURE
        }
    }
}
