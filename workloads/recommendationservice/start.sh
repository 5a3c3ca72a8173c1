#!/bin/sh
# Starts the product catalogue that recommendationservice calls on every invocation (as vSwarm-u
# runs productcatalogservice beside it as "prod-cat-dependent"), on core 0 so that core 1 stays
# the function's, then becomes the function. Usage: start.sh PORT
set -eu
catalog=/opt/simctl/workloads/productcatalogservice
env PORT=3550 DISABLE_PROFILER=true DISABLE_TRACING=true DISABLE_DEBUGGER=true \
  taskset -c 0 "$catalog/server" -catalog "$catalog/products.json" &
exec env PORT="$1" PRODUCT_CATALOG_SERVICE_ADDR=127.0.0.1:3550 \
  DISABLE_PROFILER=true DISABLE_TRACING=true DISABLE_DEBUGGER=true \
  PYTHONPATH="$(dirname "$0")/site-packages" \
  /usr/bin/python3 "$(dirname "$0")/recommendation_server.py"
