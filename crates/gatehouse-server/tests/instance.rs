//! `Instance`: one Gatehouse per data dir (a second start is `Locked`, distinguishable), loopback
//! only, a bound port it reports as its issuer, and a shutdown that releases the data dir.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use gatehouse_server::{Instance, InstanceOptions, StartError};

fn options(dir: &std::path::Path) -> InstanceOptions {
    InstanceOptions {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        approval_timeout: Duration::from_secs(30),
        busy_timeout: Duration::from_secs(5),
    }
}

/// GETs the metadata over a real socket; returns the status line.
fn metadata_status(issuer: &str) -> String {
    let host = issuer.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).unwrap();
    write!(
        s,
        "GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_per_data_dir_serving_until_shut_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut subscribed = false;
    let first = Instance::start_with(options(dir.path()), |authority| {
        subscribed = authority.issuer().starts_with("http://127.0.0.1:");
    })
    .await
    .unwrap();
    assert!(subscribed, "before_serving sees the bound issuer");
    let issuer = first.issuer().to_owned();
    assert_eq!(issuer, format!("http://{}", first.local_addr()));
    assert_ne!(first.local_addr().port(), 0);
    assert_eq!(first.data_dir(), dir.path());
    assert_eq!(
        first.authority().broker().ttl(),
        Duration::from_secs(30),
        "the approval timeout reaches the broker"
    );
    let status = tokio::task::spawn_blocking({
        let issuer = issuer.clone();
        move || metadata_status(&issuer)
    })
    .await
    .unwrap();
    assert!(status.contains("200"), "{status}");

    // A second instance on the same data dir is refused before it binds or opens anything.
    match Instance::start(options(dir.path())).await {
        Err(StartError::Locked { data_dir }) => assert_eq!(data_dir, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    // Another data dir is another instance.
    let other_dir = tempfile::tempdir().unwrap();
    let other = Instance::start(options(other_dir.path())).await.unwrap();
    other.shutdown().await;

    first.shutdown().await;
    // The port is closed and the data dir is free again.
    assert!(TcpStream::connect(issuer.trim_start_matches("http://")).is_err());
    let again = Instance::start(options(dir.path())).await.unwrap();
    again.stop().await.unwrap();
}

#[tokio::test]
async fn refusals_say_what_to_do_and_leave_the_data_dir_free() {
    let dir = tempfile::tempdir().unwrap();
    let beyond = InstanceOptions {
        listen: "0.0.0.0:0".parse().unwrap(),
        ..options(dir.path())
    };
    let err = Instance::start(beyond).await.unwrap_err();
    assert!(matches!(err, StartError::NotLoopback { .. }), "{err:?}");
    assert!(err.to_string().contains("loopback only"), "{err}");

    // A port already taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = InstanceOptions {
        listen: taken.local_addr().unwrap(),
        ..options(dir.path())
    };
    let err = Instance::start(busy).await.unwrap_err();
    assert!(matches!(err, StartError::Bind { .. }), "{err:?}");
    assert!(err.to_string().contains("--listen 127.0.0.1:0"), "{err}");

    // Neither refusal kept the lock.
    Instance::start(options(dir.path()))
        .await
        .unwrap()
        .shutdown()
        .await;
}
