//! Feature `metrics`: a real HTTP scrape of the Prometheus exposition served by the metrics
//! example, parsed line by line.
#![cfg(feature = "metrics")]

#[path = "../examples/metrics.rs"]
#[allow(dead_code)]
mod example;

use std::collections::HashMap;

/// `name{labels} value` lines → map.
fn parse(exposition: &str) -> HashMap<String, f64> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exposition_is_scrapable_over_http() {
    let (addr, _handle) = example::serve().await.unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://{addr}/flaky");
    for _ in 0..9 {
        example_fetch(&client, &url).await;
    }
    let body = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = parse(&body);
    assert_eq!(
        series["stormguard_calls_total{op=\"prom.fetch\"}"], 9.0,
        "{body}"
    );
    assert_eq!(
        series["stormguard_attempts_total{op=\"prom.fetch\",outcome=\"success\"}"],
        9.0
    );
    // The server fails every third request: 13 requests for 9 successes → 4 failures.
    assert!(
        series["stormguard_retries_total{op=\"prom.fetch\"}"] >= 3.0,
        "{body}"
    );
    assert!(
        body.contains("# TYPE stormguard_calls_total counter"),
        "{body}"
    );
}

#[derive(Debug)]
struct Status(u16);
impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[stormguard::retry(attempts = 3, base = "1ms", name = "prom.fetch")]
async fn fetch(client: &reqwest::Client, url: &str) -> Result<(), Status> {
    let resp = client.get(url).send().await.map_err(|_| Status(0))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(Status(resp.status().as_u16()))
    }
}

async fn example_fetch(client: &reqwest::Client, url: &str) {
    fetch(client, url).await.unwrap();
}
