//! The OTLP trace messages the gateway sends (`opentelemetry/proto/collector/trace/v1` and
//! the `common`, `resource` and `trace` messages they use), as prost structs. Field
//! numbers follow the OTLP 1.x protos; only what the gateway writes is declared.

/// `ExportTraceServiceRequest`
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportTraceServiceRequest {
    /// Spans grouped by resource.
    #[prost(message, repeated, tag = "1")]
    pub resource_spans: Vec<ResourceSpans>,
}

/// `ExportTraceServiceResponse`
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportTraceServiceResponse {
    /// Set when the receiver rejected some spans.
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<ExportTracePartialSuccess>,
}

/// `ExportTracePartialSuccess`
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportTracePartialSuccess {
    /// Spans rejected.
    #[prost(int64, tag = "1")]
    pub rejected_spans: i64,
    /// Why.
    #[prost(string, tag = "2")]
    pub error_message: String,
}

/// `ResourceSpans`
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceSpans {
    /// The resource (service).
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    /// Spans by instrumentation scope.
    #[prost(message, repeated, tag = "2")]
    pub scope_spans: Vec<ScopeSpans>,
    /// Schema URL.
    #[prost(string, tag = "3")]
    pub schema_url: String,
}

/// `Resource`
#[derive(Clone, PartialEq, prost::Message)]
pub struct Resource {
    /// `service.name`...
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

/// `ScopeSpans`
#[derive(Clone, PartialEq, prost::Message)]
pub struct ScopeSpans {
    /// Instrumentation scope.
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    /// The spans.
    #[prost(message, repeated, tag = "2")]
    pub spans: Vec<Span>,
    /// Schema URL.
    #[prost(string, tag = "3")]
    pub schema_url: String,
}

/// `InstrumentationScope`
#[derive(Clone, PartialEq, prost::Message)]
pub struct InstrumentationScope {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Version.
    #[prost(string, tag = "2")]
    pub version: String,
}

/// `Span`
#[derive(Clone, PartialEq, prost::Message)]
pub struct Span {
    /// 16 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    /// 8 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub span_id: Vec<u8>,
    /// W3C tracestate.
    #[prost(string, tag = "3")]
    pub trace_state: String,
    /// 8 bytes, empty for a root span.
    #[prost(bytes = "vec", tag = "4")]
    pub parent_span_id: Vec<u8>,
    /// Name.
    #[prost(string, tag = "5")]
    pub name: String,
    /// The span kind (`SpanKind` values below).
    #[prost(int32, tag = "6")]
    pub kind: i32,
    /// Start, Unix ns.
    #[prost(fixed64, tag = "7")]
    pub start_time_unix_nano: u64,
    /// End, Unix ns.
    #[prost(fixed64, tag = "8")]
    pub end_time_unix_nano: u64,
    /// Attributes.
    #[prost(message, repeated, tag = "9")]
    pub attributes: Vec<KeyValue>,
    /// Events.
    #[prost(message, repeated, tag = "11")]
    pub events: Vec<Event>,
    /// Events not recorded.
    #[prost(uint32, tag = "12")]
    pub dropped_events_count: u32,
    /// Status.
    #[prost(message, optional, tag = "15")]
    pub status: Option<Status>,
    /// W3C trace flags (and the has-remote-parent bits).
    #[prost(fixed32, tag = "16")]
    pub flags: u32,
}

/// `Span.Event`
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Time, Unix ns.
    #[prost(fixed64, tag = "1")]
    pub time_unix_nano: u64,
    /// Name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Attributes.
    #[prost(message, repeated, tag = "3")]
    pub attributes: Vec<KeyValue>,
}

/// `Status`
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    /// Message (errors only).
    #[prost(string, tag = "2")]
    pub message: String,
    /// 0 unset, 1 ok, 2 error.
    #[prost(int32, tag = "3")]
    pub code: i32,
}

/// `SpanKind` values.
pub mod span_kind {
    /// INTERNAL
    pub const INTERNAL: i32 = 1;
    /// SERVER
    pub const SERVER: i32 = 2;
    /// CLIENT
    pub const CLIENT: i32 = 3;
}

/// `Status.code` values.
pub mod status_code {
    /// UNSET
    pub const UNSET: i32 = 0;
    /// ERROR
    pub const ERROR: i32 = 2;
}

/// `KeyValue`
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    /// Key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// Value.
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

/// `AnyValue`
#[derive(Clone, PartialEq, prost::Message)]
pub struct AnyValue {
    /// The value.
    #[prost(oneof = "any_value::Value", tags = "1, 2, 3, 4, 5")]
    pub value: Option<any_value::Value>,
}

/// `AnyValue.value`
pub mod any_value {
    /// One of the value kinds.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        /// string_value
        #[prost(string, tag = "1")]
        String(String),
        /// bool_value
        #[prost(bool, tag = "2")]
        Bool(bool),
        /// int_value
        #[prost(int64, tag = "3")]
        Int(i64),
        /// double_value
        #[prost(double, tag = "4")]
        Double(f64),
        /// array_value
        #[prost(message, tag = "5")]
        Array(super::ArrayValue),
    }
}

/// `ArrayValue`
#[derive(Clone, PartialEq, prost::Message)]
pub struct ArrayValue {
    /// Values.
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<AnyValue>,
}

/// A string attribute.
pub fn kv_str(key: &str, v: impl Into<String>) -> KeyValue {
    kv(key, any_value::Value::String(v.into()))
}

/// An integer attribute.
pub fn kv_int(key: &str, v: i64) -> KeyValue {
    kv(key, any_value::Value::Int(v))
}

/// A float attribute.
pub fn kv_f64(key: &str, v: f64) -> KeyValue {
    kv(key, any_value::Value::Double(v))
}

/// A string-array attribute.
pub fn kv_strs(key: &str, v: &[String]) -> KeyValue {
    kv(
        key,
        any_value::Value::Array(ArrayValue {
            values: v
                .iter()
                .map(|s| AnyValue {
                    value: Some(any_value::Value::String(s.clone())),
                })
                .collect(),
        }),
    )
}

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(v) }),
    }
}
