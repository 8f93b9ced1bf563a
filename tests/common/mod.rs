//! Helpers shared by the integration tests: a tracing layer that records every event's
//! fields, so tests can assert on the attempt logs, and a plain downstream error.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// One recorded event: level, message and fields (as strings).
#[derive(Clone, Debug)]
pub struct Event {
    pub level: tracing::Level,
    pub target: String,
    pub fields: BTreeMap<String, String>,
    /// Fields of the spans the event sat in, innermost last.
    pub span_names: Vec<String>,
}

impl Event {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }
    pub fn message(&self) -> &str {
        self.get("message").unwrap_or("")
    }
}

#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<Event>>>);

impl Recorder {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }
    /// Events of stormguard whose field `key` equals `value`.
    pub fn with(&self, key: &str, value: &str) -> Vec<Event> {
        self.events()
            .into_iter()
            .filter(|e| e.get(key) == Some(value))
            .collect()
    }
    /// Records the events of the current thread until the guard drops.
    ///
    /// One global subscriber routes each event to the recorder of the thread that emitted it:
    /// a per-thread `set_default` races with callsite registration in tracing when tests run
    /// in parallel, and then silently drops events.
    pub fn install(&self) -> Installed {
        static GLOBAL: std::sync::Once = std::sync::Once::new();
        GLOBAL.call_once(|| {
            let subscriber = tracing_subscriber::registry().with(Router);
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber");
        });
        CURRENT.with(|c| *c.borrow_mut() = Some(self.clone()));
        Installed(())
    }
}

thread_local! {
    static CURRENT: std::cell::RefCell<Option<Recorder>> = const { std::cell::RefCell::new(None) };
}

/// Stops the recording of the current thread when dropped.
pub struct Installed(());

impl Drop for Installed {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = None);
    }
}

struct Router;

impl<S> Layer<S> for Router
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        if let Some(rec) = CURRENT.with(|c| c.borrow().clone()) {
            rec.record(event, ctx);
        }
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl Recorder {
    fn record<S>(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>)
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let span_names = ctx
            .event_scope(event)
            .map(|scope| scope.from_root().map(|s| s.name().to_string()).collect())
            .unwrap_or_default();
        self.0.lock().unwrap().push(Event {
            level: *event.metadata().level(),
            target: event.metadata().target().to_string(),
            fields,
            span_names,
        });
    }
}

/// The error of a downstream that is down.
#[derive(Debug, Clone, PartialEq)]
pub struct Down;

impl fmt::Display for Down {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("down")
    }
}
