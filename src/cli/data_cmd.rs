//! `sweep data fetch` and `sweep data show`.

use super::{CmdResult, FetchArgs, ShowArgs};

pub fn fetch(_args: FetchArgs) -> CmdResult {
    Err(anyhow::anyhow!("data fetch lands with the data module").into())
}

pub fn show(_args: ShowArgs) -> CmdResult {
    Err(anyhow::anyhow!("data show lands with the data module").into())
}
