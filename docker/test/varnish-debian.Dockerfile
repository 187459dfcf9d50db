# Test stand-in for the official varnish image: Debian's varnish (7.1, VCL 4.1). varnishd and
# varnishadm are on the PATH as in the official image; it starts as root and drops to its own
# users (the official image starts as `varnish`), which the swap file does not depend on.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends varnish \
 && rm -rf /var/lib/apt/lists/*
