# The API on Node 24: type stripping runs the TypeScript sources directly, as `pnpm start` does.
FROM node:24-slim
RUN npm i -g pnpm@10
WORKDIR /app

# Manifests first, so the dependency layer is rebuilt only when one of them changes.
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml .npmrc ./
COPY packages/domain/package.json packages/domain/
COPY packages/application/package.json packages/application/
COPY packages/adapters-postgres/package.json packages/adapters-postgres/
COPY packages/adapters-http/package.json packages/adapters-http/
COPY packages/adapters-dataplatform/package.json packages/adapters-dataplatform/
COPY apps/api/package.json apps/api/
COPY apps/bench/package.json apps/bench/
RUN pnpm install --frozen-lockfile

# Then the sources (.dockerignore keeps node_modules, data and results out).
COPY packages packages
COPY apps apps

# DATA_DIR (default ./.data): the local events file, or an embedded PostgreSQL without DATABASE_URL.
RUN mkdir -p /app/.data && chown node:node /app/.data
USER node
# Production: the service refuses to start without AUTH_SECRET.
ENV HOST=0.0.0.0 PORT=3000 NODE_ENV=production
EXPOSE 3000
# The root `start` script.
CMD ["node", "--disable-warning=ExperimentalWarning", "apps/api/src/main.ts"]
