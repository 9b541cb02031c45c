# swarm-activator:dev — built offline by scripts/build-images.sh.
# Context: build/image/ (package.json, package-lock.json, dist/, production node_modules),
# prepared by that script; BASE is the node image made from the host's node (local/node-base:20).
ARG BASE=local/node-base:20
FROM ${BASE}
WORKDIR /app
COPY package.json package-lock.json /app/
COPY node_modules /app/node_modules
COPY dist /app/dist
ENV NODE_ENV=production
EXPOSE 8080
CMD ["/usr/bin/node", "/app/dist/main.js"]
