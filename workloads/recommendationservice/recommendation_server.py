"""recommendationservice: vSwarm's online-shop recommendation service
(benchmarks/online-shop/recommendationservice/recommendation_server.py and logger.py), serving
hipstershop.RecommendationService.

Kept as in vSwarm: every call lists the catalogue from the product catalogue service
(PRODUCT_CATALOG_SERVICE_ADDR), drops the request's products and returns up to five of the rest
picked with random.sample; the OpenCensus gRPC server interceptor with its defaults (what vSwarm
installs when DISABLE_TRACING is set), a ten-thread gRPC server, a JSON log line per call, the
gRPC health service, and the port from PORT on [::]. Left out: the Cloud profiler and the
Stackdriver trace exporter, which vSwarm-u disables. As for emailservice, the log format is not
validated (`validate=False`), which Python 3.8 and later would reject; vSwarm runs on 3.7.
"""

import logging
import os
import random
import sys
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc
from opencensus.ext.grpc import server_interceptor
from pythonjsonlogger import jsonlogger

import demo_pb2
import demo_pb2_grpc


class CustomJsonFormatter(jsonlogger.JsonFormatter):
    def add_fields(self, log_record, record, message_dict):
        super(CustomJsonFormatter, self).add_fields(log_record, record, message_dict)
        if not log_record.get("timestamp"):
            log_record["timestamp"] = record.created
        if log_record.get("severity"):
            log_record["severity"] = log_record["severity"].upper()
        else:
            log_record["severity"] = record.levelname


def get_json_logger(name):
    logger = logging.getLogger(name)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(CustomJsonFormatter("(timestamp) (severity) (name) (message)", validate=False))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


logger = get_json_logger("recommendationservice-server")


class RecommendationService(demo_pb2_grpc.RecommendationServiceServicer):
    def __init__(self, product_catalog_stub):
        self.product_catalog_stub = product_catalog_stub

    def ListRecommendations(self, request, context):
        max_responses = 5
        cat_response = self.product_catalog_stub.ListProducts(demo_pb2.Empty())
        product_ids = [x.id for x in cat_response.products]
        filtered_products = list(set(product_ids) - set(request.product_ids))
        num_products = len(filtered_products)
        num_return = min(max_responses, num_products)
        indices = random.sample(range(num_products), num_return)
        prod_list = [filtered_products[i] for i in indices]
        logger.info("[Recv ListRecommendations] product_ids={}".format(prod_list))
        response = demo_pb2.ListRecommendationsResponse()
        response.product_ids.extend(prod_list)
        return response

    def Check(self, request, context):
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    def Watch(self, request, context):
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.UNIMPLEMENTED)


def main():
    logger.info("initializing recommendationservice")
    logger.info("Profiler disabled.")
    logger.info("Tracing disabled.")
    tracer_interceptor = server_interceptor.OpenCensusServerInterceptor()
    logger.info("Debugger disabled.")

    port = os.environ.get("PORT", "8080")
    catalog_addr = os.environ.get("PRODUCT_CATALOG_SERVICE_ADDR", "")
    if catalog_addr == "":
        raise Exception("PRODUCT_CATALOG_SERVICE_ADDR environment variable not set")
    logger.info("product catalog address: " + catalog_addr)
    channel = grpc.insecure_channel(catalog_addr)
    product_catalog_stub = demo_pb2_grpc.ProductCatalogServiceStub(channel)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10), interceptors=(tracer_interceptor,))
    service = RecommendationService(product_catalog_stub)
    demo_pb2_grpc.add_RecommendationServiceServicer_to_server(service, server)
    health_pb2_grpc.add_HealthServicer_to_server(service, server)
    logger.info("listening on port: " + port)
    server.add_insecure_port("[::]:" + port)
    server.start()
    try:
        while True:
            time.sleep(10000)
    except KeyboardInterrupt:
        server.stop(0)


if __name__ == "__main__":
    main()
