# The stand-in for node:24-bookworm-slim, laid out like the official image so the project's
# Dockerfile cannot tell the difference: node in /usr/local/bin, npm/npx beside it, user `node`
# with uid/gid 1000. Built by docker/stand-in/build-base.sh; never pushed anywhere.
ARG BASE
FROM ${BASE}
ARG NODE_VERSION
ENV NODE_VERSION=${NODE_VERSION}
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
# The host npm's registry settings (see build-base.sh); empty files when it has none.
COPY etc/npmrc etc/npm-ca.crt /usr/local/etc/
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && groupadd --gid 1000 node \
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \
 && node --version && npm --version
LABEL org.edgestack.stand-in="node:24-bookworm-slim made offline by docker/stand-in/build-base.sh"
CMD ["node"]
