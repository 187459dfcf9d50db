# Test stand-in for the official redis image: Debian's redis-server (7.0), with redis-cli for
# the compose file's health check. redis:7-bookworm cannot be pulled here.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/*
# The official image listens on every address of its container; Debian's defaults to loopback.
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no"]
