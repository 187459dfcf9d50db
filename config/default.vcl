vcl 4.1;

# The article's default.vcl in VCL 4.1, with the development ports: static files to the
# static server (nginx's role) on 8081, everything else to the socket.io app on 3000, and
# websockets and /socket.io/ piped to the app. The same file drives caching-router and varnishd.

backend node {
    .host = "127.0.0.1";
    .port = "3000";
}

backend nginx {
    .host = "127.0.0.1";
    .port = "8081";
}

sub vcl_recv {
    # choose backend based on request
    if (req.url ~ "\.(js|css|img)$") {
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
