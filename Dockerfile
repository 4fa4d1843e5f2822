# netalias image: a static binary on `scratch`, run as a non-root user.
#
# Two ways to build it:
#   docker build -t netalias .
#       compiles inside a Rust image (needs a registry to pull rust:1-bookworm).
#   RUSTFLAGS="-C target-feature=+crt-static" \
#     cargo build --profile dist --target x86_64-unknown-linux-gnu --locked
#   docker build --target local -t netalias .
#       packs the static binary built on the host; no registry needed (what CI does).
#
# Run it (port 53 needs only NET_BIND_SERVICE; the socket's group lets the non-root user read it):
#   docker run -d --name netalias --network mynet --cap-drop ALL --cap-add NET_BIND_SERVICE \
#     --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -v /var/run/docker.sock:/var/run/docker.sock:ro netalias
# With no upstream given, names it does not own go to Docker's 127.0.0.11 in its own
# container, which forwards them as for any container (NETALIAS_UPSTREAM=IP overrides).
#
# The stages are in this order because the classic builder builds every stage up to the
# target: `--target local` must never reach the Rust stage.

FROM scratch AS base
LABEL org.opencontainers.image.title="netalias" \
      org.opencontainers.image.description="DNS for Docker container networks: names, aliases and exact round robin" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.source="https://example.invalid/netalias" \
      org.opencontainers.image.version="0.1.0"
COPY config/sidecar.toml /etc/netalias/netalias.toml
COPY config/netalias.toml /usr/share/netalias/netalias.example.toml
USER 65532:65532
EXPOSE 53/udp 53/tcp 9153/tcp
ENV NETALIAS_CONFIG=/etc/netalias/netalias.toml
# Ready, not merely up: a sidecar that has never reached its engine (a socket it may not
# open, a proxy that is not there) serves none of its containers, so it is not healthy.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/netalias", "health", "--http", "127.0.0.1:9153", "--ready"]
ENTRYPOINT ["/usr/local/bin/netalias"]
CMD ["serve"]

FROM base AS local
COPY target/x86_64-unknown-linux-gnu/dist/netalias /usr/local/bin/netalias

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --profile dist --target x86_64-unknown-linux-gnu --locked

FROM base AS release
COPY --from=build /src/target/x86_64-unknown-linux-gnu/dist/netalias /usr/local/bin/netalias
