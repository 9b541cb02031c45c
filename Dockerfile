# swarm-activator: the activator (the default command) and its CLI (`swarm-activator …`, with a
# docker CLI for `docker stack deploy`), in one image.
#
#   docker build -t swarm-activator .
#   docker run --rm swarm-activator swarm-activator --help
#
# The bases are build arguments. By default they are the official images from a registry;
# scripts/build-images.sh builds this same file offline, with bases made from the host's node, npm
# (and an npm cache holding package-lock.json's packages: NPM_FLAGS=--offline) and docker CLI.
# Works with the legacy builder (DOCKER_BUILDKIT=0) as well as BuildKit.
ARG NODE_IMAGE=node:20-bookworm-slim
ARG BUILD_IMAGE=node:20-bookworm-slim
ARG DOCKER_CLI_IMAGE=docker:28-cli

FROM ${DOCKER_CLI_IMAGE} AS docker-cli

# Every dependency, the compiler included. Install scripts stay off: no package we ship needs one
# (ssh2's optional native crypto falls back to JavaScript).
FROM ${BUILD_IMAGE} AS deps
ARG NPM_FLAGS=
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund ${NPM_FLAGS}

FROM deps AS build
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# bin/swarm-activator -> the CLI (a symlink, so the CLI sees itself as the program it runs). In
# node, as the offline build base has no coreutils.
RUN npm run build && node -e "const fs = require('node:fs'); fs.chmodSync('dist/cli/main.js', 0o755); \
      fs.mkdirSync('bin'); fs.symlinkSync('../dist/cli/main.js', 'bin/swarm-activator');"

# Production dependencies only; cached for as long as package-lock.json is unchanged.
FROM deps AS prod-deps
ARG NPM_FLAGS=
RUN npm prune --omit=dev --ignore-scripts --no-audit --no-fund ${NPM_FLAGS}

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=docker-cli /usr/local/bin/docker /usr/local/bin/docker
COPY --from=prod-deps /src/node_modules ./node_modules
COPY package.json ./
COPY --from=build /src/dist ./dist
COPY --from=build /src/bin ./bin
ENV PATH=/app/bin:${PATH}
USER node
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 CMD ["node", "/app/dist/healthcheck.js"]
CMD ["node", "/app/dist/main.js"]
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="swarm-activator" \
      org.opencontainers.image.description="Scale-to-zero for Docker Swarm services behind Traefik: wakes sleeping apps on their first request; CLI to deploy preview environments" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
