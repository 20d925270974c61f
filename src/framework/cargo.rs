//! cargo (alias nextest): discovery with `cargo nextest list`, batches with `cargo nextest run`.

use std::path::PathBuf;

use super::{BatchCommand, Discovery, Framework, MatchedResults, ResultLocation};
use crate::cancel::Cancel;
use crate::config::{CargoConfig, GroupConfig};
use crate::error::{Error, Result};
use crate::junit::read::JunitCase;

pub struct CargoFramework {
    #[allow(dead_code)]
    config: CargoConfig,
    #[allow(dead_code)]
    working_dir: PathBuf,
}

impl CargoFramework {
    pub fn new(config: CargoConfig, working_dir: PathBuf) -> Self {
        CargoFramework {
            config,
            working_dir,
        }
    }
}

impl Framework for CargoFramework {
    fn discover(&self, _group: &GroupConfig, _cancel: &Cancel) -> Result<Discovery> {
        Err(Error::new("the cargo framework is not implemented yet"))
    }

    fn batch_command(&self, _tests: &[String], _result_file: &str) -> BatchCommand {
        BatchCommand {
            script: "false".into(),
            results: ResultLocation::ResultFile,
        }
    }

    fn match_results(&self, _cases: Vec<JunitCase>, _expected: &[String]) -> MatchedResults {
        MatchedResults::default()
    }
}
