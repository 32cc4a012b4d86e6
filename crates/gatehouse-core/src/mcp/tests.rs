use super::*;
use serde_json::json;

const ISS: &str = "http://127.0.0.1:5000";

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

#[test]
fn names() {
    let cases: Vec<(String, &str)> = vec![
        (resource_uri(ISS, "gh"), "http://127.0.0.1:5000/mcp/gh"),
        (
            metadata_uri(ISS, "gh"),
            "http://127.0.0.1:5000/.well-known/oauth-protected-resource/mcp/gh",
        ),
        (server_scope("gh"), "mcp:gh"),
        (tool_scope("gh", "create_issue"), "mcp:gh:create_issue"),
        (
            tool_resource(ISS, "gh", "create_issue"),
            "http://127.0.0.1:5000/mcp/gh/tools/create_issue",
        ),
        (
            tool_resource(ISS, "gh", "a.b-c~d"),
            "http://127.0.0.1:5000/mcp/gh/tools/a.b-c~d",
        ),
        (
            // A glob character or a query in a tool's name cannot widen or cut the resource.
            tool_resource(ISS, "gh", "x*?y z/é"),
            "http://127.0.0.1:5000/mcp/gh/tools/x%2A%3Fy%20z%2F%C3%A9",
        ),
        (
            call_resource(ISS, "gh", "echo", "sha256:00ff"),
            "http://127.0.0.1:5000/mcp/gh/tools/echo?args=sha256:00ff",
        ),
        (
            any_arguments_pattern(ISS, "gh", "echo"),
            "http://127.0.0.1:5000/mcp/gh/tools/echo?args=*",
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
    let call = call_resource(ISS, "gh", "echo", &args_hash(&json!({"a": 1})));
    assert!(crate::policy::glob(
        &any_arguments_pattern(ISS, "gh", "echo"),
        &call
    ));
    assert!(!crate::policy::glob(
        &any_arguments_pattern(ISS, "gh", "echo"),
        &call_resource(ISS, "gh", "echo2", "sha256:00")
    ));
}

#[test]
fn server_names() {
    for good in ["gh", "a", "my-server-2", &"x".repeat(40)] {
        assert!(validate_server_name(good).is_ok(), "{good}");
    }
    for bad in ["", "GH", "a_b", "a b", "ü", "a/b", &"x".repeat(41)] {
        assert!(
            matches!(validate_server_name(bad), Err(McpError::Invalid(_))),
            "{bad}"
        );
    }
}

#[test]
fn resources_of_consent() {
    let cases: Vec<(Option<&str>, &str, Option<&str>)> = vec![
        (Some(ISS), "http://127.0.0.1:5000/mcp/gh", Some("gh")),
        (Some(ISS), "http://evil.example/mcp/gh", None),
        (Some(ISS), "http://127.0.0.1:5000/gateway/gh", None),
        (Some(ISS), "http://127.0.0.1:5000/mcp/gh/tools/x", None),
        (Some(ISS), "http://127.0.0.1:5000/mcp/", None),
        (None, "http://127.0.0.1:5000/mcp/gh", Some("gh")),
        (None, "http://h/gateway/gh", None),
    ];
    for (issuer, resource, want) in cases {
        assert_eq!(server_of_resource(issuer, resource), want, "{resource}");
    }
}

#[test]
fn scopes_cover_tools() {
    let cases: Vec<(Vec<String>, &str, bool, bool)> = vec![
        (s(&["mcp:gh"]), "echo", true, true),
        (s(&["mcp:gh:echo"]), "echo", true, false),
        (s(&["mcp:gh:echo"]), "add", false, false),
        (s(&["mcp:other"]), "echo", false, false),
        (s(&["mcp:gh-2"]), "echo", false, false),
        (
            s(&["gh:read", "mcp:gh:add", "mcp:gh:echo"]),
            "echo",
            true,
            false,
        ),
        (s(&[]), "echo", false, false),
    ];
    for (scopes, tool, tool_ok, server_ok) in cases {
        assert_eq!(
            tool_allowed(&scopes, "gh", tool),
            tool_ok,
            "{scopes:?} {tool}"
        );
        assert_eq!(server_allowed(&scopes, "gh"), server_ok, "{scopes:?}");
    }
}

#[test]
fn token_checks() {
    let good = s(&["http://127.0.0.1:5000/mcp/gh"]);
    let other = s(&["http://127.0.0.1:5000/mcp/mail"]);
    let gateway = s(&["http://127.0.0.1:5000/gateway/gh"]);
    let all = s(&["mcp:gh"]);
    let one = s(&["mcp:gh:echo"]);
    let empty_tool = s(&["mcp:gh:"]);
    let foreign = s(&["mcp:mail", "gh:read"]);
    let need = Err(Refusal::InsufficientScope {
        scope: "mcp:gh".into(),
    });
    let cases: Vec<(Option<Presented<'_>>, Result<(), Refusal>)> = vec![
        (None, Err(Refusal::NoToken)),
        (
            Some(Presented {
                audience: &other,
                scopes: &all,
            }),
            Err(Refusal::InvalidToken(String::new())),
        ),
        (
            Some(Presented {
                audience: &gateway,
                scopes: &all,
            }),
            Err(Refusal::InvalidToken(String::new())),
        ),
        (
            Some(Presented {
                audience: &good,
                scopes: &all,
            }),
            Ok(()),
        ),
        (
            Some(Presented {
                audience: &good,
                scopes: &one,
            }),
            Ok(()),
        ),
        (
            Some(Presented {
                audience: &good,
                scopes: &empty_tool,
            }),
            need.clone(),
        ),
        (
            Some(Presented {
                audience: &good,
                scopes: &foreign,
            }),
            need.clone(),
        ),
        (
            Some(Presented {
                audience: &good,
                scopes: &[],
            }),
            need,
        ),
    ];
    for (token, want) in cases {
        let got = check_token(token, ISS, "gh");
        match (&got, &want) {
            (Err(Refusal::InvalidToken(d)), Err(Refusal::InvalidToken(_))) => {
                assert!(d.contains("resource=http://127.0.0.1:5000/mcp/gh"), "{d}");
            }
            _ => assert_eq!(got, want, "{token:?}"),
        }
    }
}

#[test]
fn canonical_json_sorts_keys_everywhere() {
    let cases: Vec<(Value, &str)> = vec![
        (json!(null), "null"),
        (json!({}), "{}"),
        (json!([]), "[]"),
        (json!({"b": 1, "a": 2}), r#"{"a":2,"b":1}"#),
        (
            json!({"z": {"y": [3, {"d": 1, "c": [{"f": 0, "e": null}]}], "x": true}, "a": "s"}),
            r#"{"a":"s","z":{"x":true,"y":[3,{"c":[{"e":null,"f":0}],"d":1}]}}"#,
        ),
        (
            json!([[2, 1], [{"b": 0, "a": 0}]]),
            r#"[[2,1],[{"a":0,"b":0}]]"#,
        ),
        (
            json!({"s": "a \"q\"\n\u{e9}"}),
            "{\"s\":\"a \\\"q\\\"\\n\u{e9}\"}",
        ),
        (json!({"B": 1, "a": 2, "_": 3}), r#"{"B":1,"_":3,"a":2}"#),
        (
            json!({"n": 1.5, "m": -0, "k": 10000000000u64}),
            r#"{"k":10000000000,"m":0,"n":1.5}"#,
        ),
    ];
    for (v, want) in cases {
        assert_eq!(canonical_json(&v), want);
    }
}

#[test]
fn hashes_are_stable() {
    // Key order and whitespace do not matter; values do.
    let a: Value = serde_json::from_str(r#"{"b": [1, {"y": 2, "x": 1}], "a": "t"}"#).unwrap();
    let b: Value = serde_json::from_str(r#"{"a":"t","b":[1,{"x":1,"y":2}]}"#).unwrap();
    assert_eq!(args_hash(&a), args_hash(&b));
    assert_ne!(
        args_hash(&a),
        args_hash(&json!({"a": "t", "b": [{"x": 1, "y": 2}, 1]}))
    );
    // Missing arguments are {}.
    assert_eq!(args_hash(&Value::Null), args_hash(&json!({})));
    assert_eq!(
        args_hash(&json!({})),
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
    let h = args_hash(&a);
    assert!(h.starts_with("sha256:") && h.len() == 7 + 64, "{h}");

    let tool = json!({
        "name": "echo",
        "description": "Echoes",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
        "annotations": {"readOnlyHint": true},
    });
    let reordered = json!({
        "annotations": {"readOnlyHint": true},
        "inputSchema": {"properties": {"text": {"type": "string"}}, "type": "object"},
        "description": "Echoes",
        "name": "echo",
        // Not covered: other fields may change without holding the tool.
        "_meta": {"x": 1},
        "icons": [],
    });
    assert_eq!(definition_hash(&tool), definition_hash(&reordered));
    // Absent and null are the same.
    let mut with_nulls = tool.clone();
    with_nulls["title"] = Value::Null;
    with_nulls["outputSchema"] = Value::Null;
    assert_eq!(definition_hash(&tool), definition_hash(&with_nulls));
    // Each covered field changes it.
    for field in DEFINITION_FIELDS {
        let mut changed = tool.clone();
        changed[field] = json!("different");
        assert_ne!(definition_hash(&tool), definition_hash(&changed), "{field}");
    }
    // The hash of exactly the six fields' canonical JSON.
    let want = sha256_tagged(
        r#"{"annotations":null,"description":null,"inputSchema":null,"name":"x","outputSchema":null,"title":null}"#,
    );
    assert_eq!(definition_hash(&json!({"name": "x"})), want);
}

#[test]
fn kinds_from_annotations() {
    let cases: Vec<(Option<Value>, ToolKind)> = vec![
        (None, ToolKind::Other),
        (Some(json!({})), ToolKind::Other),
        (Some(json!({"readOnlyHint": true})), ToolKind::ReadOnly),
        (
            Some(json!({"readOnlyHint": true, "destructiveHint": true})),
            ToolKind::ReadOnly,
        ),
        (
            Some(json!({"readOnlyHint": false, "destructiveHint": true})),
            ToolKind::Destructive,
        ),
        (
            Some(json!({"destructiveHint": true})),
            ToolKind::Destructive,
        ),
        (Some(json!({"destructiveHint": false})), ToolKind::Other),
        (Some(json!({"readOnlyHint": "true"})), ToolKind::Other),
        (Some(json!({"idempotentHint": true})), ToolKind::Other),
        (Some(json!(null)), ToolKind::Other),
    ];
    for (annotations, want) in cases {
        assert_eq!(tool_kind(annotations.as_ref()), want, "{annotations:?}");
    }
    assert_eq!(
        serde_json::to_value(ToolKind::ReadOnly).unwrap(),
        json!("read_only")
    );
    assert_eq!(ToolKind::Destructive.as_str(), "destructive");
}

#[test]
fn policy_matrix() {
    let none = PolicyDecision::Ask { rules: vec![] };
    let ask_rule = PolicyDecision::Ask { rules: vec![3] };
    let allow = PolicyDecision::Allow { rules: vec![1] };
    let deny = PolicyDecision::Deny {
        reason: DenyReason::Rule { rule_id: 2 },
    };
    let paused = PolicyDecision::Deny {
        reason: DenyReason::Paused,
    };
    let ask = Verdict::Ask { warnings: vec![] };
    let warned = Verdict::Ask {
        warnings: vec![DESTRUCTIVE_WARNING.into()],
    };
    let denied_by_rule = Verdict::Refuse(Refusal::Denied(
        "a policy rule denies this call (rule 2)".into(),
    ));
    let denied_paused = Verdict::Refuse(Refusal::Denied(PAUSED_MESSAGE.into()));
    use ToolKind::*;
    let cases: Vec<(&PolicyDecision, ToolKind, &Verdict)> = vec![
        (&none, ReadOnly, &Verdict::Forward),
        (&none, Destructive, &warned),
        (&none, Other, &ask),
        (&ask_rule, ReadOnly, &ask),
        (&ask_rule, Destructive, &warned),
        (&ask_rule, Other, &ask),
        (&allow, ReadOnly, &Verdict::Forward),
        (&allow, Destructive, &Verdict::Forward),
        (&allow, Other, &Verdict::Forward),
        (&deny, ReadOnly, &denied_by_rule),
        (&deny, Destructive, &denied_by_rule),
        (&deny, Other, &denied_by_rule),
        (&paused, ReadOnly, &denied_paused),
        (&paused, Destructive, &denied_paused),
        (&paused, Other, &denied_paused),
    ];
    for (decision, kind, want) in cases {
        assert_eq!(&apply_policy(decision, kind), want, "{decision:?} {kind:?}");
    }
}

#[test]
fn credentials_by_shape() {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
    for secret in [
        "sk-proj-abc123",
        "ghp_0123456789abcdef",
        "gho_x",
        "github_pat_11AAA",
        "xoxb-123-456",
        "xoxp-1",
        "AKIAIOSFODNN7EXAMPLE",
        "Bearer abc.def",
        "bearer abc",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nabc",
        "  sk-leading-space",
        jwt,
    ] {
        assert!(looks_like_credential(secret), "{secret}");
    }
    for plain in [
        "hello world",
        "skeleton",
        "xoxo hugs",
        "eyJ but not a jwt",
        "eyJhbGc.only-two",
        "a.b.c",
        "Bearer",
        "",
        "github",
    ] {
        assert!(!looks_like_credential(plain), "{plain}");
    }
}

#[test]
fn redaction() {
    let long = "y".repeat(100);
    let cut80 = format!("{}…", "y".repeat(80));
    let many: Vec<Value> = (0..60).map(|i| json!(i)).collect();
    let mut kept: Vec<Value> = (0..50).map(|i| json!(i)).collect();
    kept.push(json!("… 10 more"));
    let cases: Vec<(Value, Value)> = vec![
        (json!({}), json!({})),
        (json!(null), json!(null)),
        (
            json!({"title": "hi", "n": 3, "ok": true, "x": null}),
            json!({"title": "hi", "n": 3, "ok": true, "x": null}),
        ),
        // Secret-looking keys: the whole value, whatever its type.
        (
            json!({"password": "hunter2", "api_key": 12345, "auth": {"token": "t", "user": "ann"}}),
            json!({"password": "[redacted]", "api_key": "[redacted]", "auth": {"token": "[redacted]", "user": "ann"}}),
        ),
        (
            json!({"client_secret": {"a": [1, 2]}, "Authorization": "Bearer x"}),
            json!({"client_secret": "[redacted]", "Authorization": "[redacted]"}),
        ),
        // Credential-looking strings under any key, in arrays too.
        (
            json!({"note": "ghp_abcdef", "list": ["ok", "sk-123"], "h": "Bearer t"}),
            json!({"note": "[redacted]", "list": ["ok", "[redacted]"], "h": "[redacted]"}),
        ),
        // Long strings are cut, control characters become spaces.
        (json!({"body": long}), json!({"body": cut80})),
        (json!({"t": "a\nb\tc"}), json!({"t": "a b c"})),
        // Long arrays keep 50 items and say how many more.
        (json!({"ids": many}), json!({"ids": kept})),
        (json!("sk-top-level"), json!("[redacted]")),
    ];
    for (input, want) in cases {
        assert_eq!(redacted_args(&input), want, "{input}");
    }
    // A huge object keeps 50 keys and says how many more.
    let big: serde_json::Map<String, Value> =
        (0..70).map(|i| (format!("k{i:02}"), json!(i))).collect();
    let r = redacted_args(&Value::Object(big));
    let obj = r.as_object().unwrap();
    assert_eq!(obj.len(), 51);
    assert_eq!(obj["…"], json!("20 more"));
}

#[test]
fn summaries() {
    let long = "z".repeat(200);
    let cases: Vec<(Value, Vec<String>)> = vec![
        (json!(null), vec![]),
        (json!({}), vec![]),
        (
            json!({"path": "/tmp/a.txt", "count": 3, "opts": {"b": [1, 2], "a": null}}),
            s(&[
                "count: 3",
                "opts: {\"a\":null,\"b\":[1,2]}",
                "path: /tmp/a.txt",
            ]),
        ),
        (
            json!({"token": "abc", "text": "Bearer xyz", "nested": {"password": "p", "q": 1}}),
            s(&[
                "nested: {\"password\":\"[redacted]\",\"q\":1}",
                "text: [redacted]",
                "token: [redacted]",
            ]),
        ),
        (
            json!({"body": long}),
            vec![format!("body: {}…", "z".repeat(80))],
        ),
        (
            json!({"list": (0..40).collect::<Vec<_>>()}),
            vec![format!(
                "list: {}…",
                &canonical_json(&json!((0..40).collect::<Vec<_>>()))[..80]
            )],
        ),
        (
            json!({"multi": "line one\nline two"}),
            s(&["multi: line one line two"]),
        ),
        (json!(["a", 1]), s(&["arguments: [\"a\",1]"])),
        (json!("ghp_secret"), s(&["arguments: [redacted]"])),
    ];
    for (input, want) in cases {
        assert_eq!(args_summary(&input), want, "{input}");
    }
    // At most 12 lines; the last says how many more.
    let wide: serde_json::Map<String, Value> =
        (0..20).map(|i| (format!("k{i:02}"), json!(i))).collect();
    let lines = args_summary(&Value::Object(wide));
    assert_eq!(lines.len(), SUMMARY_LINES);
    assert_eq!(lines[0], "k00: 0");
    assert_eq!(lines[10], "k10: 10");
    assert_eq!(lines[11], "… and 9 more");
    let exactly: serde_json::Map<String, Value> =
        (0..12).map(|i| (format!("k{i:02}"), json!(i))).collect();
    let lines = args_summary(&Value::Object(exactly));
    assert_eq!(lines.len(), 12);
    assert_eq!(lines[11], "k11: 11");
}

#[test]
fn tool_status() {
    let row = |present: bool, pinned: Option<&str>| McpToolRow {
        server: "gh".into(),
        name: "echo".into(),
        definition: json!({"name": "echo"}),
        hash: "sha256:a".into(),
        present,
        first_seen_at: 1,
        seen_at: 2,
        pinned_hash: pinned.map(str::to_owned),
        pinned_definition: None,
        pinned_at: None,
        pinned_by: None,
    };
    let cases = [
        (row(true, Some("sha256:a")), ToolStatus::Pinned),
        (row(true, Some("sha256:b")), ToolStatus::Changed),
        (row(true, None), ToolStatus::New),
        (row(false, Some("sha256:a")), ToolStatus::Removed),
        (row(false, None), ToolStatus::Removed),
    ];
    for (r, want) in cases {
        assert_eq!(r.status(), want, "{r:?}");
        assert_eq!(serde_json::to_value(want).unwrap(), json!(want.as_str()));
    }
}

#[test]
fn held_messages() {
    assert_eq!(held_message(ToolStatus::Changed), HELD_MESSAGE);
    assert!(held_message(ToolStatus::New).contains("new since you approved"));
    for st in [ToolStatus::New, ToolStatus::Changed] {
        assert!(held_message(st).starts_with("held: "));
        assert!(held_message(st).contains("gatehouse mcp approve"));
    }
}

#[test]
fn env_values_serialize_as_tagged_objects() {
    let env: BTreeMap<String, EnvValue> = [
        ("A".to_owned(), EnvValue::Value("1".into())),
        ("TOKEN".to_owned(), EnvValue::Connection("github".into())),
    ]
    .into();
    let v = serde_json::to_value(&env).unwrap();
    assert_eq!(
        v,
        json!({"A": {"value": "1"}, "TOKEN": {"connection": "github"}})
    );
    let back: BTreeMap<String, EnvValue> = serde_json::from_value(v).unwrap();
    assert_eq!(back, env);
}

#[test]
fn new_server_validation() {
    let stdio = |cmd: &[&str], env: &[(&str, EnvValue)]| NewMcpServer {
        name: "fs".into(),
        transport: STDIO.into(),
        command: s(cmd),
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        url: None,
        connection: None,
    };
    let http = |url: &str| NewMcpServer {
        name: "remote".into(),
        transport: HTTP.into(),
        url: Some(url.into()),
        ..Default::default()
    };
    let v = |x: &str| EnvValue::Value(x.into());
    let ok = [
        stdio(&["npx", "-y", "server"], &[]),
        stdio(&["srv"], &[("A_1", v("x")), ("_B", v(""))]),
        stdio(
            &["srv"],
            &[("GITHUB_TOKEN", EnvValue::Connection("gh".into()))],
        ),
        http("https://mcp.example.com/mcp"),
        http("http://127.0.0.1:9000/mcp?tenant=a"),
    ];
    for n in ok {
        assert!(validate_new(&n).is_ok(), "{n:?}");
    }
    let mut bad_name = stdio(&["srv"], &[]);
    bad_name.name = "Bad".into();
    let mut stdio_with_url = stdio(&["srv"], &[]);
    stdio_with_url.url = Some("http://h/".into());
    let mut http_with_cmd = http("https://h/");
    http_with_cmd.command = s(&["x"]);
    let mut unknown = stdio(&["srv"], &[]);
    unknown.transport = "sse".into();
    let bad = [
        bad_name,
        stdio(&[], &[]),
        stdio(&[" "], &[]),
        stdio(&["srv", "--token", "ghp_abc"], &[]),
        stdio(&["srv"], &[("1A", v("x"))]),
        stdio(&["srv"], &[("A-B", v("x"))]),
        stdio(&["srv"], &[("", v("x"))]),
        stdio(&["srv"], &[("KEY", v("sk-live-123"))]),
        stdio(&["srv"], &[("K", v("a\0b"))]),
        stdio_with_url,
        http("ftp://h/"),
        http("not a url"),
        http("https://user:pw@h/"),
        http("https://h/#frag"),
        NewMcpServer {
            name: "r".into(),
            transport: HTTP.into(),
            ..Default::default()
        },
        http_with_cmd,
        unknown,
    ];
    for n in bad {
        assert!(
            matches!(validate_new(&n), Err(McpError::Invalid(_))),
            "{n:?}"
        );
    }
}

#[test]
fn call_requests() {
    let args = json!({"path": "/tmp/x", "api_key": "k", "content": "ghp_abc"});
    let req = call_request(
        ISS,
        "agt_1",
        Some("Agent".into()),
        "fs",
        "delete_note",
        &args,
        ToolKind::Destructive,
        vec![DESTRUCTIVE_WARNING.into()],
    );
    let hash = args_hash(&args);
    let resource = format!("{ISS}/mcp/fs/tools/delete_note?args={hash}");
    assert_eq!(req.via, "mcp");
    assert_eq!(req.resources, vec![resource.clone()]);
    assert_eq!(
        req.broader.as_deref(),
        Some("http://127.0.0.1:5000/mcp/fs/tools/delete_note?args=*")
    );
    assert_eq!(
        req.summary,
        s(&[
            "Call delete_note on fs",
            "  api_key: [redacted]",
            "  content: [redacted]",
            "  path: /tmp/x",
        ])
    );
    assert_eq!(
        req.authorization_details,
        Some(json!([{
            "type": "mcp_tool_call",
            "server": "fs",
            "tool": "delete_note",
            "tool_kind": "destructive",
            "arguments": {"path": "/tmp/x", "api_key": "[redacted]", "content": "[redacted]"},
            "arguments_hash": hash,
            "locations": [resource],
        }]))
    );
    assert_eq!(req.warnings, vec![DESTRUCTIVE_WARNING.to_owned()]);
    let (actions, resources) = crate::approvals::action_targets(&req);
    assert_eq!(actions, vec![MCP_TOOL_CALL.to_owned()]);
    assert_eq!(resources, req.resources);
    // No arguments: {} is shown and hashed.
    let none = call_request(
        ISS,
        "a",
        None,
        "fs",
        "t",
        &Value::Null,
        ToolKind::Other,
        vec![],
    );
    assert_eq!(none.summary, s(&["Call t on fs"]));
    assert_eq!(
        none.authorization_details.unwrap()[0]["arguments_hash"],
        json!(args_hash(&json!({})))
    );
}
