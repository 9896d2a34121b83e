#!/bin/sh
# The `default` namespace, once the server answers; run by the `temporal-namespace` job (temporalio/admin-tools).
# Retention: how long ended cases stay readable (reports read their outcomes): 30 days unless set.
set -eu
address="${TEMPORAL_ADDRESS:-temporal:7233}"
namespace="${TEMPORAL_NAMESPACE:-default}"
tries=0
until temporal operator cluster health --address "$address" >/dev/null 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { echo "the server at $address did not become healthy" >&2; exit 1; }
  sleep 2
done
if temporal operator namespace describe -n "$namespace" --address "$address" >/dev/null 2>&1; then
  echo "namespace $namespace exists"
else
  temporal operator namespace create -n "$namespace" --retention "${NAMESPACE_RETENTION:-720h}" --address "$address"
  echo "namespace $namespace created"
fi
