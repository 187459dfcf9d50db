vcl 4.1;

# The article's default.vcl in VCL 4.1 (as config/default.vcl), with the bench's ports: the
# "nginx" backend gets \.(js|css|img)$, everything else goes to "node", websockets are piped.
# The same generated file starts varnishd (-f) and caching-router (-f).

backend node {
    .host = "127.0.0.1";
    .port = "{{NODE_PORT}}";
}

backend nginx {
    .host = "127.0.0.1";
    .port = "{{NGINX_PORT}}";
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

sub vcl_backend_response {
    # Not the article's: scenario 12's ESI page (the origin marks it). Runs on fetches only.
    if (beresp.http.X-Esi) {
        set beresp.do_esi = true;
    }
}
