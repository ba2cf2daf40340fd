//! Each engine's error responses, with the status codes the real servers use.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::config::EngineKind;

/// What went wrong with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// The body is not JSON.
    Malformed(String),
    /// A required field is absent.
    Missing(&'static str),
    /// A field has a bad value.
    Invalid(String),
    /// Prompt (+ max_tokens) does not fit the context.
    ContextOverflow {
        /// Prompt tokens.
        prompt: u32,
        /// Requested output tokens, if given.
        max_tokens: Option<u32>,
        /// Context window.
        context: u32,
    },
    /// Another model was asked for.
    UnknownModel(String),
    /// The queue is full (TGI).
    Overloaded,
}

impl ApiError {
    /// The response `engine` would send.
    pub fn response(&self, engine: EngineKind) -> Response {
        match engine {
            EngineKind::Vllm | EngineKind::Sglang => self.openai_style(engine),
            EngineKind::Tgi => self.tgi(),
            EngineKind::Llamacpp => self.llamacpp(),
        }
    }

    /// vLLM's `ErrorResponse` (SGLang uses the same shape).
    fn openai_style(&self, engine: EngineKind) -> Response {
        let (code, kind, message) = match self {
            ApiError::Malformed(e) => (
                400,
                "BadRequestError",
                format!(
                    "[{{'type': 'json_invalid', 'loc': ('body', 0), 'msg': 'JSON decode error', 'input': {{}}, 'ctx': {{'error': '{e}'}}}}]"
                ),
            ),
            ApiError::Missing(f) => (
                400,
                "BadRequestError",
                format!(
                    "[{{'type': 'missing', 'loc': ('body', '{f}'), 'msg': 'Field required', 'input': {{}}}}]"
                ),
            ),
            ApiError::Invalid(m) => (400, "BadRequestError", m.clone()),
            ApiError::ContextOverflow {
                prompt,
                max_tokens,
                context,
            } => {
                let m = match (engine, max_tokens) {
                    (EngineKind::Sglang, _) => format!(
                        "The input ({prompt} tokens) is longer than the model's context length ({context} tokens)."
                    ),
                    (_, Some(m)) => format!(
                        "This model's maximum context length is {context} tokens. However, you requested {} tokens ({prompt} in the messages, {m} in the completion). Please reduce the length of the messages or completion.",
                        prompt + m
                    ),
                    (_, None) => format!(
                        "This model's maximum context length is {context} tokens. However, your request has {prompt} input tokens. Please reduce the length of the input messages."
                    ),
                };
                (400, "BadRequestError", m)
            }
            ApiError::UnknownModel(m) => (
                404,
                "NotFoundError",
                format!("The model `{m}` does not exist."),
            ),
            ApiError::Overloaded => (
                503,
                "ServiceUnavailableError",
                "The server is overloaded.".into(),
            ),
        };
        let body = json!({"object": "error", "message": message, "type": kind, "param": null, "code": code});
        json_response(code, body.to_string())
    }

    /// TGI's `{"error", "error_type"}`; bad JSON is rejected by axum's extractor before
    /// TGI sees it (plain text, 400 for syntax, 422 for a missing field).
    fn tgi(&self) -> Response {
        let (code, error, kind) = match self {
            ApiError::Malformed(e) => {
                return text_response(
                    400,
                    format!("Failed to parse the request body as JSON: {e}"),
                );
            }
            ApiError::Missing(f) => {
                return text_response(
                    422,
                    format!(
                        "Failed to deserialize the JSON body into the target type: missing field `{f}`"
                    ),
                );
            }
            ApiError::Invalid(m) => (422, format!("Input validation error: {m}"), "validation"),
            ApiError::ContextOverflow {
                prompt,
                max_tokens,
                context,
            } => (
                422,
                format!(
                    "Input validation error: `inputs` tokens + `max_new_tokens` must be <= {context}. Given: {prompt} `inputs` tokens and {} `max_new_tokens`",
                    max_tokens.unwrap_or(0)
                ),
                "validation",
            ),
            ApiError::UnknownModel(m) => (
                422,
                format!("Input validation error: model `{m}` is not served"),
                "validation",
            ),
            ApiError::Overloaded => (429, "Model is overloaded".to_string(), "overloaded"),
        };
        json_response(
            code,
            json!({"error": error, "error_type": kind}).to_string(),
        )
    }

    /// llama.cpp server's `{"error": {code, message, type}}`.
    fn llamacpp(&self) -> Response {
        let (code, message, kind) = match self {
            ApiError::Malformed(e) => (
                500,
                format!("[json.exception.parse_error.101] parse error: {e}"),
                "server_error",
            ),
            ApiError::Missing(f) => (400, format!("'{f}' is required"), "invalid_request_error"),
            ApiError::Invalid(m) => (400, m.clone(), "invalid_request_error"),
            ApiError::ContextOverflow {
                prompt, context, ..
            } => {
                let body = json!({"error": {
                    "code": 400,
                    "message": format!("request ({prompt} tokens) exceeds the available context size ({context} tokens), try increasing it"),
                    "type": "exceed_context_size_error",
                    "n_prompt_tokens": prompt,
                    "n_ctx": context,
                }});
                return json_response(400, body.to_string());
            }
            ApiError::UnknownModel(m) => (404, format!("model '{m}' not found"), "not_found_error"),
            ApiError::Overloaded => (503, "Loading model".to_string(), "unavailable_error"),
        };
        json_response(
            code,
            json!({"error": {"code": code, "message": message, "type": kind}}).to_string(),
        )
    }
}

pub(crate) fn json_response(code: u16, body: String) -> Response {
    let mut r = (
        StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
        body,
    )
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn text_response(code: u16, body: String) -> Response {
    let mut r = (
        StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
        body,
    )
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
