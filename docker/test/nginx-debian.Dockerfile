# Test stand-in for the official nginx image: Debian's nginx-light, plus curl, which the
# official image has and the swap file's health check uses. The packaged site is removed:
# the swap file's nginx.conf replaces /etc/nginx/nginx.conf and includes nothing else.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx-light curl \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/*
