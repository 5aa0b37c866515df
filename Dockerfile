# vmaccess for the production stack (docker-compose.yml): SIP_ENGINE=drachtio behind
# drachtio-server and FreeSWITCH. Two stages: the first compiles TypeScript with the dev
# dependencies, the second carries only what `vmaccess serve` needs.
FROM node:20.20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
# npm ci runs the prepare script (tsc → dist/).
RUN npm ci --no-audit --no-fund

FROM node:20.20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
# SQL migrations are read at start from src/store/migrations (src/paths.ts).
COPY src/store/migrations ./src/store/migrations
# The prompts the image was built with; compose mounts the same folder for FreeSWITCH.
COPY ivr-prompts ./ivr-prompts
RUN mkdir -p /app/data && chown node:node /app/data
USER node
# 8080 HTTP (/healthz), 8085 FreeSWITCH's per-call outbound ESL connections.
EXPOSE 8080 8085
STOPSIGNAL SIGTERM
CMD ["node", "bin/vmaccess.js", "serve"]
