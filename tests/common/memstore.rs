//! A Store kept in memory, for testing what reads through the trait
//! (export, site) without a database.

use std::sync::Mutex;
use tracer::model::{Exchange, Flow, FlowSummary, Micros, RecordedCommand};
use tracer::store::{ExchangeFilter, Loss, Result, Store, StoreError, TokenOwner};

#[derive(Default)]
pub struct MemStore {
    pub exchanges: Mutex<Vec<Exchange>>,
    pub flows: Mutex<Vec<Flow>>,
}

impl MemStore {
    /// A store holding one closed flow around the given exchanges.
    pub fn with_flow(flow: Flow, exchanges: Vec<Exchange>) -> Self {
        let s = MemStore::default();
        s.add_flow(flow, exchanges);
        s
    }

    pub fn add_flow(&self, flow: Flow, exchanges: Vec<Exchange>) {
        self.flows.lock().unwrap().push(flow);
        self.exchanges.lock().unwrap().extend(exchanges);
    }

    fn matching(&self, filter: &ExchangeFilter) -> Vec<Exchange> {
        let mut v: Vec<Exchange> = self
            .exchanges
            .lock()
            .unwrap()
            .iter()
            .filter(|x| filter.from.is_none_or(|f| x.started_at >= f))
            .filter(|x| filter.to.is_none_or(|t| x.started_at <= t))
            .filter(|x| filter.include_ignored || !x.ignored)
            .filter(|x| filter.method.as_deref().is_none_or(|m| x.method == m))
            .filter(|x| filter.status.is_none_or(|s| x.status == Some(s)))
            .filter(|x| filter.service.as_deref().is_none_or(|s| x.service == s))
            .cloned()
            .collect();
        v.sort_by_key(|x| x.request_seq);
        if let Some(limit) = filter.limit {
            let skip = v.len().saturating_sub(limit as usize);
            v.drain(..skip);
        }
        v
    }
}

#[async_trait::async_trait]
impl Store for MemStore {
    async fn insert_exchanges(&self, batch: &[Exchange]) -> Result<()> {
        self.exchanges.lock().unwrap().extend_from_slice(batch);
        Ok(())
    }

    async fn record_loss(&self, _loss: Loss) -> Result<()> {
        Ok(())
    }

    async fn list_exchanges(&self, filter: &ExchangeFilter) -> Result<Vec<Exchange>> {
        Ok(self.matching(filter))
    }

    async fn get_exchange(&self, key: &str) -> Result<Option<Exchange>> {
        Ok(self
            .exchanges
            .lock()
            .unwrap()
            .iter()
            .find(|x| x.uuid == key || x.request_id == key || x.id.to_string() == key)
            .cloned())
    }

    async fn start_flow(&self, name: &str, title: Option<&str>, at: Micros) -> Result<Flow> {
        let flow = Flow {
            name: name.into(),
            title: title.map(str::to_string),
            started_at: at,
            stopped_at: None,
            command: None,
        };
        self.flows.lock().unwrap().push(flow.clone());
        Ok(flow)
    }

    async fn stop_flow(&self, name: Option<&str>, at: Micros) -> Result<Flow> {
        let mut flows = self.flows.lock().unwrap();
        let f = flows
            .iter_mut()
            .find(|f| f.is_open() && name.is_none_or(|n| f.name == n))
            .ok_or(StoreError::NoOpenFlow)?;
        f.stopped_at = Some(at);
        Ok(f.clone())
    }

    async fn set_flow_command(&self, name: &str, command: &RecordedCommand) -> Result<()> {
        let mut flows = self.flows.lock().unwrap();
        let f = flows
            .iter_mut()
            .find(|f| f.name == name)
            .ok_or_else(|| StoreError::UnknownFlow(name.into()))?;
        f.command = Some(command.clone());
        Ok(())
    }

    async fn delete_flow(&self, name: &str) -> Result<()> {
        self.flows.lock().unwrap().retain(|f| f.name != name);
        Ok(())
    }

    async fn get_flow(&self, name: &str) -> Result<Flow> {
        self.flows
            .lock()
            .unwrap()
            .iter()
            .find(|f| f.name == name)
            .cloned()
            .ok_or_else(|| StoreError::UnknownFlow(name.into()))
    }

    async fn list_flows(&self) -> Result<Vec<FlowSummary>> {
        let flows = self.flows.lock().unwrap().clone();
        Ok(flows
            .into_iter()
            .map(|flow| {
                let xs = self.matching(&ExchangeFilter::for_flow(&flow));
                let mut services: Vec<String> = xs.iter().map(|x| x.service.clone()).collect();
                services.sort();
                services.dedup();
                FlowSummary {
                    exchanges: xs.len() as i64,
                    services,
                    lost: 0,
                    flow,
                }
            })
            .collect())
    }

    async fn put_token(&self, _token: &TokenOwner) -> Result<()> {
        Ok(())
    }

    async fn live_tokens(&self, _now: Micros) -> Result<Vec<TokenOwner>> {
        Ok(Vec::new())
    }
}
