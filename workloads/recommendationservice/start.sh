#!/bin/sh
# Starts the product catalogue that recommendationservice calls on every invocation (as vSwarm-u
# runs productcatalogservice beside it as "prod-cat-dependent"), on core 0 so that core 1 stays
# the function's, then becomes the function. Usage: start.sh PORT
set -eu
here=$(dirname "$0")
# The helper is installed beside this workload (workload.toml `helpers`).
catalog=$here/../productcatalogservice
env PORT=3550 DISABLE_PROFILER=true DISABLE_TRACING=true DISABLE_DEBUGGER=true \
  taskset -c 0 "$catalog/server" -catalog "$catalog/products.json" &
exec env PORT="$1" PRODUCT_CATALOG_SERVICE_ADDR=127.0.0.1:3550 \
  DISABLE_PROFILER=true DISABLE_TRACING=true DISABLE_DEBUGGER=true \
  PYTHONPATH="$here/site-packages" \
  /usr/bin/python3 "$here/recommendation_server.py"
