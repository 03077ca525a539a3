#!/usr/bin/env bash
# Readies this machine for tests/test_container.py: Debian's docker.io, docker-compose and
# debootstrap; Docker's daemon; and a local base image (Debian + python3 + venv), since no
# public image registry can be reached here. Idempotent: each step is skipped when done.
set -euo pipefail
BASE=${GROK_API_TEST_BASE_IMAGE:-local/debian-python:bookworm}
STATE=${GROK_API_CONTAINER_STATE:-/var/tmp/grok-api-container}
mkdir -p "$STATE"

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
  echo "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd (log: $STATE/dockerd.log)"
  nohup dockerd >"$STATE/dockerd.log" 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null
fi

if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  echo "building $BASE with debootstrap from $mirror"
  rm -rf "$STATE/rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$STATE/rootfs" "$mirror" >"$STATE/debootstrap.log"
  rm -rf "$STATE/rootfs/var/cache/apt/archives/"*.deb "$STATE/rootfs/var/lib/apt/lists/"*
  tar -C "$STATE/rootfs" -c . | docker import - "$BASE" >/dev/null
  rm -rf "$STATE/rootfs"
fi
echo "ready: docker $(docker version --format '{{.Server.Version}}'), base image $BASE"
