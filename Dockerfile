# The runnel broker and runnel-operator images, from this workspace:
#
#   docker build --target runnel   -t runnel .
#   docker build --target operator -t runnel-operator .
#
# Both run as a non-root user on a small glibc base (distroless cc).
# The operator's StatefulSet runs `runnel serve --config ...` as uid 10001
# with its data volume at /var/lib/runnel.

FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p runnel-broker --bin runnel \
    && cargo build --release --locked -p runnel-operator --bin runnel-operator

FROM gcr.io/distroless/cc-debian12:nonroot AS runnel
COPY --from=build /src/target/release/runnel /usr/local/bin/runnel
USER 10001:10001
# Kafka protocol, metrics and health (/metrics, /healthz, /readyz).
EXPOSE 9092 9308
ENTRYPOINT ["/usr/local/bin/runnel"]
CMD ["serve"]

FROM gcr.io/distroless/cc-debian12:nonroot AS operator
COPY --from=build /src/target/release/runnel-operator /usr/local/bin/runnel-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/runnel-operator"]
