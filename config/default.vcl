vcl 4.1;

# The article's default.vcl in VCL 4.1, with the development ports: static files to the
# static server (nginx's role) on 8081, everything else to the socket.io app on 3000, and
# websockets and /socket.io/ piped to the app. The same file drives caching-router and varnishd.
#
# The app may run as several instances (npm start -- --app-instances N writes one backend and
# one add_backend line per instance, on 3000, 3001, ...). socket.io's long-polling needs every
# request of a session on the instance that made it, so the app is reached through a hash
# director on client.identity (the client's address; the real one through the TLS layer with
# the PROXY protocol): one client, one instance, for polling and for piped websockets alike.
# The probe takes a dead instance out within about two seconds; its clients reconnect to
# another one, and the instances share broadcasts through Redis.

import directors;

probe app_health {
    .url = "/healthz";
    .interval = 500ms;
    .timeout = 1s;
    .window = 3;
    .threshold = 2;
    .initial = 2;
}

backend app1 {
    .host = "127.0.0.1";
    .port = "3000";
    .probe = app_health;
}

backend nginx {
    .host = "127.0.0.1";
    .port = "8081";
}

sub vcl_init {
    new app = directors.hash();
    app.add_backend(app1, 1.0);
}

sub vcl_recv {
    # choose backend based on request
    if (req.url ~ "\.(js|css|img)$") {
        set req.backend_hint = nginx;
    } else {
        set req.backend_hint = app.backend(client.identity);
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
