//! RFC 9396 rich authorization requests, end to end: `authorization_details` on `/authorize`
//! reaches the person (the jsonl `approval_requested` line, rendered), is granted, echoed in the
//! token response and its refresh, and shown by introspection; malformed or unknown details are
//! refused to the client with `invalid_authorization_details`; metadata lists every type; and the
//! person's own domains make an external recipient stand out.

use gatehouse_e2e::reply::send;
use gatehouse_e2e::{Server, flow, pkce_pair, run_cli};
use serde_json::{Value, json};
use tempfile::TempDir;

const TYPES: [&str; 6] = [
    "api_request",
    "message_send",
    "data_delete",
    "payment",
    "mcp_tool_call",
    "generic",
];

/// The deck that went to the wrong Alex.
fn deck_to(recipient: &str) -> Value {
    json!([{
        "type": "message_send",
        "channel": "email",
        "recipients": [recipient],
        "subject": "Budget deck and leadership notes",
        "attachments": ["budget-Q3-confidential.pdf"],
        "actions": ["send"]
    }])
}

struct Env {
    server: Server,
    http: reqwest::Client,
    dir: TempDir,
}

fn start() -> Env {
    let dir = tempfile::tempdir().expect("temp data dir");
    let server = Server::start(dir.path(), &[]);
    Env {
        server,
        http: flow::http(),
        dir,
    }
}

impl Env {
    /// GET /authorize for `client` with `details` (raw) and a fresh PKCE pair; returns where it
    /// redirects and the verifier.
    async fn authorize(
        &self,
        client: &flow::Client,
        details: Option<&str>,
        state: &str,
    ) -> (String, String) {
        let (verifier, challenge) = pkce_pair();
        let mut req =
            flow::authorize_request(&self.http, &self.server.issuer, client, &challenge, state);
        if let Some(d) = details {
            req = req.query(&[("authorization_details", d)]);
        }
        let res = req.send().await.expect("GET /authorize");
        (flow::location(&res), verifier)
    }

    /// Authorizes with `details`, expects a prompt, decides it with `decision(id)`, and returns
    /// the `approval_requested` line, the redirect to the client and the verifier.
    async fn prompted(
        &mut self,
        client: &flow::Client,
        details: &Value,
        decision: impl FnOnce(&str) -> Value,
    ) -> (Value, String, String) {
        let (waiting, verifier) = self
            .authorize(client, Some(&details.to_string()), "st-rar")
            .await;
        assert!(
            waiting.starts_with(&format!("{}/consent/", self.server.issuer)),
            "a request with authorization_details must ask the person, not go to {waiting}"
        );
        let id = flow::approval_id(&waiting);
        let line = self
            .server
            .expect_event_matching("approval_requested", |v| v["id"] == id.as_str());
        self.server.decide(decision(&id));
        self.server
            .expect_event_matching("approval_decided", |v| v["id"] == id.as_str());
        let res = self.http.get(&waiting).send().await.expect("waiting page");
        (line, flow::location(&res), verifier)
    }
}

#[tokio::test]
async fn details_are_shown_granted_echoed_refreshed_and_introspected() {
    let mut env = start();
    let client = flow::register(&env.http, &env.server.issuer, true).await;
    let details = json!([
        {"type": "api_request", "method": "post", "url": "https://api.example.com/v1/issues"},
        {"type": "mcp_tool_call", "server": "github", "tool": "create_issue",
         "arguments": {"title": "Flaky test", "token": "ghp_abcdefghijklmnopqrstuvwxyz"}}
    ]);
    // Normalized: the method upper-cased; nothing else changes.
    let mut granted = details.clone();
    granted[0]["method"] = json!("POST");

    let (line, to_client, verifier) = env
        .prompted(
            &client,
            &details,
            |id| json!({"approve": id, "remember": "always"}),
        )
        .await;
    assert_eq!(line["kind"], "consent");
    assert_eq!(line["authorization_details"], granted, "{line}");
    assert_eq!(
        line["summary"],
        json!([
            "Call POST https://api.example.com/v1/issues",
            "Call the tool create_issue on the MCP server github"
        ]),
        "{line}"
    );
    assert!(
        !line["summary"].to_string().contains("ghp_"),
        "a secret must not be rendered: {line}"
    );

    let code = flow::query_param(&to_client, "code").expect("approved: a code");
    assert_eq!(
        flow::query_param(&to_client, "iss").as_deref(),
        Some(env.server.issuer.as_str())
    );
    let t = flow::tokens(
        flow::exchange(&env.http, &env.server.issuer, &client, &code, &verifier).await,
    )
    .await;
    assert_eq!(t["authorization_details"], granted, "RFC 9396 §7 echo: {t}");
    let at = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();

    let info = flow::introspect(&env.http, &env.server.issuer, &client, at).await;
    assert_eq!(info["active"], true);
    assert_eq!(
        info["authorization_details"], granted,
        "RFC 9396 §9.2: {info}"
    );

    let t2 = flow::tokens(flow::refresh(&env.http, &env.server.issuer, &client, rt).await).await;
    assert_eq!(
        t2["authorization_details"], granted,
        "a refresh keeps them: {t2}"
    );
    let info2 = flow::introspect(
        &env.http,
        &env.server.issuer,
        &client,
        t2["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(info2["authorization_details"], granted, "{info2}");

    // "Remember: always" covers the scopes, never an action: the same details ask again...
    let (again, _) = env
        .authorize(&client, Some(&details.to_string()), "st-again")
        .await;
    assert!(
        again.starts_with(&format!("{}/consent/", env.server.issuer)),
        "details must always ask, even after a remembered consent: {again}"
    );
    env.server.expect_event("approval_requested");
    // ...while a plain request is answered by the remembered consent, without details.
    let (plain, verifier) = env.authorize(&client, None, "st-plain").await;
    let code = flow::query_param(&plain, "code").expect("remembered consent: a code at once");
    let t3 = flow::tokens(
        flow::exchange(&env.http, &env.server.issuer, &client, &code, &verifier).await,
    )
    .await;
    assert!(t3.get("authorization_details").is_none(), "{t3}");
}

#[tokio::test]
async fn malformed_or_unknown_details_are_refused_to_the_client() {
    let env = start();
    let client = flow::register(&env.http, &env.server.issuer, false).await;
    let cases = [
        (r#"[{"type":"teleport","where":"mars"}]"#, "unknown type"),
        (
            r#"{"type":"generic","description":"x"}"#,
            "must be a JSON array",
        ),
        ("[]", "must not be an empty array"),
        ("not json", "not valid JSON"),
        (r#"[{"type":"generic"}]"#, "description is required"),
        (
            r#"[{"type":"message_send","channel":"email","recipients":[]}]"#,
            "recipients must not be empty",
        ),
        (
            r#"[{"type":"payment","amount":"0","currency":"EUR","payee":"x"}]"#,
            "amount must be greater than zero",
        ),
    ];
    for (raw, why) in cases {
        let (to, _) = env.authorize(&client, Some(raw), "st-bad&=?").await;
        assert!(
            to.starts_with(&client.redirect_uri),
            "{raw}: errors go back to the client: {to}"
        );
        assert_eq!(
            flow::query_param(&to, "error").as_deref(),
            Some("invalid_authorization_details"),
            "{raw}: {to}"
        );
        let description = flow::query_param(&to, "error_description").unwrap_or_default();
        assert!(description.contains(why), "{raw}: {description:?}");
        assert_eq!(
            flow::query_param(&to, "state").as_deref(),
            Some("st-bad&=?")
        );
        assert_eq!(
            flow::query_param(&to, "iss").as_deref(),
            Some(env.server.issuer.as_str())
        );
    }
    // Nothing was put to the person, and each refusal is in the audit log.
    let log = run_cli(env.dir.path(), &["log", "--json", "--limit", "100"]);
    let text = String::from_utf8_lossy(&log.stdout);
    assert_eq!(
        text.matches("invalid_authorization_details").count(),
        cases.len(),
        "{text}"
    );
    assert!(!text.contains("consent.requested"), "{text}");
}

#[tokio::test]
async fn metadata_lists_every_type() {
    let env = start();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let meta = send(path, env.http.get(env.server.url(path)))
            .await
            .expect_json(reqwest::StatusCode::OK);
        assert_eq!(
            meta["authorization_details_types_supported"],
            json!(TYPES),
            "{path}: {meta}"
        );
    }
}

#[tokio::test]
async fn an_external_recipient_is_named_in_the_approval() {
    let mut env = start();
    let added = run_cli(env.dir.path(), &["domains", "add", "Example.COM", "--json"]);
    assert!(added.status.success(), "{added:?}");
    let out: Value = serde_json::from_slice(&added.stdout).expect("json");
    assert_eq!(out, json!({"domains": ["example.com"], "changed": true}));
    let listed = run_cli(env.dir.path(), &["domains", "list"]);
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).trim(),
        "Your own domains: example.com."
    );
    let bad = run_cli(env.dir.path(), &["domains", "add", "not a domain"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a domain name"));

    let client = flow::register(&env.http, &env.server.issuer, true).await;
    let (line, to_client, _) = env
        .prompted(
            &client,
            &deck_to("alex@contractor.example"),
            |id| json!({"deny": id}),
        )
        .await;
    assert_eq!(
        line["summary"],
        json!([
            "Send an email to alex@contractor.example with the attachment \
             budget-Q3-confidential.pdf — outside your domain"
        ]),
        "{line}"
    );
    assert_eq!(
        line["warnings"],
        json!(["alex@contractor.example is outside your domains (example.com)"]),
        "{line}"
    );
    assert_eq!(
        flow::query_param(&to_client, "error").as_deref(),
        Some("access_denied")
    );

    // The colleague at the person's own domain is not flagged.
    let (line, _, _) = env
        .prompted(
            &client,
            &deck_to("alex@example.com"),
            |id| json!({"deny": id}),
        )
        .await;
    assert_eq!(line["warnings"], json!([]), "{line}");
    assert!(!line["summary"].to_string().contains("outside"), "{line}");

    // The setting change is audited.
    let log = run_cli(env.dir.path(), &["log", "--json", "--limit", "100"]);
    assert!(String::from_utf8_lossy(&log.stdout).contains("settings.changed"));
}
