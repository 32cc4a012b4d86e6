//! Where the MCP gateway tests find their outside pieces: the upstream test server
//! (`mcp-test-server`, built from this crate) and the two SDK clients of `tests/mcp/` (the
//! TypeScript one run by `node`, the Python one run by the venv `scripts/setup.sh` makes).
//!
//! The clients' command line and output are described in `tests/mcp/README.md`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `tests/mcp/`, where the client scripts and their lockfiles live.
pub fn mcp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("mcp")
}

/// The Python of the venv holding the `mcp` SDK: `$GATEHOUSE_MCP_PYTHON`, else
/// `${XDG_CACHE_HOME:-$HOME/.cache}/gatehouse/py-mcp/bin/python` (made by `scripts/setup.sh`).
pub fn mcp_python() -> PathBuf {
    if let Some(p) = std::env::var_os("GATEHOUSE_MCP_PYTHON") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache")
        });
    let python = cache.join("gatehouse/py-mcp/bin/python");
    assert!(
        python.exists(),
        "{} does not exist: run scripts/setup.sh (it makes the MCP test client's venv)",
        python.display()
    );
    python
}

/// `tests/mcp/client.mjs` (run it with `node`; its SDK is in `tests/mcp/node_modules`).
pub fn mcp_node_client() -> PathBuf {
    let dir = mcp_dir();
    assert!(
        dir.join("node_modules/@modelcontextprotocol/sdk").exists(),
        "{}/node_modules is missing: run scripts/setup.sh (npm ci in tests/mcp)",
        dir.display()
    );
    dir.join("client.mjs")
}

/// `tests/mcp/client.py` (run it with [`mcp_python`]).
pub fn mcp_python_client() -> PathBuf {
    mcp_dir().join("client.py")
}

/// The built `mcp-test-server`: `$MCP_TEST_SERVER_BIN`, else next to the test executable's
/// parent directory (`target/<profile>/mcp-test-server`). Integration tests of this crate can
/// use `env!("CARGO_BIN_EXE_mcp-test-server")` instead, which cargo builds for them.
pub fn mcp_test_server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MCP_TEST_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/test-xxxx -> target/<profile>/mcp-test-server
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(format!("mcp-test-server{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} does not exist: run `cargo build -p gatehouse-e2e --bin mcp-test-server` first",
        bin.display()
    );
    bin
}

/// Which SDK client to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McpClient {
    /// `tests/mcp/client.mjs`: the TypeScript SDK.
    Node,
    /// `tests/mcp/client.py`: the Python SDK.
    Python,
}

impl McpClient {
    /// Both clients, for tests that run the same steps through each.
    pub const ALL: [McpClient; 2] = [McpClient::Node, McpClient::Python];

    /// The client's command for the MCP endpoint `url` with a free loopback redirect port; add
    /// the steps (`--list`, `--call TOOL --args JSON`, `--scope S`) and run it. Its stdout is one
    /// JSON line per step (see `tests/mcp/README.md`).
    pub fn command(self, url: &str) -> Command {
        let mut cmd = match self {
            McpClient::Node => {
                let mut c = Command::new("node");
                c.arg(mcp_node_client());
                c
            }
            McpClient::Python => {
                let mut c = Command::new(mcp_python());
                c.arg(mcp_python_client());
                c
            }
        };
        cmd.current_dir(mcp_dir())
            .args(["--url", url, "--redirect-port", "0"]);
        cmd
    }

    /// The JSON lines a finished client printed on stdout (lines that are not JSON are skipped).
    pub fn steps(stdout: &[u8]) -> Vec<serde_json::Value> {
        String::from_utf8_lossy(stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}
