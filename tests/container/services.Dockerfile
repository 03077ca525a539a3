# PostgreSQL, Redis and nginx from Debian's packages, for the container test on machines that
# cannot pull the public images compose.yaml names (the test overrides their image with this).
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 redis-server nginx-light \
 && rm -rf /var/lib/apt/lists/*
COPY run-postgres.sh /usr/local/bin/run-postgres
RUN chmod 755 /usr/local/bin/run-postgres
