//! Process-wide logging: a `tracing` subscriber with an `EnvFilter` and text or JSON lines on
//! stderr.
//!
//! JSON lines are flat objects: `timestamp`, `level`, `target`, `message`, then the fields of
//! every enclosing span (outermost first) and of the event itself, plus `spans` (the span names).
//! Flattening, rather than tracing-subscriber's stock `"span": {"name": …}` objects, is deliberate:
//! reconcile spans carry a field called `name` (the TFJob's), which would collide with the span's
//! own `name` key there, and flat keys are what log pipelines index (as with controller-runtime's
//! zap output).

use std::{
    fmt,
    io::{self, IsTerminal},
};

use serde_json::{Map, Value};
use tracing::{Event, Subscriber, field::Field};
use tracing_subscriber::{
    EnvFilter,
    fmt::{
        FmtContext, FormatEvent, FormattedFields, MakeWriter, format::JsonFields, format::Writer,
    },
    layer::SubscriberExt,
    registry::LookupSpan,
    util::SubscriberInitExt,
};

/// Log line format (`--log-format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, span fields shown as `span{field=value}:`.
    #[default]
    Text,
    /// One flat JSON object per line (see the module docs).
    Json,
}

/// Logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The filter directive does not parse.
    #[error("invalid log filter {directive:?} from {origin}: {source}")]
    InvalidFilter {
        /// `RUST_LOG` or `--log-level`, whichever supplied the directive.
        origin: &'static str,
        /// The directive as given.
        directive: String,
        /// The parser's complaint.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// `init` was called twice, or another subscriber was installed first.
    #[error("a global tracing subscriber is already installed")]
    AlreadyInitialised(#[source] tracing_subscriber::util::TryInitError),
}

/// Installs the global subscriber. `level` is an EnvFilter directive (`--log-level`); a non-empty
/// `RUST_LOG` overrides it so that debugging a deployed operator needs no flag change.
pub fn init(level: &str, format: LogFormat) -> Result<(), TelemetryError> {
    let filter = filter(std::env::var("RUST_LOG").ok(), level)?;
    match format {
        LogFormat::Text => tracing_subscriber::registry()
            .with(filter)
            // Colours only on a terminal: escape codes would garble collected container logs.
            .with(text_layer(io::stderr, io::stderr().is_terminal()))
            .try_init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(filter)
            .with(json_layer(io::stderr))
            .try_init(),
    }
    .map_err(TelemetryError::AlreadyInitialised)
}

/// Chooses the directive (`RUST_LOG` wins when non-empty) and parses it.
fn filter(rust_log: Option<String>, level: &str) -> Result<EnvFilter, TelemetryError> {
    let (origin, directive) = match rust_log.filter(|v| !v.trim().is_empty()) {
        Some(v) => ("RUST_LOG", v),
        None => ("--log-level", level.to_string()),
    };
    EnvFilter::try_new(&directive).map_err(|source| TelemetryError::InvalidFilter {
        origin,
        directive,
        source,
    })
}

fn text_layer<S, W>(writer: W, ansi: bool) -> impl tracing_subscriber::Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(writer)
}

fn json_layer<S, W>(writer: W) -> impl tracing_subscriber::Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // JsonFields stores each span's fields as a JSON object string, which FlatJson merges.
    tracing_subscriber::fmt::layer()
        .fmt_fields(JsonFields::new())
        .event_format(FlatJson)
        .with_writer(writer)
}

/// The JSON event format described in the module docs.
struct FlatJson;

impl<S> FormatEvent<S, JsonFields> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            jiff::Timestamp::now().to_string().into(),
        );
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());

        let mut span_names = Vec::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                span_names.push(Value::from(span.name()));
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<JsonFields>>() else {
                    continue;
                };
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&fields.fields) {
                    line.extend(fields);
                }
            }
        }

        let mut visitor = JsonVisitor(&mut line);
        event.record(&mut visitor);
        if !span_names.is_empty() {
            line.insert("spans".into(), Value::Array(span_names));
        }
        let json = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{json}")
    }
}

/// Collects event fields into the JSON line, keeping numbers and booleans typed.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl tracing::field::Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing::{debug, info, info_span};

    use super::*;

    /// A `MakeWriter` that appends to a shared buffer, so a test can read what was logged.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Buffer {
        fn contents(&self) -> String {
            String::from_utf8(self.0.lock().expect("buffer lock").clone()).expect("utf-8")
        }
    }

    impl io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("buffer lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn log_a_reconcile() {
        let outer = info_span!("controller", controller = "tfjob");
        let _outer = outer.enter();
        let span = info_span!("reconcile", namespace = "team-a", name = "mnist");
        let _span = span.enter();
        debug!("hidden at info level");
        info!(pods = 3u64, ok = true, "created pods");
    }

    #[test]
    fn json_lines_are_flat_and_carry_span_fields() {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::registry()
            .with(filter(None, "info").expect("filter"))
            .with(json_layer(buffer.clone()));
        tracing::subscriber::with_default(subscriber, log_a_reconcile);

        let output = buffer.contents();
        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(lines.len(), 1, "debug is filtered out: {output}");
        let line: Value = serde_json::from_str(lines[0]).expect("valid JSON");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "created pods");
        assert_eq!(line["namespace"], "team-a");
        assert_eq!(
            line["name"], "mnist",
            "the span's own name must not clobber it"
        );
        assert_eq!(line["controller"], "tfjob");
        assert_eq!(line["pods"], 3);
        assert_eq!(line["ok"], true);
        assert_eq!(
            line["spans"],
            serde_json::json!(["controller", "reconcile"])
        );
        assert!(
            line["target"]
                .as_str()
                .is_some_and(|t| t.contains("telemetry"))
        );
        assert!(line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    }

    #[test]
    fn text_lines_show_span_fields() {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::registry()
            .with(filter(None, "info").expect("filter"))
            .with(text_layer(buffer.clone(), false));
        tracing::subscriber::with_default(subscriber, log_a_reconcile);

        let output = buffer.contents();
        assert!(!output.contains("hidden"), "{output}");
        assert!(output.contains("created pods"), "{output}");
        assert!(output.contains("namespace=\"team-a\""), "{output}");
        assert!(output.contains("name=\"mnist\""), "{output}");
    }

    #[test]
    fn rust_log_overrides_the_flag() {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::registry()
            .with(filter(Some("debug".into()), "error").expect("filter"))
            .with(text_layer(buffer.clone(), false));
        tracing::subscriber::with_default(subscriber, log_a_reconcile);
        assert!(buffer.contents().contains("hidden at info level"));
    }

    #[test]
    fn empty_rust_log_falls_back_to_the_flag() {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::registry()
            .with(filter(Some(" ".into()), "warn").expect("filter"))
            .with(text_layer(buffer.clone(), false));
        tracing::subscriber::with_default(subscriber, log_a_reconcile);
        assert_eq!(buffer.contents(), "");
    }

    #[test]
    fn bad_directives_name_their_origin() {
        let err = filter(None, "a=b=c").expect_err("bad flag");
        assert!(err.to_string().contains("--log-level"), "{err}");
        let err = filter(Some("a=b=c".into()), "info").expect_err("bad RUST_LOG");
        assert!(err.to_string().contains("RUST_LOG"), "{err}");
    }
}
