//! `eplb strategies`: what can be passed to `--strategy`.

use std::process::ExitCode;

use clap::Args;
use eplb::EplbError;

use super::Global;

#[derive(Args, Debug)]
pub(crate) struct StrategiesArgs {}

pub(crate) fn run(_args: &StrategiesArgs, global: Global) -> Result<ExitCode, EplbError> {
    let all = eplb::strategies::all();
    if global.json {
        let list: Vec<_> = all
            .iter()
            .map(|s| serde_json::json!({"name": s.name(), "description": s.description()}))
            .collect();
        out!("{}", serde_json::Value::Array(list));
    } else {
        let width = all.iter().map(|s| s.name().len()).max().unwrap_or(0);
        for s in &all {
            out!("{:width$}  {}", s.name(), s.description());
        }
    }
    Ok(ExitCode::SUCCESS)
}
