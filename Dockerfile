# syntax=docker/dockerfile:1
# The operator's image: a release build on Debian 12 (bookworm), run on distroless's glibc
# image (Debian 12 too, so the glibc the binary links against matches) as the non-root user.
# Result: the binary plus CA certificates and glibc, no shell, no package manager.
#
# Without a container engine, hack/image.sh builds the same image (same paths, user,
# entrypoint and labels) from Debian's packages; tests/deploy_install.rs runs that image and
# checks it against this file, and tests/deploy_render checks that this file copies every
# source file the binary is compiled from and builds with the command below.
#
#   docker build --build-arg REVISION=$(git rev-parse HEAD) -t tfjob-operator:0.1.0 .

FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
# Only what the binary is compiled from (the CRD is generated from the Rust types). The other
# workspace members come along because cargo reads every member's manifest; only the operator
# and tfjob-core are compiled.
COPY Cargo.toml Cargo.lock ./
# How jemalloc, the operator's allocator, is built (one arena, no thread caches).
COPY .cargo/config.toml ./.cargo/config.toml
COPY src ./src
COPY crates ./crates
# Cache mounts keep the crate registry and build outputs between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin tfjob-operator \
    && cp target/release/tfjob-operator /usr/local/bin/tfjob-operator

FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="tfjob-operator" \
      org.opencontainers.image.source="https://github.com/tfjob-operator/tfjob-operator" \
      org.opencontainers.image.url="https://github.com/tfjob-operator/tfjob-operator" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /usr/local/bin/tfjob-operator /usr/local/bin/tfjob-operator
# The same binary as /manager, upstream's entry point: a training-operator Deployment that runs
# `command: [/manager]` with upstream's flags works with this image unchanged.
COPY --from=build /usr/local/bin/tfjob-operator /manager
# distroless's nonroot user, numerically, so that the kubelet can verify runAsNonRoot.
USER 65532:65532
# /metrics and /healthz + /readyz (the chart's metrics.port and healthProbe.port).
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/tfjob-operator"]
