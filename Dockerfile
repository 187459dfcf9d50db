# First version; the docker issue makes it multi-stage, non-root and production-only.
FROM node:20-bookworm-slim
WORKDIR /app
COPY . .
RUN npm ci && npx tsc -b
