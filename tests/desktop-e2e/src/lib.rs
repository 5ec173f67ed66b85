//! A minimal W3C WebDriver client for driving the real desktop app through `tauri-driver` (which hands
//! the session to WebKitWebDriver): start a session on an application binary, find elements by CSS,
//! click, type, run a script, take a screenshot. Only what the end-to-end test needs; every call is
//! plain JSON over HTTP on loopback.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

/// The key W3C WebDriver uses for an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Why a WebDriver call failed.
#[derive(Debug, thiserror::Error)]
pub enum WebDriverError {
    #[error("cannot reach the WebDriver server: {0}")]
    Http(String),
    /// The driver answered with a W3C error (`no such element`, `stale element reference`, …).
    #[error("WebDriver error {error}: {message}")]
    Driver { error: String, message: String },
    #[error("unexpected WebDriver answer: {0}")]
    Protocol(String),
    #[error("could not write the screenshot: {0}")]
    Io(#[from] std::io::Error),
}

/// One WebDriver session (one app process).
#[derive(Debug)]
pub struct Session {
    http: reqwest::Client,
    base: String,
    id: String,
}

/// A found element.
#[derive(Debug, Clone)]
pub struct Element(String);

fn http() -> Result<reqwest::Client, WebDriverError> {
    reqwest::Client::builder()
        // Starting the app (a WebKitGTK process under Xvfb) can take several seconds on a busy machine.
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| WebDriverError::Http(e.to_string()))
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, WebDriverError> {
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .map_err(|e| WebDriverError::Http(e.without_url().to_string()))?;
    let value: Value = response
        .json()
        .await
        .map_err(|e| WebDriverError::Protocol(e.to_string()))?;
    let value = value
        .get("value")
        .cloned()
        .ok_or_else(|| WebDriverError::Protocol(format!("no value in {value}")))?;
    if let Some(error) = value.get("error").and_then(Value::as_str) {
        return Err(WebDriverError::Driver {
            error: error.to_owned(),
            message: value
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        });
    }
    Ok(value)
}

/// Waits until `base/status` answers (the driver is listening).
pub async fn wait_for_driver(base: &str, within: Duration) -> Result<(), WebDriverError> {
    let http = http()?;
    let started = std::time::Instant::now();
    loop {
        if http.get(format!("{base}/status")).send().await.is_ok() {
            return Ok(());
        }
        if started.elapsed() > within {
            return Err(WebDriverError::Http(format!(
                "nothing answered at {base}/status within {within:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Session {
    /// Starts `application` through tauri-driver at `base` (e.g. `http://127.0.0.1:4444`).
    pub async fn start(base: &str, application: &Path) -> Result<Self, WebDriverError> {
        let http = http()?;
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "wry",
                    "tauri:options": { "application": application.display().to_string() }
                }
            }
        });
        let value = call(
            &http,
            reqwest::Method::POST,
            &format!("{base}/session"),
            Some(capabilities),
        )
        .await?;
        let id = value
            .get("sessionId")
            .and_then(Value::as_str)
            .ok_or_else(|| WebDriverError::Protocol(format!("no sessionId in {value}")))?
            .to_owned();
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            id,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.base, self.id)
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, WebDriverError> {
        call(
            &self.http,
            reqwest::Method::POST,
            &self.url(path),
            Some(body),
        )
        .await
    }

    async fn get(&self, path: &str) -> Result<Value, WebDriverError> {
        call(&self.http, reqwest::Method::GET, &self.url(path), None).await
    }

    /// The first element matching a CSS selector.
    pub async fn find(&self, css: &str) -> Result<Element, WebDriverError> {
        let value = self
            .post("/element", json!({ "using": "css selector", "value": css }))
            .await?;
        value
            .get(ELEMENT_KEY)
            .and_then(Value::as_str)
            .map(|id| Element(id.to_owned()))
            .ok_or_else(|| WebDriverError::Protocol(format!("no element reference in {value}")))
    }

    pub async fn click(&self, element: &Element) -> Result<(), WebDriverError> {
        self.post(&format!("/element/{}/click", element.0), json!({}))
            .await
            .map(|_| ())
    }

    /// Empties an input.
    pub async fn clear(&self, element: &Element) -> Result<(), WebDriverError> {
        self.post(&format!("/element/{}/clear", element.0), json!({}))
            .await
            .map(|_| ())
    }

    /// Types `text` into an element (focusing it first, as a person would).
    pub async fn type_text(&self, element: &Element, text: &str) -> Result<(), WebDriverError> {
        self.post(
            &format!("/element/{}/value", element.0),
            json!({ "text": text }),
        )
        .await
        .map(|_| ())
    }

    /// Runs a script in the page (`return …;` gives its value back).
    pub async fn script(&self, script: &str) -> Result<Value, WebDriverError> {
        self.post("/execute/sync", json!({ "script": script, "args": [] }))
            .await
    }

    /// Saves a PNG of the window.
    pub async fn screenshot(&self, path: &Path) -> Result<(), WebDriverError> {
        let value = self.get("/screenshot").await?;
        let data = value
            .as_str()
            .ok_or_else(|| WebDriverError::Protocol("the screenshot is not a string".into()))?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| WebDriverError::Protocol(e.to_string()))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }

    /// Ends the session (the driver closes the app).
    pub async fn end(self) -> Result<(), WebDriverError> {
        call(
            &self.http,
            reqwest::Method::DELETE,
            &format!("{}/session/{}", self.base, self.id),
            None,
        )
        .await
        .map(|_| ())
    }
}
