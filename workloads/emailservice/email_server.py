"""emailservice: vSwarm's online-shop e-mail service in dummy mode
(benchmarks/online-shop/emailservice/email_server.py and logger.py), serving
hipstershop.EmailService.

Kept as in vSwarm: the confirmation template parsed with Jinja2 at start-up (dummy mode never
renders it), the OpenCensus gRPC server interceptor with its defaults (what vSwarm installs when
DISABLE_TRACING is set), a ten-thread gRPC server, one JSON log line per call
(python-json-logger), the gRPC health service, and the port from PORT on [::]. Left out: the
Cloud profiler and the Stackdriver trace exporter, which vSwarm-u disables (DISABLE_PROFILER,
DISABLE_TRACING). One change for Python 3.11: the log format is not validated (`validate=False`),
because vSwarm's '(timestamp) (severity) ...' format is rejected by Python 3.8 and later; vSwarm
runs on Python 3.7, which does not check it. The templates are found beside this file (vSwarm
looks in its working directory).
"""

import logging
import os
import sys
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc
from jinja2 import Environment, FileSystemLoader, select_autoescape
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


logger = get_json_logger("emailservice-server")

env = Environment(
    loader=FileSystemLoader(os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")),
    autoescape=select_autoescape(["html", "xml"]),
)
template = env.get_template("confirmation.html")


class DummyEmailService(demo_pb2_grpc.EmailServiceServicer):
    def Check(self, request, context):
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    def Watch(self, request, context):
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.UNIMPLEMENTED)

    def SendOrderConfirmation(self, request, context):
        logger.info(
            "A request to send order confirmation email to {} has been received.".format(request.email)
        )
        return demo_pb2.Empty()


def start(tracer_interceptor):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10), interceptors=(tracer_interceptor,))
    service = DummyEmailService()
    demo_pb2_grpc.add_EmailServiceServicer_to_server(service, server)
    health_pb2_grpc.add_HealthServicer_to_server(service, server)
    port = os.environ.get("PORT", "8080")
    logger.info("listening on port: " + port)
    server.add_insecure_port("[::]:" + port)
    server.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop(0)


if __name__ == "__main__":
    logger.info("starting the email service in dummy mode.")
    logger.info("Profiler disabled.")
    logger.info("Tracing disabled.")
    start(server_interceptor.OpenCensusServerInterceptor())
