//! Logs and traces. Every command logs to standard error through one subscriber: readable lines
//! on a terminal (colour only there, never with `NO_COLOR`), or one JSON object per line for
//! collectors. With an OTLP endpoint, spans are also exported as traces over OTLP/HTTP by a batch
//! processor on its own thread; [`Telemetry::shutdown`] flushes what is left at exit.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The installed subscriber, and the trace exporter if any.
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Installs the subscriber: `format` is `human` or `json`; `otlp_endpoint` is the collector's
    /// base URL (e.g. `http://collector:4318`), traces going to its `/v1/traces`. Call it outside
    /// an async runtime: the exporter's HTTP client is a blocking one on its own thread.
    pub fn init(format: &str, otlp_endpoint: Option<&str>) -> Result<Self, String> {
        let filter =
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
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
            tracing_opentelemetry::layer().with_tracer(provider.tracer("tournee-server"))
        });
        tracing_subscriber::registry()
            .with(filter)
            .with(logs)
            .with(layer)
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
