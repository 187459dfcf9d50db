# One image for the four programs (they share packages/common and most dependencies); the
# compose file picks the program with `command`. Multi-stage: build with dev dependencies, then
# a runtime with production dependencies only, compiled JavaScript only, running as `node`.
ARG NODE_IMAGE=node:24-bookworm-slim

# Only the package manifests, so the `npm ci` layers below are rebuilt when dependencies
# change and not on every source edit (the legacy builder has no COPY --parents).
FROM ${NODE_IMAGE} AS manifests
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages packages
RUN find packages -mindepth 2 -maxdepth 2 ! -name package.json -exec rm -rf {} +

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY --from=manifests /app ./
RUN npm ci --no-audit --no-fund --no-update-notifier --ignore-scripts
COPY tsconfig.base.json ./
COPY packages packages
RUN npx tsc -b packages/common packages/tls-terminator packages/caching-router packages/static-server packages/demo-app
# What the runtime needs of each package: manifest, compiled src, assets (public/, views/);
# not sources, tests, declarations or build info.
RUN mkdir /out && tar -c \
      --exclude='*.tsbuildinfo' --exclude='*.d.ts' --exclude='*.map' \
      --anchored --no-wildcards-match-slash \
      --exclude='packages/*/src' --exclude='packages/*/test' --exclude='packages/*/dist/test' \
      --exclude='packages/*/tsconfig*.json' --exclude='packages/*/node_modules' \
      packages | tar -x -C /out

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=manifests /app ./
RUN npm ci --omit=dev --no-audit --no-fund --no-update-notifier --ignore-scripts && npm cache clean --force
COPY --from=build /out/packages packages
# The compose variants of config/ (service names, container ports), not the dev ones.
COPY docker/config docker/config
# nginx.conf includes mime.types from its own directory, as the nginx image's /etc/nginx has it.
COPY config/mime.types docker/config/
COPY docker/healthcheck.mjs docker/make-certs.mjs docker/
# The certificates volume takes this directory's owner when docker first fills it, so the
# one-shot `certs` service (running as node) can write to it.
RUN mkdir /certs && chown node:node /certs
USER node
# Exec form: node is the process docker signals (compose adds tini with `init: true`).
CMD ["node", "packages/demo-app/dist/src/cli.js", "--listen", "0.0.0.0:3000"]
