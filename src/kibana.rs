//! Kibana as haelk sees it: the overall level of `GET /api/status`, read through
//! a tunnel to the instance's jail address.

use std::time::Duration;

use serde::Deserialize;

/// Kibana's own verdict on itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KibanaStatus {
    /// `available`, `degraded`, `unavailable` or `critical`.
    pub level: String,
    pub summary: String,
}

impl KibanaStatus {
    pub fn is_available(&self) -> bool {
        self.level == "available"
    }
}

#[derive(Deserialize)]
struct StatusBody {
    status: StatusField,
}

#[derive(Deserialize)]
struct StatusField {
    overall: Overall,
}

#[derive(Deserialize)]
struct Overall {
    level: String,
    #[serde(default)]
    summary: String,
}

/// Reads `/api/status` at `base` (`http://ADDRESS:PORT`). Kibana answers 503 with
/// the same body while unavailable, so the body is read whatever the status code.
pub async fn status(base: &str) -> Result<KibanaStatus, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .get(format!("{base}/api/status"))
        .send()
        .await
        .map_err(|e| format!("GET /api/status: {e}"))?;
    let code = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| format!("GET /api/status: {e}"))?;
    parse_status(&body).ok_or_else(|| format!("GET /api/status answered {code}: {body}"))
}

fn parse_status(body: &str) -> Option<KibanaStatus> {
    let body: StatusBody = serde_json::from_str(body).ok()?;
    Some(KibanaStatus {
        level: body.status.overall.level,
        summary: body.status.overall.summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overall_level_is_read_from_the_status_body() {
        let status = parse_status(
            r#"{"name":"k1","status":{"overall":{"level":"unavailable","summary":"Waiting for Elasticsearch"},"core":{}}}"#,
        )
        .unwrap();
        assert_eq!(status.level, "unavailable");
        assert!(!status.is_available());
        assert_eq!(parse_status("<html>"), None);
    }
}
