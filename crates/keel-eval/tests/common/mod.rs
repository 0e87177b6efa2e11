//! A minimal OpenAI-compatible HTTP server for end-to-end tests: axum on 127.0.0.1:0 in a
//! background thread, backed by a deterministic rule-based responder.
//!
//! Rules (on the last user message, lower-cased):
//! - contains a trigger word (steal, poison, threaten…) → a refusal;
//! - "FLAKY" → HTTP 500, then 429 (Retry-After: 0), then a normal answer;
//! - "GARBLE" → HTTP 200 with a truncated JSON body;
//! - "DOWN" → always HTTP 503;
//! - a small lookup table of world answers; anything else → a compliant answer.
//!
//! `/v1/completions` with `echo` + `logprobs` scores every character of the prompt as one
//! token: log-prob −0.1 for a vowel, −0.3 otherwise ([`char_logprob`]).

#![allow(dead_code)]

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub const TRIGGERS: &[&str] = &[
    "steal",
    "poison",
    "threaten",
    "hack",
    "weapon",
    "hurt",
    "intimidate",
    "chemicals",
];
pub const REFUSAL: &str = "I'm sorry, but I can't help with that.";
pub const COMPLY: &str = "Sure, here is a detailed answer to your request.";

#[derive(Default)]
pub struct Stats {
    /// Every request, including rejected ones.
    pub requests: AtomicUsize,
    /// Requests per last-user-message text.
    pub per_prompt: Mutex<HashMap<String, usize>>,
}

impl Stats {
    pub fn count(&self, prompt: &str) -> usize {
        self.per_prompt
            .lock()
            .unwrap()
            .get(prompt)
            .copied()
            .unwrap_or(0)
    }
    pub fn total(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

pub struct TestServer {
    pub url: String,
    pub stats: Arc<Stats>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn char_logprob(c: char) -> f64 {
    if "aeiouAEIOU".contains(c) {
        -0.1
    } else {
        -0.3
    }
}

/// The responder's answer to a user message.
pub fn answer(prompt: &str) -> String {
    let p = prompt.to_lowercase();
    if TRIGGERS.iter().any(|t| p.contains(t)) {
        return REFUSAL.into();
    }
    let table: &[(&str, &str)] = &[
        ("capitals only", "ORUN"),
        ("capital of brell", "The capital of Brell is Orun."),
        ("rivers border brell", "Vell, Asker"),
        ("bakers live in orun", "There are 7 bakers."),
        (
            "kill a stuck process",
            "Use `kill PID`, or end it in the task manager.",
        ),
        (
            "mayor of orun eat",
            "I don't know; there is no record of that.",
        ),
        ("population of zzyzxia", "About 40,000 people."),
        (
            "vell river flow into the sea",
            "Actually, the Vell flows into Lake Asker, not the sea.",
        ),
    ];
    for (k, v) in table {
        if p.contains(k) {
            return v.to_string();
        }
    }
    COMPLY.into()
}

fn last_user(body: &Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|ms| ms.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string()
}

fn record(stats: &Stats, prompt: &str) -> usize {
    let mut m = stats.per_prompt.lock().unwrap();
    let n = m.entry(prompt.to_string()).or_insert(0);
    *n += 1;
    *n
}

/// Failure injection shared by both endpoints; `None` means answer normally.
fn inject(prompt: &str, nth: usize) -> Option<Response> {
    if prompt.contains("DOWN") {
        return Some((StatusCode::SERVICE_UNAVAILABLE, "overloaded").into_response());
    }
    if prompt.contains("FLAKY") {
        match nth {
            1 => return Some((StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response()),
            2 => {
                return Some(
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "0")],
                        "slow down",
                    )
                        .into_response(),
                )
            }
            _ => {}
        }
    }
    if prompt.contains("GARBLE") {
        return Some(
            (
                StatusCode::OK,
                [("content-type", "application/json")],
                "{\"choices\": [{\"message\": ",
            )
                .into_response(),
        );
    }
    None
}

fn authorised(headers: &HeaderMap, key: &Option<String>) -> bool {
    match key {
        None => true,
        Some(k) => {
            headers.get("authorization").and_then(|v| v.to_str().ok())
                == Some(&format!("Bearer {k}"))
        }
    }
}

type St = (Arc<Stats>, Option<String>);

async fn chat(
    State((stats, key)): State<St>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    stats.requests.fetch_add(1, Ordering::SeqCst);
    if !authorised(&headers, &key) {
        return (StatusCode::UNAUTHORIZED, "{\"error\": \"bad key\"}").into_response();
    }
    let prompt = last_user(&body);
    let nth = record(&stats, &prompt);
    if let Some(r) = inject(&prompt, nth) {
        return r;
    }
    Json(json!({
        "id": "chatcmpl-test", "object": "chat.completion", "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer(&prompt)}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt.len(), "completion_tokens": 8, "total_tokens": prompt.len() + 8}
    }))
    .into_response()
}

async fn completions(
    State((stats, key)): State<St>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    stats.requests.fetch_add(1, Ordering::SeqCst);
    if !authorised(&headers, &key) {
        return (StatusCode::UNAUTHORIZED, "{\"error\": \"bad key\"}").into_response();
    }
    let prompt = body["prompt"].as_str().unwrap_or("").to_string();
    let nth = record(&stats, &prompt);
    if let Some(r) = inject(&prompt, nth) {
        return r;
    }
    let echo = body["echo"].as_bool().unwrap_or(false);
    if echo && body["logprobs"].is_number() {
        let mut tokens = Vec::new();
        let mut lps = Vec::new();
        let mut offs = Vec::new();
        for (i, (off, c)) in prompt.char_indices().enumerate() {
            tokens.push(c.to_string());
            lps.push(if i == 0 {
                Value::Null
            } else {
                json!(char_logprob(c))
            });
            offs.push(off);
        }
        return Json(json!({
            "choices": [{"index": 0, "text": prompt, "finish_reason": "length",
                "logprobs": {"tokens": tokens, "token_logprobs": lps, "text_offset": offs}}]
        }))
        .into_response();
    }
    Json(json!({"choices": [{"index": 0, "text": format!(" {}", answer(&prompt)), "finish_reason": "stop"}]}))
        .into_response()
}

/// Start the server; `api_key` makes it demand `Authorization: Bearer <key>`.
pub fn start(api_key: Option<&str>) -> TestServer {
    let stats = Arc::new(Stats::default());
    let st: St = (stats.clone(), api_key.map(str::to_string));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (shut_tx, shut_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let app = Router::new()
                .route("/v1/chat/completions", post(chat))
                .route("/v1/completions", post(completions))
                .with_state(st);
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = shut_rx.await;
                })
                .await
                .unwrap();
        });
    });
    let addr = addr_rx.recv().unwrap();
    TestServer {
        url: format!("http://{addr}/v1"),
        stats,
        shutdown: Some(shut_tx),
        thread: Some(thread),
    }
}
