import type { HostPort } from '@edgestack/common'

/**
 * The VCL text varnishd makes of `-b HOST:PORT` (mgt_main.c: `vcl 4.1; backend default
 * { .host = ...; }`, compiled with builtin.vcl appended like any file). The port is its own
 * field: our compiler takes `.port` as a number, not `.host = "h:p"`.
 */
export function backendVcl(address: HostPort | 'none' | { path: string }): string {
  // mgt_main.c: `-b none` is a backend that never answers, `-b /path` a Unix socket.
  if (address === 'none') return 'vcl 4.1;\n\nbackend default none;\n'
  if ('path' in address) return `vcl 4.1;\n\nbackend default {\n    .path = "${address.path}";\n}\n`
  return `vcl 4.1;\n\nbackend default {\n    .host = "${address.host}";\n    .port = "${address.port}";\n}\n`
}

/**
 * `--static-backend` / `--app-backend`: the article's default.vcl (config/default.vcl, held to
 * it by test/flags-vcl.test.ts) with these two addresses: static files to `nginx`, everything
 * else to `node`, websockets and /socket.io/ piped to the app.
 */
export function articleVcl(statics: HostPort, app: HostPort): string {
  return `vcl 4.1;

# The article's default.vcl in VCL 4.1, with the development ports: static files to the
# static server (nginx's role) on 8081, everything else to the socket.io app on 3000, and
# websockets and /socket.io/ piped to the app. The same file drives caching-router and varnishd.

backend node {
    .host = "${app.host}";
    .port = "${app.port}";
}

backend nginx {
    .host = "${statics.host}";
    .port = "${statics.port}";
}

sub vcl_recv {
    # choose backend based on request
    if (req.url ~ "\\.(js|css|img)$") {
        set req.backend_hint = nginx;
    } else {
        set req.backend_hint = node;
    }

    # pipe websocket connections directly to node app
    if (req.http.Upgrade ~ "(?i)websocket" || req.url ~ "^/socket.io/") {
        return (pipe);
    }
}

sub vcl_pipe {
    # copy the upgrade header so websocket connections get upgraded to 1.1
    if (req.http.upgrade) {
        set bereq.http.upgrade = req.http.upgrade;
        set bereq.http.connection = req.http.connection;
    }
    return (pipe);
}
`
}
