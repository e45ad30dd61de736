//! `eplb strategies`: what can be passed to `--strategy`.

use std::process::ExitCode;

use clap::Args;
use eplb::EplbError;

#[derive(Args, Debug)]
pub(crate) struct StrategiesArgs {
    /// Print machine-readable JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &StrategiesArgs) -> Result<ExitCode, EplbError> {
    let all = eplb::strategies::all();
    if args.json {
        let list: Vec<_> = all
            .iter()
            .map(|s| serde_json::json!({"name": s.name(), "description": s.description()}))
            .collect();
        println!("{}", serde_json::Value::Array(list));
    } else {
        let width = all.iter().map(|s| s.name().len()).max().unwrap_or(0);
        for s in &all {
            println!("{:width$}  {}", s.name(), s.description());
        }
    }
    Ok(ExitCode::SUCCESS)
}
