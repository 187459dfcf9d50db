vcl 4.1;

# config/default.vcl for the compose network and the swarm stack: the same rules, with the
# backend named by its service and container port. Read by the varnish image of
# docker-compose.varnish.yml and by caching-router.
#
# Unlike config/default.vcl, everything that is not a static file goes through the static
# layer: demo-app runs as several replicas (docker compose up --scale demo-app=3, or the
# stack's replicas), and a VCL backend is one address (varnishd refuses a name that resolves to
# several). nginx resolves the service name to every replica and keeps each client on one
# (docker/config/nginx.conf's upstream), which socket.io's long-polling needs.

backend nginx {
    .host = "static-server";
    .port = "81";
}

sub vcl_recv {
    set req.backend_hint = nginx;

    # pipe websocket connections (and socket.io's polling) through to the app's upstream
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
