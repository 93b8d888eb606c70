# Control plane and sandbox images (multi-stage). Build: docker build -t golden-arch/controlplane .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p controlplane -p sandbox

FROM debian:bookworm-slim AS controlplane
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 controlplane
COPY --from=build /src/target/release/controlplane /usr/local/bin/controlplane
USER 10001
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/controlplane"]
CMD ["serve"]

FROM debian:bookworm-slim AS sandbox
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/sandbox /usr/local/bin/sandbox
EXPOSE 8001
ENTRYPOINT ["/usr/local/bin/sandbox"]
