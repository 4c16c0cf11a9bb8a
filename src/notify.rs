//! Webhook notifications (`[[notify]]` in the runbook): Slack-compatible JSON
//! (`{"text": …}`) about steps, gates, failures, rollbacks and the window, posted by a
//! background task fed from the journal's appends. The run never waits for a webhook: each
//! webhook has its own queue and worker, a failed post is retried with backoff, and every
//! try is journaled (`notification_delivered` / `notification_failed`, the URL without its
//! path, which is where webhook secrets live).

use std::collections::HashSet;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::describe::describe;
use crate::journal::Journal;
use crate::journal::events::{Event, Outcome, Record, StepStatus};
use crate::runbook::format::{Notify, NotifyEvent};

/// How hard a worker tries.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Tries per notification, the first included.
    pub attempts: u32,
    /// Wait before the second try; doubled before each next one.
    pub backoff: Duration,
    /// Connecting, and the whole request, each at most this long.
    pub timeout: Duration,
    /// Once the run has ended, how long pending notifications still get.
    pub grace: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            attempts: 5,
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(5),
            grace: Duration::from_secs(3),
        }
    }
}

/// One webhook, resolved.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: reqwest::Url,
    /// What the journal and messages show: scheme, host and port, no path or query.
    pub shown: String,
    /// Empty: every event.
    pub events: HashSet<NotifyEvent>,
}

/// `https://hooks.slack.com/…`: the path and query of a webhook URL are its secret.
pub fn redact(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port() {
        Some(p) => format!("{}://{host}:{p}/…", url.scheme()),
        None => format!("{}://{host}/…", url.scheme()),
    }
}

/// The runbook's `[[notify]]` entries resolved: `url` or the variable `url_env` names,
/// http or https. `env` reads an environment variable (a parameter so tests need not
/// change the process's environment).
pub fn targets(
    notify: &[Notify],
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Target>, String> {
    notify
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let at = format!("notify[{i}]");
            let raw = match (&n.url, &n.url_env) {
                (Some(u), None) => u.clone(),
                (None, Some(var)) => {
                    env(var).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                        format!("{at}: url_env names {var}, which is not set in the environment")
                    })?
                }
                _ => return Err(format!("{at}: give exactly one of url and url_env")),
            };
            let url = reqwest::Url::parse(raw.trim())
                .map_err(|e| format!("{at}: the webhook URL does not parse: {e}"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(format!(
                    "{at}: a webhook URL is http:// or https:// with a host"
                ));
            }
            Ok(Target {
                shown: redact(&url),
                url,
                events: n.events.iter().copied().collect(),
            })
        })
        .collect()
}

/// What a journal record tells the webhooks, if anything: its kind and the text.
pub fn message(rec: &Record, runbook: &str) -> Option<(NotifyEvent, String)> {
    let about = match &rec.event {
        Event::StepStarted { .. } => NotifyEvent::StepStarted,
        Event::StepFinished {
            status: StepStatus::Failed,
            ..
        } => NotifyEvent::Failure,
        Event::StepFinished { .. } => NotifyEvent::StepFinished,
        Event::GateOpened { .. } => NotifyEvent::GateWaiting,
        Event::GateDecided { .. } => NotifyEvent::GateDecided,
        Event::RollbackStarted { .. } | Event::RollbackFinished { .. } => NotifyEvent::Rollback,
        Event::WindowWarning { .. } | Event::WindowExceeded { .. } => NotifyEvent::WindowWarning,
        Event::RunFinished {
            outcome: Outcome::Failed | Outcome::ValidationFailed,
            ..
        } => NotifyEvent::Failure,
        Event::RunFinished {
            outcome: Outcome::RolledBack,
            ..
        } => NotifyEvent::Rollback,
        Event::RunFinished { .. } => NotifyEvent::StepFinished,
        _ => return None,
    };
    let (line, _) = describe(&rec.event)?;
    Some((about, format!("{runbook} · {}: {line}", rec.run_id)))
}

/// The Slack-compatible body.
pub fn body(text: &str) -> String {
    serde_json::json!({ "text": text }).to_string()
}

/// The running notifier: [`Notifier::offer`] every record the run appends, then
/// [`Notifier::finish`].
pub struct Notifier {
    queues: Vec<mpsc::UnboundedSender<(NotifyEvent, String)>>,
    targets: Vec<Target>,
    runbook: String,
    workers: Vec<JoinHandle<()>>,
    closing: watch::Sender<Option<Instant>>,
}

impl Notifier {
    /// One worker per target, journaling into `journal` under `run_id`.
    pub fn start(
        targets: Vec<Target>,
        runbook: &str,
        journal: Journal,
        run_id: &str,
        policy: Policy,
    ) -> Notifier {
        let client = reqwest::Client::builder()
            .connect_timeout(policy.timeout)
            .timeout(policy.timeout)
            .build()
            .expect("an HTTP client with timeouts only");
        let (closing, closed) = watch::channel(None);
        let mut queues = Vec::new();
        let mut workers = Vec::new();
        for t in &targets {
            let (tx, rx) = mpsc::unbounded_channel();
            queues.push(tx);
            workers.push(tokio::spawn(worker(
                t.clone(),
                rx,
                client.clone(),
                journal.clone(),
                run_id.to_string(),
                policy,
                closed.clone(),
            )));
        }
        Notifier {
            queues,
            targets,
            runbook: runbook.to_string(),
            workers,
            closing,
        }
    }

    /// Queue what `rec` tells the webhooks that want it. Never waits.
    pub fn offer(&self, rec: &Record) {
        let Some((about, text)) = message(rec, &self.runbook) else {
            return;
        };
        for (t, q) in self.targets.iter().zip(&self.queues) {
            if t.events.is_empty() || t.events.contains(&about) {
                let _ = q.send((about, text.clone()));
            }
        }
    }

    /// The run has ended: what is queued gets `grace` more, then is journaled as given up.
    pub async fn finish(self, grace: Duration) {
        let _ = self.closing.send(Some(Instant::now() + grace));
        drop(self.queues);
        for w in self.workers {
            let _ = w.await;
        }
    }
}

async fn worker(
    t: Target,
    mut rx: mpsc::UnboundedReceiver<(NotifyEvent, String)>,
    client: reqwest::Client,
    journal: Journal,
    run_id: String,
    policy: Policy,
    closed: watch::Receiver<Option<Instant>>,
) {
    let journal_it = |event: Event| {
        let (journal, run_id) = (journal.clone(), run_id.clone());
        async move {
            if let Err(e) = journal.append(&run_id, &event).await {
                tracing::warn!("journaling a webhook delivery: {e:#}");
            }
        }
    };
    while let Some((about, text)) = rx.recv().await {
        let about_name = about.name().to_string();
        let payload = body(&text);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let deadline = *closed.borrow();
            if deadline.is_some_and(|d| Instant::now() >= d) {
                journal_it(Event::NotificationFailed {
                    about: about_name.clone(),
                    url: t.shown.clone(),
                    attempt,
                    status: None,
                    error: "not sent: the run ended before it could be delivered".into(),
                    gives_up: true,
                })
                .await;
                break;
            }
            let sent = client
                .post(t.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(payload.clone())
                .send()
                .await;
            let (status, error) = match sent {
                Ok(r) if r.status().is_success() => {
                    journal_it(Event::NotificationDelivered {
                        about: about_name.clone(),
                        url: t.shown.clone(),
                        attempt,
                        status: r.status().as_u16(),
                    })
                    .await;
                    break;
                }
                Ok(r) => (
                    Some(r.status().as_u16()),
                    format!("the webhook answered {}", r.status()),
                ),
                // Without the URL: reqwest's message names it, path and all.
                Err(e) => (None, describe_error(&e)),
            };
            let gives_up = attempt >= policy.attempts;
            journal_it(Event::NotificationFailed {
                about: about_name.clone(),
                url: t.shown.clone(),
                attempt,
                status,
                error,
                gives_up,
            })
            .await;
            if gives_up {
                break;
            }
            let wait = policy.backoff * 2u32.saturating_pow(attempt - 1);
            let mut closed = closed.clone();
            // Wait out the backoff, but no longer than the end of the grace period.
            let until = Instant::now() + wait;
            loop {
                let cap = closed.borrow().map_or(until, |d| d.min(until));
                tokio::select! {
                    _ = tokio::time::sleep_until(cap) => break,
                    r = closed.changed() => if r.is_err() { break },
                }
            }
        }
    }
}

/// What went wrong, without the URL.
fn describe_error(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_request() {
        "the request failed"
    } else {
        "failed"
    };
    let mut cause = String::new();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    if cause.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {cause}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notify(url: Option<&str>, url_env: Option<&str>, events: &[NotifyEvent]) -> Notify {
        Notify {
            url: url.map(String::from),
            url_env: url_env.map(String::from),
            events: events.to_vec(),
        }
    }

    #[test]
    fn urls_resolve_from_the_runbook_or_the_environment_and_are_shown_without_their_secret() {
        let env = |k: &str| {
            (k == "SLACK_HOOK").then(|| "https://hooks.slack.com/services/T0/B0/SECRET".to_string())
        };
        let t = targets(&[notify(None, Some("SLACK_HOOK"), &[])], env).unwrap();
        assert_eq!(t[0].shown, "https://hooks.slack.com/…");
        assert!(!t[0].shown.contains("SECRET"));
        let t = targets(
            &[notify(
                Some("http://127.0.0.1:9000/hook?token=x"),
                None,
                &[],
            )],
            env,
        )
        .unwrap();
        assert_eq!(t[0].shown, "http://127.0.0.1:9000/…");
        for (bad, why) in [
            (notify(None, Some("UNSET"), &[]), "not set"),
            (
                notify(Some("http://x/"), Some("SLACK_HOOK"), &[]),
                "exactly one",
            ),
            (notify(None, None, &[]), "exactly one"),
            (notify(Some("ftp://x/"), None, &[]), "http:// or https://"),
            (notify(Some("not a url"), None, &[]), "does not parse"),
        ] {
            let e = targets(&[bad], env).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }

    fn rec(event: Event) -> Record {
        Record {
            seq: 1,
            ts: "2026-11-21T18:00:00Z".into(),
            run_id: "run-1".into(),
            prev_hash: String::new(),
            hash: String::new(),
            event,
        }
    }

    #[test]
    fn records_map_to_what_a_webhook_subscribes_to() {
        let cases = [
            (
                Event::StepStarted {
                    step: "load".into(),
                },
                Some(NotifyEvent::StepStarted),
            ),
            (
                Event::StepFinished {
                    step: "load".into(),
                    status: StepStatus::Failed,
                    message: "boom".into(),
                    duration_ms: 1,
                },
                Some(NotifyEvent::Failure),
            ),
            (
                Event::StepFinished {
                    step: "load".into(),
                    status: StepStatus::Passed,
                    message: "ok".into(),
                    duration_ms: 1,
                },
                Some(NotifyEvent::StepFinished),
            ),
            (
                Event::GateDecided {
                    gate: "go_live".into(),
                    decision: crate::journal::events::Decision::Go,
                },
                Some(NotifyEvent::GateDecided),
            ),
            (
                Event::RollbackStarted { reason: "x".into() },
                Some(NotifyEvent::Rollback),
            ),
            (
                Event::RunFinished {
                    outcome: Outcome::Failed,
                    exit_code: 1,
                    message: "x".into(),
                },
                Some(NotifyEvent::Failure),
            ),
            (
                Event::NotificationDelivered {
                    about: "step_started".into(),
                    url: "http://x/…".into(),
                    attempt: 1,
                    status: 200,
                },
                None,
            ),
        ];
        for (event, want) in cases {
            let got = message(&rec(event.clone()), "TMS");
            assert_eq!(got.as_ref().map(|m| m.0), want, "{event:?}");
            if let Some((_, text)) = got {
                assert!(text.starts_with("TMS · run-1: "), "{text}");
            }
        }
        let b: serde_json::Value = serde_json::from_str(&body("a \"quoted\" text")).unwrap();
        assert_eq!(b["text"], "a \"quoted\" text");
    }
}
