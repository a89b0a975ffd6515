//! Logs and traces. Every command logs to standard error through one subscriber: readable lines
//! on a terminal (colour only there, never with `NO_COLOR`), or one JSON object per line for
//! collectors. With an OTLP endpoint, spans are also exported as traces over OTLP/HTTP by a batch
//! processor on its own thread; [`Telemetry::shutdown`] flushes what is left at exit. The
//! events sqlx emits when a query gets its pooled connection feed the pool-wait histogram
//! ([`crate::metrics::pool_acquire_seconds`]), whatever the log level.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::field::{Field, Visit};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Where sqlx reports each pooled connection it hands out, with the time it took.
const POOL_ACQUIRE_TARGET: &str = "sqlx::pool::acquire";

/// The installed subscriber, and the trace exporter if any.
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Installs the subscriber: `format` is `human` or `json`; `otlp_endpoint` is the collector's
    /// base URL (e.g. `http://collector:4318`), traces going to its `/v1/traces`. Call it outside
    /// an async runtime: the exporter's HTTP client is a blocking one on its own thread.
    pub fn init(format: &str, otlp_endpoint: Option<&str>) -> Result<Self, String> {
        let filter = || {
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"))
        };
        let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
        let logs = if format == "json" {
            logs.json()
                .with_current_span(true)
                .with_span_list(false)
                .boxed()
        } else {
            let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            logs.with_ansi(colour).boxed()
        };
        let traces = match otlp_endpoint {
            Some(endpoint) => Some(exporter(endpoint)?),
            None => None,
        };
        let layer = traces.as_ref().map(|provider| {
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("tournee-server"))
                .with_filter(filter())
        });
        // Each layer filters for itself: the pool's acquire events reach the histogram even
        // where the logs leave them out.
        let acquires = PoolAcquires
            .with_filter(Targets::new().with_target(POOL_ACQUIRE_TARGET, tracing::Level::TRACE));
        tracing_subscriber::registry()
            .with(logs.with_filter(filter()))
            .with(layer)
            .with(acquires)
            .try_init()
            .map_err(|e| format!("logging: {e}"))?;
        if let Some(endpoint) = otlp_endpoint {
            tracing::info!(endpoint, "exporting traces over OTLP/HTTP");
        }
        Ok(Self { traces })
    }

    /// Flushes the spans not exported yet, and stops the exporter.
    pub fn shutdown(self) {
        if let Some(provider) = self.traces {
            if let Err(e) = provider.shutdown() {
                eprintln!("tournee-server: exporting the last traces: {e}");
            }
        }
    }
}

fn exporter(endpoint: &str) -> Result<SdkTracerProvider, String> {
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = SpanExporter::builder()
        .with_http()
        .with_endpoint(&url)
        .build()
        .map_err(|e| format!("--otlp-endpoint {endpoint}: {e}"))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name("tournee-server")
                .build(),
        )
        .build())
}

/// Records the wait sqlx reports with each pooled connection it hands out.
struct PoolAcquires;

impl<S: tracing::Subscriber> Layer<S> for PoolAcquires {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut wait = AcquireWait(None);
        event.record(&mut wait);
        if let Some(seconds) = wait.0 {
            crate::metrics::pool_acquire_seconds().observe(seconds);
        }
    }
}

/// The wait an acquire event carries (sqlx spells the field `aquired_after_secs`).
struct AcquireWait(Option<f64>);

impl Visit for AcquireWait {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name().ends_with("after_secs") {
            self.0 = Some(value);
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}
