vcl 4.1;

# config/default.vcl for the compose network: the same rules, with the backends named by their
# compose services and container ports. Read by the varnish image of docker-compose.varnish.yml,
# and by caching-router once it reads VCL.

backend node {
    .host = "demo-app";
    .port = "3000";
}

backend nginx {
    .host = "static-server";
    .port = "81";
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
