//! `eplb strategies`: what can be passed to `--strategy`.

use std::process::ExitCode;

use clap::Args;
use eplb::EplbError;

use super::Global;

#[derive(Args, Debug)]
pub(crate) struct StrategiesArgs {}

pub(crate) fn run(_args: &StrategiesArgs, global: Global) -> Result<ExitCode, EplbError> {
    let registry = eplb::strategies::Registry::new();
    if global.json {
        let list: Vec<_> = registry
            .descriptions()
            .map(
                |(name, description)| serde_json::json!({"name": name, "description": description}),
            )
            .collect();
        out!("{}", serde_json::Value::Array(list));
    } else {
        let width = registry.names().map(str::len).max().unwrap_or(0);
        for (name, description) in registry.descriptions() {
            out!("{name:width$}  {description}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
