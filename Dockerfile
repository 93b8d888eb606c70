# syntax=docker/dockerfile:1
# The control plane and the sandbox: two images from one multi-stage build.
#
#   docker build --target controlplane -t golden-arch/controlplane .
#   docker build --target sandbox      -t golden-arch/sandbox .
#
# Layers, from the most to the least stable:
#   chef     the Rust toolchain and cargo-chef (pinned)
#   planner  recipe.json: the dependency graph of the workspace, without our sources
#   build    the dependencies compiled from the recipe (cached until Cargo.toml or Cargo.lock
#            change), then our crates
#   web      the dashboard (frontend/): `npm ci` on the lock file, then `npm run build`
#            (tsc, vite build, the JS budget check), as scripts/frontend.sh does
#   controlplane, sandbox: Debian slim, a non-root user, one binary each
# Checked by scripts/deploy-checks.sh (hadolint); docs/adr/014-deployment.md says why.

ARG RUST_VERSION=1.95
ARG NODE_VERSION=20.19
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS chef
# Line tables keep file:line in a panic's backtrace at a fraction of full debug info.
ENV CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
    CARGO_INCREMENTAL=0
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json -p controlplane -p sandbox -p natsauth
COPY . .
RUN cargo build --release --locked -p controlplane -p sandbox -p natsauth

FROM node:${NODE_VERSION}-${DEBIAN_RELEASE}-slim AS web
WORKDIR /web
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM debian:${DEBIAN_RELEASE}-slim AS runtime-base
# ca-certificates: TLS to PostgreSQL, NATS and SANDBOX_URL when they use it. Unpinned on
# purpose: the security updates of the release are wanted at every build.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

FROM runtime-base AS controlplane
RUN groupadd --system --gid 10001 controlplane \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin controlplane
COPY --from=build /src/target/release/controlplane /usr/local/bin/controlplane
# nats-identities makes the NATS keys and creds (docs/nats-auth.md; compose's nats-init).
COPY --from=build /src/target/release/nats-identities /usr/local/bin/nats-identities
COPY scripts/nats.conf /usr/share/controlplane/nats.conf
COPY --from=web /web/dist /usr/share/controlplane/ui
ENV HOST=0.0.0.0 \
    PORT=8000 \
    LOG_FORMAT=json \
    UI_DIR=/usr/share/controlplane/ui
USER 10001:10001
EXPOSE 8000
# No curl in the image: bash's /dev/tcp asks GET /healthz and reads the status line.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT:-8000} && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
# serve applies pending migrations first (sqlx takes an advisory lock: replicas may start together).
ENTRYPOINT ["/usr/local/bin/controlplane"]
CMD ["serve"]

FROM runtime-base AS sandbox
RUN groupadd --system --gid 10002 sandbox \
 && useradd --system --uid 10002 --gid 10002 --no-create-home --shell /usr/sbin/nologin sandbox
COPY --from=build /src/target/release/sandbox /usr/local/bin/sandbox
ENV HOST=0.0.0.0 \
    SANDBOX_PORT=8001 \
    DOCKER_HOST=unix:///var/run/docker.sock
# The engine's socket belongs to root:docker on the host; give the container that group
# (compose: group_add with DOCKER_GID; Kubernetes: supplementalGroups), never root.
USER 10002:10002
EXPOSE 8001
# /healthz is 503 while the engine does not answer: the container shows unhealthy then.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${SANDBOX_PORT:-8001} && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/local/bin/sandbox"]
