//! CIBA poll mode and the RFC 8628 device grant, end to end: the real `gatehouse serve` with the
//! jsonl approver, agents polling `/token` over loopback HTTP.

use std::time::Duration;

use gatehouse_e2e::reply::{Reply, send};
use gatehouse_e2e::{Server, flow};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

const CIBA: &str = "urn:openid:params:grant-type:ciba";
const DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";
const API: &str = "https://api.example.com/";

struct Gatehouse {
    server: Server,
    http: reqwest::Client,
    dir: TempDir,
}

#[derive(Debug, Clone)]
struct Agent {
    id: String,
    secret: Option<String>,
}

impl Gatehouse {
    fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp data dir");
        let server = Server::start(dir.path(), extra);
        Self {
            server,
            http: flow::http(),
            dir,
        }
    }

    async fn register(&self, metadata: Value) -> Reply {
        let req = self.http.post(self.server.url("/register")).json(&metadata);
        send("POST /register", req).await
    }

    async fn agent(&self, confidential: bool, grants: &[&str]) -> Agent {
        let body = self
            .register(json!({
                "client_name": "e2e action agent",
                "grant_types": grants,
                "token_endpoint_auth_method": if confidential { "client_secret_basic" } else { "none" },
            }))
            .await
            .expect_json(StatusCode::CREATED);
        Agent {
            id: body["client_id"].as_str().expect("client_id").to_owned(),
            secret: body["client_secret"].as_str().map(str::to_owned),
        }
    }

    async fn post(&self, path: &str, agent: &Agent, form: &[(&str, &str)]) -> Reply {
        let mut form: Vec<(&str, &str)> = form.to_vec();
        let mut req = self.http.post(self.server.url(path));
        match &agent.secret {
            Some(s) => req = req.basic_auth(&agent.id, Some(s)),
            None => form.push(("client_id", &agent.id)),
        }
        send(&format!("POST {path}"), req.form(&form)).await
    }

    /// `/bc-authorize` with `extra` parameters; returns the acknowledgement.
    async fn bc_authorize(&self, agent: &Agent, extra: &[(&str, &str)]) -> Value {
        let mut form = vec![("login_hint", "me")];
        form.extend_from_slice(extra);
        let ack = self
            .post("/bc-authorize", agent, &form)
            .await
            .expect_json(StatusCode::OK);
        assert!(
            ack["auth_req_id"]
                .as_str()
                .is_some_and(|s| s.starts_with("gth_ar_")),
            "{ack}"
        );
        assert_eq!(ack["interval"], 1, "{ack}");
        assert!(ack["expires_in"].as_i64().is_some_and(|n| n > 0), "{ack}");
        ack
    }

    async fn poll(&self, agent: &Agent, grant: &str, handle: &str) -> Reply {
        let param = if grant == CIBA {
            "auth_req_id"
        } else {
            "device_code"
        };
        self.post("/token", agent, &[("grant_type", grant), (param, handle)])
            .await
    }

    /// Waits the interval, then polls until the answer is not `authorization_pending`.
    async fn poll_until_done(&self, agent: &Agent, grant: &str, handle: &str) -> Reply {
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_millis(1050)).await;
            let r = self.poll(agent, grant, handle).await;
            if !(r.status == StatusCode::BAD_REQUEST
                && r.json()["error"] == "authorization_pending")
            {
                return r;
            }
        }
        panic!("still pending after 30 polls");
    }

    async fn device_start(&self, agent: &Agent) -> Value {
        self.post("/device_authorization", agent, &[("scope", "repo.read")])
            .await
            .expect_json(StatusCode::OK)
    }

    async fn introspect(&self, agent: &Agent, token: &str) -> Value {
        self.post("/introspect", agent, &[("token", token)])
            .await
            .expect_json(StatusCode::OK)
    }

    fn requested(&mut self) -> Value {
        let req = self.server.expect_event("approval_requested");
        assert_eq!(req["kind"], "action", "{req}");
        req
    }

    fn decide(&mut self, decision: Value, id: &Value) -> Value {
        self.server.decide(decision);
        self.server
            .expect_event_matching("approval_decided", |v| v["id"] == *id)
    }
}

fn details() -> String {
    json!([{
        "type": "message_send",
        "channel": "email",
        "recipients": ["alex@contractor.example"],
        "subject": "Budget deck",
    }])
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn ciba_pending_then_approved_then_redeemed_once() {
    let mut g = Gatehouse::start(&[]);
    let meta = g
        .http
        .get(g.server.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        meta["backchannel_authentication_endpoint"],
        g.server.url("/bc-authorize")
    );
    assert_eq!(
        meta["backchannel_token_delivery_modes_supported"],
        json!(["poll"])
    );
    assert_eq!(
        meta["device_authorization_endpoint"],
        g.server.url("/device_authorization")
    );
    let grants = meta["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&json!(CIBA)) && grants.contains(&json!(DEVICE)));

    let agent = g.agent(true, &[CIBA]).await;
    let d = details();
    let ack = g
        .bc_authorize(
            &agent,
            &[
                ("scope", "openid mail.send"),
                ("binding_message", "Send deck 42"),
                ("authorization_details", &d),
                ("resource", API),
            ],
        )
        .await;
    let handle = ack["auth_req_id"].as_str().unwrap().to_owned();
    let req = g.requested();
    assert_eq!(req["binding_message"], "Send deck 42");
    assert_eq!(req["scopes"], json!(["mail.send"]), "openid is ignored");
    assert_eq!(req["authorization_details"][0]["type"], "message_send");

    g.poll(&agent, CIBA, &handle)
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "authorization_pending");
    let decided = g.decide(json!({ "approve": req["id"] }), &req["id"]);
    assert_eq!(decided["decision"], "approved");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let t = g
        .poll(&agent, CIBA, &handle)
        .await
        .expect_json(StatusCode::OK);
    assert!(t.get("refresh_token").is_none(), "{t}");
    assert_eq!(t["authorization_details"][0]["type"], "message_send", "{t}");
    assert!(t["expires_in"].as_i64().unwrap() <= 300, "{t}");
    let at = t["access_token"].as_str().unwrap();

    // The token carries exactly the approved details; with details it is good for one use.
    let seen = g.introspect(&agent, at).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["authorization_details"], t["authorization_details"]);
    assert_eq!(seen["aud"], json!([API]));
    let again = g.introspect(&agent, at).await;
    assert_eq!(again["active"], false, "a one-use token is spent: {again}");

    tokio::time::sleep(Duration::from_millis(1000)).await;
    g.poll(&agent, CIBA, &handle)
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test(flavor = "multi_thread")]
async fn ciba_without_resource_has_no_audience_and_uses_default_to_unlimited_without_details() {
    let mut g = Gatehouse::start(&[]);
    let agent = g.agent(true, &[CIBA]).await;
    let ack = g.bc_authorize(&agent, &[("scope", "files.read")]).await;
    let req = g.requested();
    g.decide(json!({ "approve": req["id"], "uses": 1 }), &req["id"]);
    let t = g
        .poll_until_done(&agent, CIBA, ack["auth_req_id"].as_str().unwrap())
        .await
        .expect_json(StatusCode::OK);
    let at = t["access_token"].as_str().unwrap();
    let seen = g.introspect(&agent, at).await;
    assert_eq!(seen["active"], true);
    assert!(seen.get("aud").is_none(), "{seen}");
    assert_eq!(g.introspect(&agent, at).await["active"], false, "uses: 1");
}

#[tokio::test(flavor = "multi_thread")]
async fn ciba_denied_expired_slow_down_and_other_clients() {
    let mut g = Gatehouse::start(&["--approval-timeout", "2"]);
    let agent = g.agent(true, &[CIBA]).await;
    let other = g.agent(true, &[CIBA]).await;

    // Denied.
    let ack = g.bc_authorize(&agent, &[("scope", "a")]).await;
    let handle = ack["auth_req_id"].as_str().unwrap().to_owned();
    let req = g.requested();
    // Another client's auth_req_id is not valid for it.
    g.poll(&other, CIBA, &handle)
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    g.poll(&agent, CIBA, &handle)
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "authorization_pending");
    // Polling again at once is too fast.
    g.poll(&agent, CIBA, &handle)
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "slow_down");
    g.decide(json!({ "deny": req["id"] }), &req["id"]);
    // A second decision on the same approval is refused.
    g.server.decide(json!({ "approve": req["id"] }));
    let err = g
        .server
        .expect_event_matching("error", |v| v["id"] == req["id"]);
    assert!(
        err["message"].as_str().unwrap().contains("already"),
        "{err}"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    g.poll(&agent, CIBA, &handle)
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "access_denied");
    g.poll(&agent, CIBA, "gth_ar_unknown")
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");

    // Expired (the approval timeout is 2 s), and no rule left behind.
    let ack = g.bc_authorize(&agent, &[("scope", "b")]).await;
    let req = g.requested();
    let gone = g
        .server
        .expect_event_matching("approval_decided", |v| v["id"] == req["id"]);
    assert_eq!(gone["decision"], "expired");
    g.poll_until_done(&agent, CIBA, ack["auth_req_id"].as_str().unwrap())
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "expired_token");
    let rules = gatehouse_e2e::run_cli(g.dir.path(), &["rules", "list", "--json"]);
    let text = String::from_utf8_lossy(&rules.stdout);
    assert!(
        !text.contains(&agent.id),
        "a timeout never creates a rule: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn public_clients_cannot_use_ciba() {
    let g = Gatehouse::start(&[]);
    g.register(json!({ "grant_types": [CIBA], "token_endpoint_auth_method": "none" }))
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_client_metadata");
    let public = g.agent(false, &[DEVICE]).await;
    g.post("/bc-authorize", &public, &[("login_hint", "me")])
        .await
        .assert_oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    // A confidential client that did not register the grant.
    let code_only = g.agent(true, &[DEVICE]).await;
    g.post("/bc-authorize", &code_only, &[("login_hint", "me")])
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "unauthorized_client");
    let ciba = g.agent(true, &[CIBA]).await;
    g.post("/bc-authorize", &ciba, &[("scope", "a")])
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    g.post(
        "/bc-authorize",
        &ciba,
        &[
            ("login_hint", "me"),
            ("authorization_details", "[{\"type\":\"teleport\"}]"),
        ],
    )
    .await
    .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_authorization_details");
    // CIBA §13: a binding message Gatehouse will not show is invalid_binding_message.
    let long = "x".repeat(101);
    for bad in [long.as_str(), "line one\nline two"] {
        g.post(
            "/bc-authorize",
            &ciba,
            &[("login_hint", "me"), ("binding_message", bad)],
        )
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_binding_message");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn device_grant_approved_denied_expired() {
    let mut g = Gatehouse::start(&["--approval-timeout", "3"]);
    let agent = g.agent(false, &[DEVICE]).await;
    let ack = g.device_start(&agent).await;
    let code = ack["user_code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 9, "{ack}");
    assert!(ack["device_code"].as_str().unwrap().starts_with("gth_dc_"));
    assert_eq!(ack["verification_uri"], g.server.url("/device"));
    assert_eq!(ack["interval"], 1);
    let req = g.requested();
    assert_eq!(req["user_code"], code.as_str(), "{req}");
    let page = send(
        "GET /device",
        g.http
            .get(ack["verification_uri_complete"].as_str().unwrap()),
    )
    .await;
    page.expect_status(StatusCode::OK);
    assert!(page.body.contains(&code) && page.body.contains("cannot approve"));
    let dc = ack["device_code"].as_str().unwrap().to_owned();
    g.poll(&agent, DEVICE, &dc)
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "authorization_pending");
    g.decide(json!({ "approve": req["id"] }), &req["id"]);
    let t = g
        .poll_until_done(&agent, DEVICE, &dc)
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(t["scope"], "repo.read");

    let ack = g.device_start(&agent).await;
    let req = g.requested();
    g.decide(json!({ "deny": req["id"] }), &req["id"]);
    g.poll_until_done(&agent, DEVICE, ack["device_code"].as_str().unwrap())
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "access_denied");

    let ack = g.device_start(&agent).await;
    let req = g.requested();
    g.server
        .expect_event_matching("approval_decided", |v| v["id"] == req["id"]);
    g.poll_until_done(&agent, DEVICE, ack["device_code"].as_str().unwrap())
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "expired_token");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remembered_decision_answers_the_next_identical_request() {
    let mut g = Gatehouse::start(&[]);
    let agent = g.agent(true, &[CIBA]).await;
    let d = details();
    let form = [("authorization_details", d.as_str())];
    let first = g.bc_authorize(&agent, &form).await;
    let req = g.requested();
    g.decide(
        json!({ "approve": req["id"], "remember": "1h" }),
        &req["id"],
    );
    g.poll_until_done(&agent, CIBA, first["auth_req_id"].as_str().unwrap())
        .await
        .expect_json(StatusCode::OK);

    let second = g.bc_authorize(&agent, &form).await;
    let t = g
        .poll(&agent, CIBA, second["auth_req_id"].as_str().unwrap())
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(t["authorization_details"][0]["type"], "message_send");
    // Nothing was asked of the person.
    std::thread::sleep(Duration::from_millis(300));
    let printed = g.server.output().text();
    assert_eq!(
        printed.matches("approval_requested").count(),
        1,
        "the remembered decision answered without a prompt: {printed}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_action_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let http = flow::http();
    let g = Gatehouse { server, http, dir };
    let agent = g.agent(true, &[CIBA]).await;
    let ack = g.bc_authorize(&agent, &[("scope", "deploy")]).await;
    let Gatehouse {
        server: mut s,
        http,
        dir,
    } = g;
    let req = s.expect_event("approval_requested");
    s.stop();
    server = Server::start(dir.path(), &[]);
    let mut g = Gatehouse { server, http, dir };
    let again = g.requested();
    assert_eq!(again["id"], req["id"]);
    g.decide(json!({ "approve": req["id"] }), &req["id"]);
    g.poll_until_done(&agent, CIBA, ack["auth_req_id"].as_str().unwrap())
        .await
        .expect_json(StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn pausing_all_agents_denies_action_requests_without_asking() {
    let mut g = Gatehouse::start(&[]);
    let ciba_agent = g.agent(true, &[CIBA]).await;
    let device_agent = g.agent(false, &[DEVICE]).await;
    // The person also remembered an approval earlier: a pause must override it.
    let d = details();
    let form = [("authorization_details", d.as_str())];
    let first = g.bc_authorize(&ciba_agent, &form).await;
    let req = g.requested();
    g.decide(
        json!({ "approve": req["id"], "remember": "always" }),
        &req["id"],
    );
    g.poll_until_done(&ciba_agent, CIBA, first["auth_req_id"].as_str().unwrap())
        .await
        .expect_json(StatusCode::OK);

    let paused = gatehouse_e2e::run_cli(g.dir.path(), &["pause"]);
    assert!(
        paused.status.success(),
        "gatehouse pause: {}",
        String::from_utf8_lossy(&paused.stderr)
    );

    let ack = g.bc_authorize(&ciba_agent, &form).await;
    let r = g
        .poll(&ciba_agent, CIBA, ack["auth_req_id"].as_str().unwrap())
        .await;
    assert_eq!(
        r.json()["error"],
        "access_denied",
        "CIBA while paused: {}",
        r.body
    );
    let dev = g.device_start(&device_agent).await;
    let r = g
        .poll_until_done(&device_agent, DEVICE, dev["device_code"].as_str().unwrap())
        .await;
    assert_eq!(
        r.json()["error"],
        "access_denied",
        "device grant while paused: {}",
        r.body
    );
    std::thread::sleep(Duration::from_millis(300));
    let printed = g.server.output().text();
    assert_eq!(
        printed.matches("approval_requested").count(),
        1,
        "nothing is put to the person while every agent is paused: {printed}"
    );

    let resumed = gatehouse_e2e::run_cli(g.dir.path(), &["resume"]);
    assert!(resumed.status.success());
    let ack = g.bc_authorize(&ciba_agent, &form).await;
    g.poll_until_done(&ciba_agent, CIBA, ack["auth_req_id"].as_str().unwrap())
        .await
        .expect_json(StatusCode::OK);
}
