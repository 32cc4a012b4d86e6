#!/usr/bin/env node
// The TypeScript MCP SDK as an agent would use it against Gatehouse's MCP gateway: Streamable
// HTTP plus the SDK's own OAuth client (discovery from the 401, dynamic client registration,
// PKCE, a loopback redirect served here). A black-box test runs it as a child process and reads
// one JSON line per step on stdout; see README.md beside this file.
//
// Nobody clicks anything: Gatehouse's /authorize answers 303 to a waiting page that answers 200
// until the person decides (the test answers on the server's jsonl approver), then 303 to the
// redirect URI. redirectToAuthorization() walks that chain with plain GETs, polling the waiting
// page, and finally requests the callback URL, which the callback server below receives.

import { createServer } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const USAGE = `usage: node client.mjs --url URL [--redirect-port PORT] [--scope SCOPE]
                      [--list] [--call TOOL [--args JSON]]...

Connects to the MCP endpoint URL with OAuth (dynamic registration as "sdk-test-client", PKCE,
redirect to http://127.0.0.1:PORT/callback served here; PORT 0 = any free port), then runs the
steps in the order given: --list lists the tools, --call calls TOOL with the JSON object of the
--args after it (default {}). Prints one JSON line per step:
  {"step":"tools","tools":[names]}
  {"step":"call","tool":T,"isError":bool,"text":"the text blocks joined by newlines"}
  {"step":"error","message":M}            (plus "tool" and "code" for a JSON-RPC error of a call)
Exit status: 0 when every step got an answer (even isError results and JSON-RPC errors of
calls), 1 on an authorization, transport or protocol failure, 2 on bad arguments.
--scope replaces the scope of the authorization request (the SDK would otherwise ask for the
scope of the 401's WWW-Authenticate).`;

const POLL_MS = 200;
const PATIENCE_MS = 60_000;
const REQUEST_TIMEOUT_MS = 120_000;

function out(obj) {
    process.stdout.write(JSON.stringify(obj) + '\n');
}

function log(msg) {
    process.stderr.write(`client.mjs: ${msg}\n`);
}

function parseArgs(argv) {
    const opts = { url: null, redirectPort: 0, scope: null, steps: [] };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const value = () => {
            if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
            return argv[++i];
        };
        switch (a) {
            case '--help':
            case '-h':
                return null;
            case '--url':
                opts.url = value();
                break;
            case '--redirect-port':
                opts.redirectPort = Number.parseInt(value(), 10);
                if (!Number.isInteger(opts.redirectPort) || opts.redirectPort < 0 || opts.redirectPort > 65535) {
                    throw new Error('--redirect-port must be a port number (0 = any free port)');
                }
                break;
            case '--scope':
                opts.scope = value();
                break;
            case '--list':
                opts.steps.push({ kind: 'list' });
                break;
            case '--call':
                opts.steps.push({ kind: 'call', tool: value(), args: {} });
                break;
            case '--args': {
                const last = opts.steps[opts.steps.length - 1];
                if (!last || last.kind !== 'call') throw new Error('--args must follow a --call');
                const parsed = JSON.parse(value());
                if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
                    throw new Error('--args must be a JSON object');
                }
                last.args = parsed;
                break;
            }
            default:
                throw new Error(`unknown argument: ${a}`);
        }
    }
    if (!opts.url) throw new Error('--url is required');
    return opts;
}

// The loopback redirect target: resolves `code` with the first callback's code (rejects on an
// `error`), answering the request like a real client's callback page would.
function startCallbackServer(port) {
    let resolveCode;
    let rejectCode;
    const code = new Promise((res, rej) => {
        resolveCode = res;
        rejectCode = rej;
    });
    // Nothing awaits `code` until the authorization starts; a rejection before then is not lost.
    code.catch(() => {});
    const server = createServer((req, res) => {
        const url = new URL(req.url ?? '/', 'http://127.0.0.1');
        if (url.pathname !== '/callback') {
            res.writeHead(404).end();
            return;
        }
        const c = url.searchParams.get('code');
        const err = url.searchParams.get('error');
        if (c) {
            res.writeHead(200, { 'content-type': 'text/plain' }).end('authorized; you can close this\n');
            resolveCode(c);
        } else {
            res.writeHead(400, { 'content-type': 'text/plain' }).end('authorization failed\n');
            const desc = url.searchParams.get('error_description');
            rejectCode(new Error(`authorization failed: ${err ?? 'no code'}${desc ? `: ${desc}` : ''}`));
        }
    });
    return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
            const { port: bound } = server.address();
            resolve({ server, port: bound, code, fail: (e) => rejectCode(e) });
        });
    });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// GETs `start` and follows redirects by hand until one points at the redirect URI, polling any
// page that answers 200 (Gatehouse's waiting page) every POLL_MS for up to PATIENCE_MS. Finally
// requests the callback itself, so the code arrives the way a browser would deliver it.
async function walkAuthorization(start, redirectUri) {
    const deadline = Date.now() + PATIENCE_MS;
    let next = start;
    for (;;) {
        const res = await fetch(next, { redirect: 'manual' });
        await res.arrayBuffer(); // drain the body so the connection can be reused
        if ([301, 302, 303, 307, 308].includes(res.status)) {
            const location = res.headers.get('location');
            if (!location) throw new Error(`a ${res.status} from ${next} without a Location`);
            const to = new URL(location, next).toString();
            if (to.startsWith(redirectUri)) {
                const cb = await fetch(to, { redirect: 'manual' });
                await cb.arrayBuffer();
                return;
            }
            next = to;
        } else if (res.status === 200) {
            if (Date.now() > deadline) {
                throw new Error(`gave up after ${PATIENCE_MS / 1000} s waiting at ${next}`);
            }
            await sleep(POLL_MS);
        } else {
            throw new Error(`GET ${next} answered ${res.status}`);
        }
    }
}

// The SDK's OAuthClientProvider, kept in memory (a fresh registration every run).
class MemoryProvider {
    constructor(redirectUrl, scope, onRedirect) {
        this._redirectUrl = redirectUrl;
        this._scope = scope;
        this._onRedirect = onRedirect;
        this._client = undefined;
        this._tokens = undefined;
        this._verifier = undefined;
    }
    get redirectUrl() {
        return this._redirectUrl;
    }
    get clientMetadata() {
        const m = {
            client_name: 'sdk-test-client',
            redirect_uris: [this._redirectUrl],
            grant_types: ['authorization_code', 'refresh_token'],
            response_types: ['code'],
            token_endpoint_auth_method: 'none',
        };
        if (this._scope) m.scope = this._scope;
        return m;
    }
    clientInformation() {
        return this._client;
    }
    saveClientInformation(info) {
        this._client = info;
    }
    tokens() {
        return this._tokens;
    }
    saveTokens(tokens) {
        this._tokens = tokens;
    }
    saveCodeVerifier(v) {
        this._verifier = v;
    }
    codeVerifier() {
        if (!this._verifier) throw new Error('no code verifier saved');
        return this._verifier;
    }
    redirectToAuthorization(url) {
        const target = new URL(url.toString());
        // The SDK prefers the 401's scope; a test asking for a narrower one says so here.
        if (this._scope) target.searchParams.set('scope', this._scope);
        this._onRedirect(target);
    }
}

function textOf(result) {
    return (result.content ?? [])
        .filter((c) => c.type === 'text')
        .map((c) => c.text)
        .join('\n');
}

async function connect(opts, callback) {
    const redirectUri = `http://127.0.0.1:${callback.port}/callback`;
    let walking = null;
    const provider = new MemoryProvider(redirectUri, opts.scope, (url) => {
        log(`authorizing at ${url.origin}${url.pathname}`);
        walking = walkAuthorization(url.toString(), redirectUri).catch((e) => callback.fail(e));
    });
    const client = new Client({ name: 'sdk-test-client', version: '1.0.0' }, { capabilities: {} });
    const url = new URL(opts.url);
    // Two rounds at most: the first may end in UnauthorizedError after the redirect; the second
    // runs with the tokens finishAuth obtained.
    for (let round = 0; round < 2; round++) {
        const transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
        try {
            await client.connect(transport);
            return client;
        } catch (e) {
            if (!(e instanceof UnauthorizedError) || round > 0) throw e;
            const code = await callback.code;
            await walking;
            await transport.finishAuth(code);
            log('authorized; reconnecting');
        }
    }
    throw new Error('unreachable');
}

async function main() {
    let opts;
    try {
        opts = parseArgs(process.argv.slice(2));
    } catch (e) {
        process.stderr.write(`${e.message}\n\n${USAGE}\n`);
        return 2;
    }
    if (opts === null) {
        process.stdout.write(`${USAGE}\n`);
        return 0;
    }
    const callback = await startCallbackServer(opts.redirectPort);
    let client;
    try {
        try {
            client = await connect(opts, callback);
        } catch (e) {
            out({ step: 'error', message: `connect: ${e?.message ?? String(e)}` });
            return 1;
        }
        for (const step of opts.steps) {
            if (step.kind === 'list') {
                try {
                    const { tools } = await client.listTools(undefined, { timeout: REQUEST_TIMEOUT_MS });
                    out({ step: 'tools', tools: tools.map((t) => t.name) });
                } catch (e) {
                    out({ step: 'error', message: `tools/list: ${e?.message ?? String(e)}` });
                    return 1;
                }
            } else {
                try {
                    const result = await client.callTool(
                        { name: step.tool, arguments: step.args },
                        undefined,
                        { timeout: REQUEST_TIMEOUT_MS },
                    );
                    out({ step: 'call', tool: step.tool, isError: result.isError === true, text: textOf(result) });
                } catch (e) {
                    // A JSON-RPC error answer (it has a numeric code) is an answer: report it and go
                    // on. Anything else (transport, timeout) ends the run.
                    if (typeof e?.code === 'number' && e.code < 0) {
                        out({ step: 'error', tool: step.tool, code: e.code, message: e.message });
                    } else {
                        out({ step: 'error', tool: step.tool, message: e?.message ?? String(e) });
                        return 1;
                    }
                }
            }
        }
        return 0;
    } finally {
        callback.server.close();
        if (client) await client.close().catch(() => {});
    }
}

main().then(
    (status) => process.exit(status),
    (e) => {
        out({ step: 'error', message: e?.stack ?? String(e) });
        process.exit(1);
    },
);
