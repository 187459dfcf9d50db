vcl 4.1;

# One caching layer over several edge nodes: every static object is cached on one node only, the
# node directors.shard() picks for its URL; the same file runs on every node. A request from a
# client goes to the owner (possibly this node itself, through the network like any peer) with
# return (pass), so the forwarding node keeps no copy; a request from a peer is the owner's to
# answer, from its cache or from the origin. Adding a fourth node moves about a quarter of the
# URLs (consistent hashing: each backend has replicas points on a ring, default 67).
# The addresses are examples (TEST-NET-1); list the same peers in the same order on every node.
# Checked with varnishd -C by e2e/multi-machine.test.ts.

import directors;

# A node that stops answering turns sick and its URLs go to the next node on the ring.
probe edge_health {
    .url = "/app.css";
    .interval = 2s;
    .timeout = 1s;
    .window = 3;
    .threshold = 2;
}

backend edge1 { .host = "192.0.2.11"; .port = "8080"; .probe = edge_health; }
backend edge2 { .host = "192.0.2.12"; .port = "8080"; .probe = edge_health; }
backend edge3 { .host = "192.0.2.13"; .port = "8080"; .probe = edge_health; }

# This node's static layer and app (nginx's and the app's jobs, as in config/default.vcl).
backend nginx { .host = "127.0.0.1"; .port = "8081"; }
backend node { .host = "127.0.0.1"; .port = "3000"; }

acl peers {
    "192.0.2.11";
    "192.0.2.12";
    "192.0.2.13";
}

sub vcl_init {
    new cluster = directors.shard();
    cluster.add_backend(edge1);
    cluster.add_backend(edge2);
    cluster.add_backend(edge3);
    cluster.reconfigure();
}

sub vcl_recv {
    if (req.http.Upgrade ~ "(?i)websocket" || req.url ~ "^/socket.io/") {
        set req.backend_hint = node;
        return (pipe);
    }
    if (req.url !~ "\.(js|css|img)$") {
        set req.backend_hint = node;
        return (pass);
    }
    if (client.ip ~ peers) {
        # A peer forwarded it: this node owns the URL.
        set req.backend_hint = nginx;
    } else {
        # healthy=CHOSEN (the default): a sick owner's URLs go to the next node on the ring.
        set req.backend_hint = cluster.backend(by=URL);
        return (pass);
    }
}

sub vcl_pipe {
    if (req.http.upgrade) {
        set bereq.http.upgrade = req.http.upgrade;
        set bereq.http.connection = req.http.connection;
    }
    return (pipe);
}
