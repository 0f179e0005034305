//! SQLite backend (WAL, one file created mode 0600).
//! (Skeleton: filled in by the storage work.)

use super::{ExchangeFilter, Loss, Result, Store, TokenOwner};
use crate::model::{Exchange, Flow, FlowSummary, Micros, RecordedCommand};

pub struct SqliteStore {}

impl SqliteStore {
    pub async fn open(_url: &str) -> Result<Self> {
        todo!()
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn insert_exchanges(&self, _batch: &[Exchange]) -> Result<()> {
        todo!()
    }
    async fn record_loss(&self, _loss: Loss) -> Result<()> {
        todo!()
    }
    async fn list_exchanges(&self, _filter: &ExchangeFilter) -> Result<Vec<Exchange>> {
        todo!()
    }
    async fn get_exchange(&self, _key: &str) -> Result<Option<Exchange>> {
        todo!()
    }
    async fn start_flow(&self, _name: &str, _title: Option<&str>, _at: Micros) -> Result<Flow> {
        todo!()
    }
    async fn stop_flow(&self, _name: Option<&str>, _at: Micros) -> Result<Flow> {
        todo!()
    }
    async fn set_flow_command(&self, _name: &str, _command: &RecordedCommand) -> Result<()> {
        todo!()
    }
    async fn delete_flow(&self, _name: &str) -> Result<()> {
        todo!()
    }
    async fn get_flow(&self, _name: &str) -> Result<Flow> {
        todo!()
    }
    async fn list_flows(&self) -> Result<Vec<FlowSummary>> {
        todo!()
    }
    async fn put_token(&self, _token: &TokenOwner) -> Result<()> {
        todo!()
    }
    async fn live_tokens(&self, _now: Micros) -> Result<Vec<TokenOwner>> {
        todo!()
    }
}
