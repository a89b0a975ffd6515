# syntax=docker/dockerfile:1
# The Tournée server as a small image that runs as a non-root user.
#
#   docker build -t tournee-server .
#   docker run -p 8080:8080 -e TOURNEE_JWT_SECRET="$(openssl rand -base64 48)" tournee-server
#
# The binary links only glibc and libgcc (SQLite is compiled in), so the runtime stage is
# distroless: no shell, no package manager, user `nonroot` (uid 65532).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tournee-server --bin tournee-server \
    && cp target/release/tournee-server /tournee-server \
    && mkdir -p /data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /tournee-server /usr/local/bin/tournee-server
# The SQLite database and the proofs of delivery live in a volume the non-root user owns;
# PostgreSQL needs none, and several instances keep proofs in an S3-compatible store instead
# (TOURNEE_PROOF_STORE=s3://bucket/prefix).
COPY --from=build --chown=65532:65532 /data /data
VOLUME ["/data"]
ENV TOURNEE_LISTEN=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///data/tournee.db \
    TOURNEE_PROOF_STORE=/data/proofs \
    TOURNEE_LOG_FORMAT=json
EXPOSE 8080
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/tournee-server"]
CMD ["serve"]
