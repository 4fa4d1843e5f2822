//! `netalias check-config FILE`: load and validate a config file, say what it holds or where
//! it is wrong. Nothing is served and no engine is asked.

use std::process::ExitCode;

use netalias::config::Config;

pub(crate) fn check_config(file: &std::path::Path) -> ExitCode {
    match Config::load(file) {
        Ok(config) => {
            let endpoints: usize = config.networks.values().map(|n| n.endpoints.len()).sum();
            println!(
                "{}: ok ({} networks, {} endpoints)",
                file.display(),
                config.networks.len(),
                endpoints
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}
