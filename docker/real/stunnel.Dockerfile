# A stunnel image for docker-compose.stunnel.yml: Debian's stunnel4 on the same base as
# everything else (there is no official stunnel image). It reads docker/config/stunnel.conf.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends stunnel4 \
 && rm -rf /var/lib/apt/lists/*
# The certificates volume is written by uid 1000 (the node user of the stack's image) with a
# 0600 key; running as that uid lets stunnel read it without loosening the key's mode.
USER 1000:1000
CMD ["stunnel", "/etc/stunnel/stunnel.conf"]
