//! Webhooks: every call event (or the kinds `webhook-events` selects) is POSTed, in JSON-array
//! batches, to each URL of `webhook-urls`, signed with `webhook-secret`, so that events leave the
//! box for the systems that act on them. Events carry the Kazoo webhook names (`hook_event`,
//! `call_id`, `account_id`, `timestamp`) where Kazoo has an equivalent.
//!
//! Publishing never slows a call: each receiver has its own bounded queue that the SIP task
//! fills with `try_send`; when it is full the event is dropped and counted in
//! `webhook_events_total{result="dropped_queue_full"}`.

pub mod config;
pub mod deliver;
pub mod payload;
pub mod queue;
pub mod sign;

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::base::CallEvent;
use crate::metrics::FeatureMetrics;

pub use config::{EventFilter, WebhookSecret, WebhookUrl};

/// What the webhook senders need from the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookSettings {
    /// The receivers; none turns webhooks off.
    pub urls: Vec<WebhookUrl>,
    /// Which event kinds are sent.
    pub filter: EventFilter,
    /// The HMAC-SHA256 key; without it requests are not signed.
    pub secret: Option<WebhookSecret>,
}

/// The SIP task's handle on the webhook senders: filters, shapes and queues each event.
#[derive(Debug)]
pub struct Webhooks {
    queues: Vec<mpsc::Sender<Value>>,
    filter: EventFilter,
    accounts: payload::Accounts,
    metrics: Option<Arc<FeatureMetrics>>,
}

impl Webhooks {
    /// Webhooks off: publishing does nothing.
    pub fn disabled() -> Webhooks {
        Webhooks {
            queues: Vec::new(),
            filter: EventFilter::default(),
            accounts: payload::Accounts::default(),
            metrics: None,
        }
    }

    /// Spawns one sender task per URL on the current runtime. The tasks end once this handle is
    /// dropped and their queues are delivered (or given up).
    pub fn start(
        settings: &WebhookSettings,
        metrics: Option<Arc<FeatureMetrics>>,
    ) -> (Webhooks, Vec<JoinHandle<()>>) {
        let secret: Option<Arc<[u8]>> = settings
            .secret
            .as_ref()
            .map(|secret| Arc::from(secret.as_bytes()));
        let mut queues = Vec::with_capacity(settings.urls.len());
        let mut tasks = Vec::with_capacity(settings.urls.len());
        for url in &settings.urls {
            let (sender, receiver) = mpsc::channel(queue::QUEUE_CAPACITY);
            queues.push(sender);
            tasks.push(tokio::spawn(deliver::run(
                url.clone(),
                secret.clone(),
                receiver,
                metrics.clone(),
            )));
        }
        let webhooks = Webhooks {
            queues,
            filter: settings.filter.clone(),
            accounts: payload::Accounts::default(),
            metrics,
        };
        (webhooks, tasks)
    }

    /// Queues `event` of call `call_id` for every receiver, if the filter passes it. Never
    /// waits: a full queue drops the event for that receiver and counts it.
    pub fn publish(&mut self, call_id: &str, event: &CallEvent, ts: &str) {
        if self.queues.is_empty() {
            return;
        }
        let account = self.accounts.track(call_id, event);
        if !self.filter.passes(event.kind()) {
            return;
        }
        let object =
            payload::event_object(call_id, event, account.as_deref(), ts, deliver::unix_now());
        for queue in &self.queues {
            if queue.try_send(object.clone()).is_err()
                && let Some(metrics) = &self.metrics
            {
                metrics.webhook_events("dropped_queue_full", 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::Leg;

    /// A handle with one queue of `capacity` and no sender task, to look at what it queues.
    fn handle(
        filter: EventFilter,
        capacity: usize,
        metrics: Arc<FeatureMetrics>,
    ) -> (Webhooks, mpsc::Receiver<Value>) {
        let (sender, receiver) = mpsc::channel(capacity);
        let webhooks = Webhooks {
            queues: vec![sender],
            filter,
            accounts: payload::Accounts::default(),
            metrics: Some(metrics),
        };
        (webhooks, receiver)
    }

    #[test]
    fn only_the_filtered_kinds_are_queued_and_a_full_queue_drops_and_counts() {
        let metrics = crate::metrics::Metrics::new();
        let filter = EventFilter::new(vec!["digit".into(), "call_ended".into()]);
        let (mut webhooks, mut queue) = handle(filter, 1, metrics.feature());
        let digit = CallEvent::Digit {
            leg: Leg::A,
            digit: '5',
            source: "rtp",
        };
        webhooks.publish("c1", &CallEvent::CallAnswered, "T");
        webhooks.publish("c1", &digit, "T");
        webhooks.publish("c1", &digit, "T");
        let queued = queue.try_recv().unwrap();
        assert_eq!(queued["event"], "digit");
        assert_eq!(queued["hook_event"], "digit");
        assert!(queue.try_recv().is_err(), "the answer is filtered out");
        let text = metrics.render();
        assert!(
            text.contains("metaflow_proxy_webhook_events_total{result=\"dropped_queue_full\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn disabled_webhooks_queue_nothing() {
        let mut webhooks = Webhooks::disabled();
        webhooks.publish("c1", &CallEvent::CallAnswered, "T");
        assert!(webhooks.queues.is_empty());
    }
}
