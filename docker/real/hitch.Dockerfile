# A hitch image for docker-compose.hitch.yml: Debian's hitch on the same base as everything else
# (there is no official hitch image). It reads docker/config/hitch.conf.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends hitch \
 && rm -rf /var/lib/apt/lists/*
# The certificates volume is written by uid 1000 (the node user of the stack's image) with a
# 0600 key; running as that uid lets hitch read it (and read it again on SIGHUP) without
# loosening the key's mode, and without root hitch needs no `user` to drop to.
USER 1000:1000
CMD ["hitch", "--config=/etc/hitch/hitch.conf"]
