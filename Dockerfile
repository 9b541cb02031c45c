# swarm-activator:dev — built offline by scripts/build-images.sh, with build/image/ as the context:
#   package.json, package-lock.json, dist/, and node_modules.tar (production-only node_modules from
#   `npm ci --omit=dev --ignore-scripts`, packed as one tar that ADD unpacks: much faster to send
#   than thousands of small files, and its layer stays cached until package-lock.json changes).
# BASE is the node image made from the host's node (local/node-base:20).
ARG BASE=local/node-base:20
FROM ${BASE}
WORKDIR /app
COPY package.json package-lock.json /app/
ADD node_modules.tar /app/
COPY dist /app/dist
ENV NODE_ENV=production
EXPOSE 8080
CMD ["/usr/bin/node", "/app/dist/main.js"]
