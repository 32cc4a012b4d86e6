//! `gatehouse demo-agent`: a guided tour for newcomers. A small agent talks to a running
//! `gatehouse serve` exactly as a real one would, and says in plain words what happens:
//!
//! 1. it reads the server's metadata (RFC 8414) and registers itself (RFC 7591) as a confidential
//!    client named "Demo agent", with a loopback redirect it serves itself;
//! 2. it asks consent for `mail:read mail:send` (authorization code + PKCE S256), waits for the
//!    person to approve in the serve terminal, catches the code on its loopback listener and
//!    exchanges it;
//! 3. it asks approval to email the Q3 budget deck to an external Alex through OpenID CIBA
//!    (`/bc-authorize` with RFC 9396 `authorization_details`) and polls the token endpoint,
//!    honouring `interval` and `slow_down`;
//! 4. on approval, introspection shows the token carries exactly the approved details.
//!
//! It never sends any email. Tokens are never printed whole.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::cli::DemoAgentArgs;

/// The grant type of OpenID CIBA at the token endpoint.
pub const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";
/// What the demo agent asks consent for.
pub const SCOPE: &str = "mail:read mail:send";
/// The message shown both by the agent and on the approval card, so the person can match them.
pub const BINDING_MESSAGE: &str = "Send Q3 budget deck to Alex";
/// How long the demo waits for the person at most, whatever the server says.
const PATIENCE: Duration = Duration::from_secs(15 * 60);

/// The action the demo agent asks to perform: the seed story's email to the wrong Alex.
pub fn email_details() -> Value {
    json!([{
        "type": "message_send",
        "channel": "email",
        "recipients": ["alex@contractor.example"],
        "subject": "Q3 budget deck",
        "attachments": ["q3-budget.pdf"],
    }])
}

fn say(text: impl AsRef<str>) {
    println!("{}", text.as_ref());
}

fn step(n: u8, title: &str) {
    say(format!("\nStep {n}: {title}"));
}

/// A token shown only by its first characters: enough to recognise, useless to steal.
pub fn redact(token: &str) -> String {
    let head: String = token.chars().take(12).collect();
    format!("{head}…")
}

/// An RFC 7636 verifier (43 characters) and its S256 challenge.
pub fn pkce_pair() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn random_state() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An OAuth error answer in a sentence: `access_denied (the person said no)`.
fn oauth_error(body: &Value) -> String {
    let error = body["error"].as_str().unwrap_or("unknown_error");
    match body["error_description"].as_str() {
        Some(d) => format!("{error} ({d})"),
        None => error.to_owned(),
    }
}

/// What one poll of the CIBA token request means to the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    Approved(Value),
    Pending,
    SlowDown,
    Denied,
    Expired,
    Failed(String),
}

/// Reads a token-endpoint answer to a CIBA poll.
pub fn classify_poll(status: StatusCode, body: &Value) -> Poll {
    if status.is_success() && body["access_token"].is_string() {
        return Poll::Approved(body.clone());
    }
    match body["error"].as_str() {
        Some("authorization_pending") => Poll::Pending,
        Some("slow_down") => Poll::SlowDown,
        Some("access_denied") => Poll::Denied,
        Some("expired_token") => Poll::Expired,
        _ => Poll::Failed(format!("HTTP {status}: {}", oauth_error(body))),
    }
}

struct Agent {
    http: reqwest::Client,
    client_id: String,
    client_secret: String,
}

impl Agent {
    /// POSTs a form to `url` with HTTP Basic client authentication; returns status and JSON body.
    async fn post(&self, url: &str, form: &[(&str, &str)]) -> Result<(StatusCode, Value)> {
        let res = self
            .http
            .post(url)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(form)
            .send()
            .await
            .with_context(|| format!("POST {url} failed"))?;
        let status = res.status();
        let body = res.json::<Value>().await.unwrap_or(Value::Null);
        Ok((status, body))
    }
}

pub async fn run(args: &DemoAgentArgs) -> Result<ExitCode> {
    let issuer = args.issuer.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot set up an HTTP client")?;

    say("Gatehouse demo agent: a pretend AI assistant that wants to read and send your email.");
    say("It talks to Gatehouse exactly like a real agent would, and tells you what happens.");
    say("It never sends any email.");

    // ---- 1. discovery and registration --------------------------------------------------------
    step(1, "find Gatehouse and register");
    let meta_url = format!("{issuer}/.well-known/oauth-authorization-server");
    let meta: Value = match http.get(&meta_url).send().await {
        Ok(res) if res.status().is_success() => res
            .json()
            .await
            .context("the server's metadata is not JSON")?,
        Ok(res) => bail!(
            "{meta_url} answered {}; is this a Gatehouse server?",
            res.status()
        ),
        Err(e) => bail!(
            "cannot reach Gatehouse at {issuer} ({e}). Start it in another terminal with \
             `gatehouse serve`, or pass --issuer with the URL it prints"
        ),
    };
    let endpoint = |key: &str, path: &str| -> String {
        meta[key]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{issuer}{path}"))
    };
    let register_url = endpoint("registration_endpoint", "/register");
    let authorize_url = endpoint("authorization_endpoint", "/authorize");
    let token_url = endpoint("token_endpoint", "/token");
    let introspect_url = endpoint("introspection_endpoint", "/introspect");
    let ciba_url = meta["backchannel_authentication_endpoint"]
        .as_str()
        .map(str::to_owned);
    let ciba_supported = ciba_url.is_some()
        || meta["grant_types_supported"]
            .as_array()
            .is_some_and(|g| g.iter().any(|v| v == CIBA_GRANT));
    say(format!(
        "  Read {meta_url} (RFC 8414): the issuer is {}.",
        meta["issuer"].as_str().unwrap_or(&issuer)
    ));

    // A loopback redirect the agent serves itself (RFC 8252): the code arrives here.
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot open a loopback port for the redirect")?;
    let port = listener.local_addr()?.port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let (code_tx, code_rx) = oneshot::channel();
    tokio::spawn(catch_redirect(listener, code_tx));

    let mut grant_types = vec!["authorization_code", "refresh_token"];
    if ciba_supported {
        grant_types.push(CIBA_GRANT);
    }
    let res = http
        .post(&register_url)
        .json(&json!({
            "client_name": "Demo agent",
            "redirect_uris": [redirect_uri],
            "grant_types": grant_types,
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
            "application_type": "native",
        }))
        .send()
        .await
        .with_context(|| format!("POST {register_url} failed"))?;
    let status = res.status();
    let reg: Value = res.json().await.unwrap_or(Value::Null);
    if status != StatusCode::CREATED {
        bail!("registration refused: HTTP {status}: {}", oauth_error(&reg));
    }
    let agent = Agent {
        http: http.clone(),
        client_id: reg["client_id"]
            .as_str()
            .context("the registration answer has no client_id")?
            .to_owned(),
        client_secret: reg["client_secret"]
            .as_str()
            .context("the registration answer has no client_secret")?
            .to_owned(),
    };
    say(format!(
        "  Registered itself (RFC 7591) as \"Demo agent\": client id {}, with its own secret.",
        agent.client_id
    ));
    say(
        "  The name is self-asserted (anyone can claim any name), and Gatehouse says so when it asks you.",
    );
    say(format!(
        "  It will catch the authorization code on {redirect_uri}."
    ));

    // ---- 2. consent ---------------------------------------------------------------------------
    step(2, "ask your consent to read and send mail");
    let (verifier, challenge) = pkce_pair();
    let state = random_state();
    let mut url = Url::parse(&authorize_url).context("bad authorization_endpoint")?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &agent.client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", SCOPE)
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    say(format!(
        "  Opening the authorization request for scopes \"{SCOPE}\" (PKCE S256)."
    ));
    let mut next = url.to_string();
    let mut told = false;
    let started = Instant::now();
    let callback = loop {
        let res = http
            .get(&next)
            .send()
            .await
            .with_context(|| format!("GET {next} failed"))?;
        match res.status() {
            StatusCode::SEE_OTHER | StatusCode::FOUND => {
                let location = res
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .context("a redirect without a Location")?;
                let to = Url::parse(location)
                    .or_else(|_| Url::parse(&next).and_then(|base| base.join(location)))
                    .context("a redirect to an unreadable Location")?;
                if to.as_str().starts_with(&redirect_uri) {
                    break to;
                }
                if !told && to.path().starts_with("/consent/") {
                    let id = to.path().rsplit('/').next().unwrap_or("");
                    say(format!(
                        "  Gatehouse never shows consent in a browser: it filed request {id} and \
                         sent the browser to a waiting page."
                    ));
                    say(
                        "  >> Now approve it in the terminal running `gatehouse serve`. Waiting...",
                    );
                    told = true;
                }
                next = to.to_string();
            }
            StatusCode::OK => {
                if started.elapsed() > PATIENCE {
                    bail!("gave up waiting for the consent decision");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => {
                let text = res.text().await.unwrap_or_default();
                bail!(
                    "the authorization request was refused: HTTP {other}: {}",
                    text.chars().take(300).collect::<String>()
                );
            }
        }
    };
    if !told {
        say("  Gatehouse remembered an earlier consent for this agent, so it did not ask again.");
    }
    // Deliver the redirect to the agent's own listener, the way a browser would.
    let _ = http.get(callback.as_str()).send().await;
    let params = tokio::time::timeout(Duration::from_secs(10), code_rx)
        .await
        .ok()
        .and_then(Result::ok)
        .map(|target| query_of(&target))
        .unwrap_or_else(|| query_of(callback.as_str()));
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if param("state").as_deref() != Some(state.as_str()) {
        bail!("the redirect's state does not match what the agent sent; stopping");
    }
    if let Some(error) = param("error") {
        if error == "access_denied" {
            say(
                "  You denied consent (or it expired). The agent gets nothing. The tour stops here.",
            );
            return Ok(ExitCode::FAILURE);
        }
        bail!("consent failed: {error}");
    }
    let code = param("code").context("the redirect carries no code")?;
    say(format!(
        "  Approved. The code arrived on the agent's loopback listener (iss = {}).",
        param("iss").unwrap_or_else(|| "-".into())
    ));
    let (status, tokens) = agent
        .post(
            &token_url,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &redirect_uri),
                ("code_verifier", &verifier),
            ],
        )
        .await?;
    if !status.is_success() {
        bail!(
            "the code exchange failed: HTTP {status}: {}",
            oauth_error(&tokens)
        );
    }
    say(format!(
        "  Exchanged the code (with the PKCE verifier) for an access token {} (scope \"{}\", \
         expires in {} s) and a refresh token.",
        redact(tokens["access_token"].as_str().unwrap_or("")),
        tokens["scope"].as_str().unwrap_or(SCOPE),
        tokens["expires_in"]
    ));

    // ---- 3. approval of one action through CIBA -----------------------------------------------
    step(3, "ask approval to email the Q3 budget deck to Alex");
    let Some(ciba_url) =
        ciba_url.or_else(|| ciba_supported.then(|| format!("{issuer}/bc-authorize")))
    else {
        say(
            "  This Gatehouse server does not offer CIBA (/bc-authorize) yet, so the tour ends here.",
        );
        return Ok(ExitCode::SUCCESS);
    };
    let details = email_details();
    say("  Holding a mail:send token is not enough for something this sensitive: the agent asks");
    say("  you about this one email, through OpenID CIBA, with these details (RFC 9396):");
    say(format!("    {details}"));
    say(format!(
        "  It shows you the message \"{BINDING_MESSAGE}\"; the approval card shows the same message."
    ));
    let details_text = details.to_string();
    let (status, ack) = agent
        .post(
            &ciba_url,
            &[
                ("login_hint", "me"),
                ("binding_message", BINDING_MESSAGE),
                ("authorization_details", &details_text),
            ],
        )
        .await?;
    if !status.is_success() {
        bail!(
            "/bc-authorize refused the request: HTTP {status}: {}",
            oauth_error(&ack)
        );
    }
    let auth_req_id = ack["auth_req_id"]
        .as_str()
        .context("the acknowledgement has no auth_req_id")?
        .to_owned();
    let mut interval = ack["interval"].as_u64().unwrap_or(5).max(1);
    let expires_in = ack["expires_in"].as_u64().unwrap_or(120);
    say(format!(
        "  Gatehouse filed it (auth_req_id {}…); it expires in {expires_in} s; poll every {interval} s.",
        auth_req_id.chars().take(10).collect::<String>()
    ));
    say(
        "  >> Approve or deny it in the terminal running `gatehouse serve`. Look at the recipient:",
    );
    say(
        "     Gatehouse warns when it is outside your own domains (set them with `gatehouse domains add`).",
    );
    let started = Instant::now();
    let mut polls = 0u32;
    let approved = loop {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        let (status, body) = agent
            .post(
                &token_url,
                &[("grant_type", CIBA_GRANT), ("auth_req_id", &auth_req_id)],
            )
            .await?;
        polls += 1;
        match classify_poll(status, &body) {
            Poll::Approved(t) => break t,
            Poll::Pending => {
                if polls == 1 || polls.is_multiple_of(10) {
                    say(format!(
                        "  pending: still waiting for your decision ({} s so far)",
                        started.elapsed().as_secs()
                    ));
                }
            }
            Poll::SlowDown => {
                interval += 5;
                say(format!(
                    "  slow_down: Gatehouse asked the agent to poll less often; now every {interval} s."
                ));
            }
            Poll::Denied => {
                say("  denied: you said no. The agent gets no token and nothing is sent.");
                return Ok(ExitCode::FAILURE);
            }
            Poll::Expired => {
                say("  expired: nobody decided in time. That counts as a no; nothing is sent.");
                return Ok(ExitCode::FAILURE);
            }
            Poll::Failed(why) => bail!("polling failed: {why}"),
        }
        if started.elapsed() > PATIENCE {
            bail!("gave up waiting for the decision");
        }
    };
    let access = approved["access_token"].as_str().unwrap_or("");
    say(format!(
        "  approved: the next poll returned an access token {} that expires in {} s.",
        redact(access),
        approved["expires_in"]
    ));

    // ---- 4. what the token allows -------------------------------------------------------------
    step(4, "check what the approved token allows");
    let (status, info) = agent.post(&introspect_url, &[("token", access)]).await?;
    if !status.is_success() {
        bail!(
            "introspection failed: HTTP {status}: {}",
            oauth_error(&info)
        );
    }
    say(format!(
        "  Introspection (RFC 7662): active = {}, client = {}.",
        info["active"],
        info["client_id"].as_str().unwrap_or("-")
    ));
    if let (Some(exp), Some(iat)) = (info["exp"].as_i64(), info["iat"].as_i64()) {
        say(format!("  It lives {} s in all.", exp - iat));
    }
    let carried = &info["authorization_details"];
    say(format!("  authorization_details: {carried}"));
    if *carried == details {
        say(
            "  The token carries exactly the details you approved: this one email, to this recipient, with this attachment.",
        );
    } else {
        say("  Note: the token's details differ from what the agent asked for (see above).");
    }
    // A service checks a token by introspecting it, and each check counts as a use: a token for
    // one approved action is good for one use.
    let (_, again) = agent.post(&introspect_url, &[("token", access)]).await?;
    if again["active"] == false {
        say(
            "  Each check of the token counts as a use (that is how the mail service would check it),",
        );
        say(
            "  and a token for one approved action is good for one use: checked again, it is already inactive.",
        );
    } else {
        say(
            "  Checked again, the token is still active (this approval allowed more than one use).",
        );
    }
    say("\nDone. The demo agent did not send any email: it only showed how approval works.");
    say("See it all in the audit log: `gatehouse log`, and the requests: `gatehouse approvals`.");
    Ok(ExitCode::SUCCESS)
}

/// The query pairs of a URL or of a request target (`/callback?code=...`).
fn query_of(target: &str) -> Vec<(String, String)> {
    let url =
        Url::parse(target).or_else(|_| Url::parse("http://127.0.0.1").and_then(|b| b.join(target)));
    url.map(|u| {
        u.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
    .unwrap_or_default()
}

/// Serves the loopback redirect: reads requests until one for `/callback` arrives, answers it
/// with a short page, and hands over its target (path and query).
async fn catch_redirect(listener: TcpListener, done: oneshot::Sender<String>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let mut buf = Vec::with_capacity(2048);
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let head = String::from_utf8_lossy(&buf);
        let target = head
            .lines()
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("")
            .to_owned();
        let body = "The demo agent got its answer. You can close this tab.\n";
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(reply.as_bytes()).await;
        let _ = stream.shutdown().await;
        if target.starts_with("/callback") {
            let _ = done.send(target);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_is_s256_of_the_verifier() {
        let (verifier, challenge) = pkce_pair();
        assert_eq!(verifier.len(), 43);
        assert_eq!(
            challenge,
            URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
        );
        assert_ne!(pkce_pair().0, verifier);
    }

    #[test]
    fn polls_are_read_as_the_ciba_spec_says() {
        let err = |e: &str| json!({ "error": e });
        assert_eq!(
            classify_poll(StatusCode::BAD_REQUEST, &err("authorization_pending")),
            Poll::Pending
        );
        assert_eq!(
            classify_poll(StatusCode::BAD_REQUEST, &err("slow_down")),
            Poll::SlowDown
        );
        assert_eq!(
            classify_poll(StatusCode::BAD_REQUEST, &err("access_denied")),
            Poll::Denied
        );
        assert_eq!(
            classify_poll(StatusCode::BAD_REQUEST, &err("expired_token")),
            Poll::Expired
        );
        let ok = json!({ "access_token": "gth_at_x", "token_type": "Bearer" });
        assert_eq!(
            classify_poll(StatusCode::OK, &ok),
            Poll::Approved(ok.clone())
        );
        let Poll::Failed(why) = classify_poll(
            StatusCode::BAD_REQUEST,
            &json!({ "error": "invalid_grant", "error_description": "unknown auth_req_id" }),
        ) else {
            panic!("not a failure")
        };
        assert!(why.contains("invalid_grant (unknown auth_req_id)"), "{why}");
    }

    #[test]
    fn the_details_are_the_seed_story_email() {
        let d = email_details();
        assert_eq!(d[0]["type"], "message_send");
        assert_eq!(d[0]["recipients"][0], "alex@contractor.example");
        assert_eq!(redact("gth_at_0123456789abcdef"), "gth_at_01234…");
    }

    #[test]
    fn query_pairs_come_from_urls_and_targets() {
        let q = query_of("/callback?code=c1&state=s%20t");
        assert_eq!(
            q,
            vec![("code".into(), "c1".into()), ("state".into(), "s t".into())]
        );
        let q = query_of("http://127.0.0.1:9/callback?error=access_denied");
        assert_eq!(q[0], ("error".into(), "access_denied".into()));
    }
}
